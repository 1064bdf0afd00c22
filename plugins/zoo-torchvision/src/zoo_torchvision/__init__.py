"""zoo-torchvision: torchvision classification models as modelzoo backbones."""
