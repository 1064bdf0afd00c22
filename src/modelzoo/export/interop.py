"""A pushed repo that another library loads as its own: ``Backbone.hub_export`` says how.

When a model's backbone knows a library that can load the whole model (backbone + this head) from a
Hub repo, it returns that library's ``config.json`` keys and weights files
(:class:`modelzoo.HubExport`). ``zoo push`` then publishes a ``config.json`` holding modelzoo's keys
*and* those keys (listed in ``interop_keys``, so modelzoo's strict config reader accepts them), and the
extra weights files, recorded in ``files`` with their sha256 like every declared file: they are in the
manifest, pulled and verified. modelzoo's own ``model.safetensors`` is unchanged, so ``modelzoo.load``
reads the repo as before. The backbone plugin checks that the other library's model gives the same
outputs; the core only writes and records the files.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ZooError
from ..model.folder import CONFIG, CONFIG_KEYS, REQUIRED, is_data_file_name, read_config, write_config
from ..util.files import atomic_write, sha256_file


def interop_files(folder: Path, work: Path) -> tuple[dict[str, Path], list[str]]:
    """The files a push of ``folder`` replaces or adds for another library (written under ``work``):
    ``config.json`` with that library's keys and its weights files (``{}`` when the backbone has none),
    and the backbone's card lines on using them."""
    from safetensors.torch import save_file

    from ..model.folder import load_model

    model = load_model(folder)
    extra = model.backbone.hub_export(model)
    if extra is None:
        return {}, []
    config = read_config(folder)
    who = f"backbone {config['backbone']['name']}.hub_export"
    own = CONFIG_KEYS[""]
    clash = [k for k, v in extra.config.items() if k in own and config.get(k) != v]
    if clash:
        raise ZooError(f"{who} sets {clash[0]!r} to another value than modelzoo's config; fix that plugin")
    added = {k: v for k, v in extra.config.items() if k not in own}
    try:
        json.dumps(added)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"{who} returned config keys that are not JSON ({exc}); fix that plugin") from None
    recorded = list(config.get("files") or [])
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    digests = dict(config.get("sha256") or {})
    for name, state in extra.files.items():
        if not (is_data_file_name(name) and name.endswith(".safetensors")) or name in REQUIRED or name in recorded:
            raise ZooError(f"{who} names weights file {name!r}: it must be a new plain *.safetensors name")
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        atomic_write(work / name, lambda p, t=tensors: save_file(t, str(p), metadata={"format": "pt"}))
        out[name] = work / name
        digests[name] = sha256_file(work / name)
    new_config = {
        **config,
        **added,
        "interop_keys": sorted(added),
        "files": sorted({*recorded, *extra.files}),
        "sha256": digests,
    }
    write_config(work, new_config)  # re-stamped with its own digest: the pushed config is verified on load
    out[CONFIG] = work / CONFIG
    return out, [str(line) for line in extra.usage]
