"""``modelzoo.load``: a model from a local folder or from the Hugging Face Hub, by one name."""

from __future__ import annotations

from pathlib import Path

from .model.task import TaskModel


def load(path: str | Path) -> TaskModel:
    """Load a model folder (a run folder or a pulled Hub repo): ``config.json`` + ``model.safetensors``
    + the data files its config records (a vocabulary, for example).

    ``hf-hub:org/name[@rev]`` pulls (or finds in the HF cache) that repo first, verified against its
    sha256 manifest; nothing from the repo is executed.
    """
    from .model.folder import load_model

    return load_model(model_folder(path))


def model_folder(path: str | Path) -> Path:
    """The local folder of a model name: the folder itself, or for ``hf-hub:org/name[@rev]`` the
    pulled (or cached) copy of that repo (with the ``recipe.toml`` and card it was pushed with)."""
    if str(path).startswith("hf-hub:"):
        from .hub.download import pull

        return Path(pull(str(path)[len("hf-hub:") :]).path)
    return Path(path)
