"""``zoo list --hub ORG``: the modelzoo models an org published, and its repos an installed plugin can use as
backbones (``model.backbone = "hf-hub:ORG/NAME"``): those whose library an installed backbone comes from."""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import ZooError
from .client import _check_reachable, _offline, hub_errors


def backbone_libraries() -> set[str]:
    """The libraries the installed backbones come from (their spec's ``meta["library"]``)."""
    from ..catalog.lookup import catalog

    return {
        lib.lower() for s in catalog().specs if s.kind == "backbone" and isinstance(lib := s.meta.get("library"), str)
    }


def list_hub_models(org: str, token: str | None = None) -> list[dict[str, Any]]:
    """What ``org`` publishes that modelzoo can use: its modelzoo models (``kind`` "model": id, sha, task,
    license, metrics, last update) and its repos of a library an installed plugin builds backbones from
    (``kind`` "backbone", with ``library``)."""
    from huggingface_hub import HfApi

    if not re.match(r"^[A-Za-z0-9][\w.-]*$", org):
        raise ZooError(f"{org!r} is not a Hub user or organization name")
    if _offline():
        raise ZooError("listing Hub models needs the Hub, but HF_HUB_OFFLINE=1 is set")
    _check_reachable()
    with hub_errors(org):
        models = list(HfApi(token=token).list_models(author=org, cardData=True))
    libraries = backbone_libraries()
    out = [row for m in models if (row := _row(m, libraries)) is not None]
    return sorted(out, key=lambda d: d["id"])


#: a card value shown in a listing: one short printable line (anything else is shown as '-')
_MAX_TEXT = 200


def _text(value: Any) -> str | None:
    """``value`` when it is a short printable string, else None: card data is the publisher's free YAML."""
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or not value.isprintable():
        return None
    return value


def _metrics(card: Any) -> dict[str, float]:
    """A card's ``model-index`` figures that are named numbers; malformed entries are left out."""
    try:
        results = getattr(card, "eval_results", None) or []
    except Exception:  # huggingface_hub parses the publisher's YAML lazily in some versions
        return {}
    out: dict[str, float] = {}
    for r in results if isinstance(results, list) else []:
        name, value = _text(getattr(r, "metric_type", None)), getattr(r, "metric_value", None)
        if name and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = value
    return out


def _row(m: Any, libraries: set[str]) -> dict[str, Any] | None:
    """One listing row, every card value checked for its type: a model whose card data is malformed is
    still listed, with None (shown as '-') where a value is unusable."""
    card = m.card_data
    library = _text(m.library_name) or _text(getattr(card, "library_name", None) if card is not None else None)
    common = {
        "id": str(m.id),
        "sha": _text(m.sha),
        "license": _text(getattr(card, "license", None)),
        "private": bool(m.private),
        "updated": m.last_modified.isoformat() if m.last_modified else None,
    }
    if library == "modelzoo":
        return {**common, "kind": "model", "task": _text(m.pipeline_tag), "metrics": _metrics(card)}
    if library is not None and library.lower() in libraries:
        return {**common, "kind": "backbone", "library": library}
    return None
