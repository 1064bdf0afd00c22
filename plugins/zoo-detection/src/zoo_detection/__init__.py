"""modelzoo plugin: the object-detection task (COCO / VOC data, COCO mAP, ``zoo predict`` boxes),
torchvision detection heads on any ``pyramid`` backbone, and a demo detection set."""
