"""zoo-classification: the image-classification task, classifier heads and Fashion-MNIST for modelzoo."""
