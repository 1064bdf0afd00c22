"""Model folders: the one writer and the one reader of ``config.json`` + ``model.safetensors``.

A model folder (a finished run, a pulled Hub repo, a pushed TaskModel) holds the weights, the config
that rebuilds the architecture, and the data files its backbone or task declared (a vocabulary, a
class list). Whoever writes such a file names it (``Backbone.save_files`` / ``Task.save_files``);
the names are recorded in ``config.json["files"]``, and pushes and pulls carry exactly what is
recorded, so the core never needs to know what such a file holds. The engine, ``zoo eval`` / ``zoo
predict``, ``modelzoo.load`` and the Hub code all go through this module.
"""

from __future__ import annotations

import json
import re
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ZooError, did_you_mean
from ..util.files import atomic_write, atomic_write_text, read_json_object, sha256_file

if TYPE_CHECKING:
    from .task import TaskModel

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
REQUIRED = (CONFIG, WEIGHTS)
#: the config's own digest: the sha256 of its other fields (see :func:`config_digest`)
CONFIG_DIGEST = "config_sha256"
#: what else a finished run folder holds that a pushed model carries (the plots are ``*.png``)
RUN_EXTRAS = ("recipe.toml", "metrics.jsonl")
#: declared files must be plain data: these suffixes only (never pickles, never code)
DATA_SUFFIXES = (".json", ".txt", ".model", ".safetensors", ".csv", ".tsv", ".jsonl", ".toml", ".md", ".png")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: what a config.json may hold, by table: anything else was written by hand or by something else, and is
#: refused rather than guessed at (``preprocess`` and the ``options`` tables are the builders' own)
CONFIG_KEYS = {
    "": {"format", "library", "task", "backbone", "head", "num_classes", "labels", "preprocess", "files", "sha256"}
    | {"dataset", "recipe", "plugins", "interop_keys", "config_sha256"},
    "backbone": {"name", "output", "options", "pretrained"},
    "head": {"name", "options"},
}


def is_data_file_name(name: str) -> bool:
    """A plain file name (no folders, not hidden) with a data suffix: what may travel with a model."""
    return bool(_SAFE_NAME.match(name)) and ".." not in name and name.lower().endswith(DATA_SUFFIXES)


def _declared(names: Any, who: str) -> list[str]:
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ZooError(f"{who} must return a list of file names, got {type(names).__name__}")
    bad = [n for n in names if not is_data_file_name(n) or n in REQUIRED]
    if bad:
        raise ZooError(
            f"{who} declared {bad[0]!r}: a model's extra files must be plain names ending in {', '.join(DATA_SUFFIXES)}"
        )
    return list(names)


def save_model(model: TaskModel, folder: str | Path, extras: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Write ``model`` into ``folder``: weights, declared files, then ``config.json`` (last, atomically).

    Returns the names written. The config records the declared files, so a folder with a config
    always has everything the config promises. ``extras`` are files already in ``folder`` (a run's
    ``recipe.toml``, ``metrics.jsonl``, ``summary.json``) whose digests the config records too.
    """
    from safetensors.torch import save_file

    from .task import create_task

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda p: save_file(state, str(p), metadata={"format": "pt", "library": "modelzoo"}))
    files = _declared(model.backbone.save_files(folder), f"backbone {model.config['backbone']['name']}.save_files")
    task = create_task(model.task)
    files += _declared(task.save_files(model, folder), f"task {task.name}.save_files")
    missing = [n for n in files if not (folder / n).is_file()]
    if missing:
        raise ZooError(f"{missing[0]} was declared but not written to {folder}")
    files = sorted(set(files))
    # the sha256 of every file the config promises: a truncated or bit-flipped file is refused on load
    present = [n for n in extras if is_data_file_name(n) and n not in files and (folder / n).is_file()]
    digests = {name: sha256_file(folder / name) for name in [WEIGHTS, *files, *present]}
    model.config = write_config(folder, {**model.config, "files": files, "sha256": digests})
    return [WEIGHTS, *files, CONFIG]


def config_digest(config: dict[str, Any]) -> str:
    """The sha256 of a config's content (canonical JSON of every field but ``config_sha256`` itself): a
    file cannot hold its own digest, but it can hold the digest of everything else it says."""
    body = {k: v for k, v in config.items() if k != CONFIG_DIGEST}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_config(folder: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The one writer of ``config.json``: stamped with the digest of its content, written atomically."""
    config = {**config, CONFIG_DIGEST: config_digest(config)}
    atomic_write_text(Path(folder) / CONFIG, json.dumps(config, indent=2) + "\n")
    return config


def read_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's ``config.json``, checked to be modelzoo's (one clear line if not)."""
    path = Path(folder) / CONFIG
    try:
        config = read_json_object(path, "model config")
    except ZooError as exc:  # unreadable, not JSON (a flipped bit can break it), oversized
        raise ZooError(f"{exc}; {damage_advice(Path(folder))}") from None
    stamp = config.get(CONFIG_DIGEST)
    if stamp is not None and stamp != config_digest(config):  # before anything trusts a field of it
        raise ZooError(
            f"{path} was changed after modelzoo wrote it (its content no longer matches its {CONFIG_DIGEST};"
            f" a damaged or hand-edited file): {damage_advice(Path(folder))}"
        )
    if config.get("library") != "modelzoo" or not isinstance(config.get("backbone"), dict):
        raise ZooError(f"{path} was not written by modelzoo (no library/backbone fields)")
    if not isinstance(config.get("head"), dict) or not isinstance(config.get("task"), str):
        raise ZooError(f"{path} lacks its head or task; re-save the model with modelzoo")
    # a pushed model's config may also carry another library's keys (Backbone.hub_export); it names them
    interop = config.get("interop_keys") or []
    if not isinstance(interop, list) or not all(isinstance(k, str) and k not in CONFIG_KEYS[""] for k in interop):
        raise ZooError(f"{path}: 'interop_keys' must list the other libraries' top-level keys; re-save the model")
    for table, known in CONFIG_KEYS.items():
        known = known | set(interop) if not table else known
        data = config[table] if table else config
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            where = f"{table}.{unknown[0]}" if table else unknown[0]
            raise ZooError(
                f"{path}: unknown field {where!r}{did_you_mean(unknown[0], known)}; it was edited by hand or written by"
                " something other than this modelzoo: re-save the model"
            )
    labels, num_classes = config.get("labels"), config.get("num_classes")
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels) and labels):
        raise ZooError(f"{path}: 'labels' must be the list of the model's output names; re-save the model")
    if num_classes != len(labels) or isinstance(num_classes, bool):
        raise ZooError(
            f"{path}: num_classes {str(num_classes)[:20]} does not match its {len(labels)} labels; re-save the model"
        )
    _declared(config.get("files", []), f"{path} 'files'")
    digests, stamp = config.get("sha256", {}), config.get(CONFIG_DIGEST)
    if not isinstance(digests, dict) or not all(
        isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
        for v in [*digests.values(), *([stamp] if stamp else [])]
    ):
        raise ZooError(f"{path}: 'sha256' must map {WEIGHTS} and its 'files' to sha256 digests; re-save the model")
    return config


def damage_advice(folder: Path) -> str:
    """What to do about a damaged file in ``folder``: rebuild a run from its checkpoint, else fetch it again."""
    if (folder / "checkpoint" / "last.pt").is_file():
        return f"rebuild the run from its last checkpoint with zoo finetune --resume {folder}, or re-run it"
    return "copy or pull the model folder again, or re-run the fine-tune"


def verify_files(folder: Path, config: dict[str, Any]) -> None:
    """Each file whose sha256 ``config.json`` records still has it (a truncated, bit-flipped or swapped file
    is refused before anything reads it; :func:`read_config` checks the config's own digest). Folders saved
    before digests were recorded are not checked."""
    folder = Path(folder)
    digests = config.get("sha256") or {}
    for name, expected in digests.items():
        if not (name == WEIGHTS or is_data_file_name(name)) or not (folder / name).is_file():
            continue  # a missing file is reported by the caller
        actual = sha256_file(folder / name)
        if actual != expected:
            raise ZooError(
                f"{folder / name} has sha256 {actual[:16]}…, but {CONFIG} records {expected[:16]}…: the file is"
                f" damaged or was replaced; {damage_advice(folder)}"
            )


def recorded_files(config: dict[str, Any]) -> list[str]:
    """The extra data files a config says travel with the model."""
    return list(config.get("files") or [])


def model_files(folder: str | Path) -> dict[str, Path]:
    """Every file of a finished model folder that a push publishes (never ``checkpoint/`` or caches)."""
    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ZooError(
            f"{folder} is not a finished run folder (missing {', '.join(missing)}); finish it with zoo finetune"
        )
    config = read_config(folder)
    verify_files(folder, config)  # never publish a damaged file
    check_weights_fit(folder, config)  # nor weights nobody can load with this config
    files = {name: folder / name for name in REQUIRED}
    for name in recorded_files(config):
        if not (folder / name).is_file():
            raise ZooError(
                f"{folder}: config.json records {name}, but the file is missing; re-run or re-save the model"
            )
        files[name] = folder / name
    files.update({name: folder / name for name in RUN_EXTRAS if (folder / name).is_file()})
    files.update({p.name: p for p in sorted(folder.glob("*.png")) if p.is_file() and is_data_file_name(p.name)})
    _refuse_links_out(folder, files)
    return files


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _refuse_misfit(folder: Path, config: dict[str, Any], own: dict, saved: dict) -> None:
    """One line when the saved weights' keys or shapes are not those of the architecture the config builds."""
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    wrong = [k for k in own if k in saved and saved[k] != own[k]]
    if missing or unexpected or wrong:
        detail = (
            f"{len(missing)} missing, {len(unexpected)} unexpected keys"
            if missing or unexpected
            else f"{wrong[0]} is {saved[wrong[0]]}, the config builds {own[wrong[0]]}"
        )
        raise ZooError(
            f"{folder / WEIGHTS} does not match {folder / CONFIG} ({detail}): the weights belong to another"
            f" architecture than its backbone {config['backbone'].get('name')!r}; {damage_advice(folder)}"
        )


def check_weights_fit(folder: Path, config: dict[str, Any]) -> None:
    """The weights are those of the architecture ``config.json`` describes (same keys, same shapes), checked
    cheaply: the shapes come from the safetensors header, the model is built on the meta device."""
    import torch
    from safetensors import SafetensorError, safe_open

    from .assembly import from_config

    try:
        with safe_open(str(folder / WEIGHTS), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(
            f"{folder / WEIGHTS} is not a readable safetensors file ({str(exc).splitlines()[0][:120]})"
        ) from None
    try:
        with torch.device("meta"):
            model = from_config(config)
    except Exception:  # a builder that needs real tensors: build it on the CPU (its own errors come from there)
        model = from_config(config)
    _refuse_misfit(folder, config, _shapes(model.state_dict()), saved)


def _refuse_links_out(folder: Path, files: dict[str, Path]) -> None:
    """A published file must be the folder's own: a symbolic link named like a plot or a metrics file
    but pointing elsewhere (``plot.png -> ~/.ssh/id_ed25519``) would upload whatever it points to."""
    inside = folder.resolve()
    for path in files.values():
        if path.is_symlink() and not path.resolve().is_relative_to(inside):
            raise ZooError(
                f"{path} is a symbolic link to {path.resolve()}, outside the run folder; push publishes only the"
                " folder's own files: replace the link with a copy of the file, or remove it"
            )


def load_model(folder: str | Path) -> TaskModel:
    """Rebuild the model saved in ``folder`` (config + safetensors weights + its declared files), in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .assembly import from_config
    from .task import create_task

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    if not config_path.is_file() or not weights_path.is_file():
        raise ZooError(f"{folder} is not a modelzoo model folder (needs {CONFIG} and {WEIGHTS})")
    config = read_config(folder)
    for name in recorded_files(config):
        if not (folder / name).is_file():
            raise ZooError(f"{folder} lacks {name}, which its config.json records; copy or pull the whole folder")
    verify_files(folder, config)
    model = from_config(config)
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(
            f"{weights_path} is not a readable safetensors file ({str(exc).splitlines()[0][:120]})"
        ) from None
    _refuse_misfit(folder, config, _shapes(model.state_dict()), _shapes(state))
    model.load_state_dict(state)
    model.backbone.load_files(folder)
    create_task(model.config["task"]).load_files(model, folder)
    model.eval()
    return model
