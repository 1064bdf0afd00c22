"""modelzoo plugin: torchvision detection heads on any ``pyramid`` backbone, and a demo detection set."""
