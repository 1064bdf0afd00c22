"""zoo-text: the text-classification task, Hugging Face transformers encoders, pooling heads and text
datasets for modelzoo."""
