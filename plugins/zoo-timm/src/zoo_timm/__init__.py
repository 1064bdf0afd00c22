"""zoo-timm: timm architectures and pretrained tags as modelzoo backbones."""
