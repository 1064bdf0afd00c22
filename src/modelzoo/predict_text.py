"""Inference on texts with a TaskModel's own tokenizer and max_length (as in evaluation)."""

from __future__ import annotations

import torch

from .errors import ZooError


@torch.no_grad()
def predict_texts(model, inputs, top_k: int = 5, batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per text; one string or a list of strings.

    Texts are tokenized and truncated exactly as the training run did (``preprocess.max_length``),
    sorted by length so each batch pads little, and returned in the caller's order.
    """
    from .adapters.text_classification import DEFAULT_MAX_LENGTH, pad_batch, text_backbone

    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ZooError(f"input {i} is {type(text).__name__}; a text classifier takes strings")
        if not text.strip():
            raise ZooError(f"input {i} is an empty text")
    bb = text_backbone(model)
    max_length = int(model.preprocess.get("max_length") or DEFAULT_MAX_LENGTH)
    ids, _ = bb.encode_texts(texts, max_length) if texts else ([], 0)
    device = next(model.parameters()).device
    model.eval()
    labels = model.labels
    k = max(1, min(top_k, len(labels)))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    results: list[list[tuple[str, float]]] = [[] for _ in ids]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k_: v.to(device) for k_, v in pad_batch([ids[i] for i in chunk], bb.pad_id).items()}
        probs = model(batch).float().softmax(-1).cpu()
        values, indices = probs.topk(k, dim=-1)
        for i, vs, ix in zip(chunk, values.tolist(), indices.tolist()):
            results[i] = [(labels[j], round(v, 6)) for v, j in zip(vs, ix)]
    return results
