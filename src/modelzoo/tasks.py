"""Task names: Hugging Face pipeline tags, with short aliases accepted wherever a task is given."""

from __future__ import annotations

from .errors import ZooError, did_you_mean

TASKS = ("image-classification", "object-detection", "text-classification")
ALIASES = {
    "classification": "image-classification",
    "image-classification": "image-classification",
    "detection": "object-detection",
    "object-detection": "object-detection",
    "text": "text-classification",
    "text-classification": "text-classification",
}


def normalize_task(task: str) -> str:
    """Map an alias (``detection``) to its pipeline tag (``object-detection``)."""
    key = task.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    raise ZooError(f"unknown task {task!r}{did_you_mean(key, ALIASES)} (tasks: {', '.join(TASKS)})")
