"""The :class:`~modelzoo.model.task.Task` methods behind predicting on a whole folder
(``zoo predict RUN DIR/``) and the gallery of confident mistakes (``zoo eval --errors N``).

They live here, mixed into ``Task``, to keep :mod:`.task` one job; each has a default, so a task that
implements only ``predict`` already predicts on folders (slower: files are decoded in the main process).
The batched path: a DataLoader's workers call :meth:`predict_input` per file (an unreadable file raises
and is skipped and counted), :meth:`predict_collate` joins a batch, :meth:`predict_batch` runs the model,
and :meth:`prediction_row` makes each file's row of the CSV / JSONL output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..errors import ZooError
from ..util.images import IMAGE_EXTENSIONS, check_image, is_image_file


class TaskUse:
    """Mixed into ``Task``: folders of inputs and confident mistakes (see the module docstring)."""

    #: the file suffixes (lower case) that ``zoo predict RUN DIR/`` takes as inputs, found recursively
    predict_extensions: ClassVar[tuple[str, ...]] = IMAGE_EXTENSIONS

    def predict_input(self, model: Any, path: str, **options: Any) -> Any:
        """One file as :meth:`predict_batch` takes it, made in a DataLoader worker (decode, resize...).
        Raise (``BadImage``, ``OSError``, ``ValueError``...) for a file that cannot be read: it is skipped
        and counted, never the end of the run. Default: the path, after checking an image decodes."""
        if is_image_file(path):
            check_image(path)
        return path

    def predict_collate(self, items: list[Any]) -> Any:
        """A batch of :meth:`predict_input` results. Default: the list as it is."""
        return list(items)

    def predict_batch(self, model: Any, batch: Any, **options: Any) -> list[Any]:
        """One result per item of a collated batch (the task's ``predict_options`` as keywords).
        Default: :meth:`predict` on the batch's items."""
        return self.predict(model, batch, **options)  # type: ignore[attr-defined]

    def prediction_row(self, model: Any, path: str, result: Any, files: Path, **options: Any) -> dict[str, Any]:
        """One file's row of ``zoo predict --out preds.csv|preds.jsonl`` (the core puts the ``file`` column
        first): plain values; lists and tables are written as JSON in a CSV cell. Every row of a task should
        have the same keys (the CSV header is the first row's). A task that predicts files (masks, drawn
        boxes) writes them into ``files`` (this input's folder under the one beside the output, mirroring the
        inputs' subfolders; created by whoever writes first) and names them in the row. Default: the task's ``to_json`` object without its ``input``."""
        import inspect

        to_json = self.to_json  # type: ignore[attr-defined]
        takes_model = "model" in inspect.signature(to_json).parameters  # plugins older than model=
        row = (to_json([path], [result], model=model) if takes_model else to_json([path], [result]))[0]
        return {k: v for k, v in row.items() if k != "input"}

    def write_errors(self, model: Any, loader: Any, n: int, out: Path) -> list[Path]:
        """``zoo eval RUN --errors N``: the ``n`` validation examples the model got wrong most confidently,
        from ``loader`` (the validation split in order, as the task's dataset yields it), written to ``out``
        (a folder) as ``errors.csv`` and a picture gallery ``errors.png`` where the inputs can be drawn;
        return the files written. Default: the task has no notion of a confident mistake."""
        raise ZooError(f"zoo eval --errors is not supported for {self.name} models")  # type: ignore[attr-defined]
