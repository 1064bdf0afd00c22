"""zoo-classification: the image-classification and multi-label tasks, classifier heads and Fashion-MNIST sets for modelzoo."""
