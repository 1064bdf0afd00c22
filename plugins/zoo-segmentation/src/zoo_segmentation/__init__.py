"""modelzoo plugin: semantic segmentation (a class per pixel) on any pyramid backbone."""
