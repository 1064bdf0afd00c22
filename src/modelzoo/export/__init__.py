"""Deployable artifacts: a run's model as ONNX, TorchScript or a torch.export ExportedProgram.

:mod:`.formats` knows how each format is written and loaded back by its own runtime; :mod:`.exporter`
is ``zoo export``: it asks the run's task what the exported model takes and returns, writes the file
and a sidecar JSON (preprocessing, labels, input and output names) atomically, and checks parity on
the run's validation data.

Why it looks like this:

* **The task decides the interface.** Images, token ids + attention masks or anything else: the
  ``Task`` methods ``export_inputs`` / ``export_outputs`` / ``export_module`` / ``export_axes`` say
  what goes in and out; the exporter never branches on a task.
* **Checked, or not kept.** Every export is loaded back by the runtime a user would deploy it with
  and compared with PyTorch on real validation inputs (and a batch of one); beyond tolerance the
  file is removed and the command fails with one line.
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "export": ".exporter",
    "ExportResult": ".exporter",
    "FORMATS": ".formats",
    "exported_files": ".formats",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
