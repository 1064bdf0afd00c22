"""zoo-text: Hugging Face transformers encoders, pooling heads and text datasets for modelzoo."""
