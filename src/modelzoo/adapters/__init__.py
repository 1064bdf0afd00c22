"""Task adapters: what the generic engine needs to know about one task.

The engine (freezing, stages, schedules, checkpoints, resume) is task-agnostic; an adapter owns the
task's data, loss, metrics and artifacts. Adapters are task mechanisms, not model families: the
backbones and heads they train still come from plugins.
"""

from __future__ import annotations

from ..errors import ZooError
from .base import TaskAdapter

ADAPTERS = {
    "image-classification": "modelzoo.adapters.image_classification:ImageClassificationAdapter",
    "text-classification": "modelzoo.adapters.text_classification:TextClassificationAdapter",
    "object-detection": "modelzoo.adapters.object_detection:ObjectDetectionAdapter",
}


def adapter_class(task: str) -> type[TaskAdapter]:
    """The adapter class for a (normalised) task name."""
    from ..model import import_builder

    if task not in ADAPTERS:
        raise ZooError(f"no engine support for task {task!r}; supported: {', '.join(ADAPTERS)}")
    try:
        return import_builder(ADAPTERS[task])
    except ZooError:
        raise ZooError(f"the {task} engine adapter is not available in this version of modelzoo") from None


__all__ = ["ADAPTERS", "TaskAdapter", "adapter_class"]
