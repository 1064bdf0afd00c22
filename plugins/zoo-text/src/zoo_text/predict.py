"""Inference on texts with a TaskModel's own tokenizer and max_length (as in evaluation)."""

from __future__ import annotations

import torch
from zoo_classification.classify import top_k as best_k

from modelzoo.sdk import TaskModel, ZooError

from .contracts import pad_batch, text_backbone

#: what a model whose config records no max_length is truncated to (the encoders' default too)
DEFAULT_MAX_LENGTH = 128


@torch.no_grad()
def predict_texts(model: TaskModel, inputs, top_k: int = 5, batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per text; one string or a list of strings.

    Texts are tokenized and truncated exactly as the training run did (``preprocess.max_length``),
    sorted by length so each batch pads little, and returned in the caller's order.
    """
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ZooError(f"input {i} is {type(text).__name__}; a text classifier takes strings")
        if not text.strip():
            raise ZooError(f"input {i} is an empty text")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ZooError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    bb = text_backbone(model)
    max_length = int(model.preprocess.get("max_length") or DEFAULT_MAX_LENGTH)
    ids, _ = bb.encode_texts(texts, max_length) if texts else ([], 0)
    device = next(model.parameters()).device
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    results: list[list[tuple[str, float]]] = [[] for _ in ids]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in pad_batch([ids[i] for i in chunk], bb.pad_id).items()}
        probs = model(batch).float().softmax(-1).cpu()
        for i, preds in zip(chunk, best_k(probs, model.labels, top_k)):
            results[i] = preds
    return results
