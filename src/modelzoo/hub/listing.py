"""``zoo list --hub ORG``: the modelzoo models an org published."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ZooError
from .client import _check_reachable, _offline, hub_errors


def list_hub_models(org: str, token: str | None = None) -> list[dict[str, Any]]:
    """The modelzoo models that ``org`` publishes: id, sha, task, license, metrics, last update."""
    from huggingface_hub import HfApi

    if not re.match(r"^[A-Za-z0-9][\w.-]*$", org):
        raise ZooError(f"{org!r} is not a Hub user or organization name")
    if _offline():
        raise ZooError("listing Hub models needs the Hub, but HF_HUB_OFFLINE=1 is set")
    _check_reachable()
    with hub_errors(org):
        models = list(HfApi(token=token).list_models(author=org, filter="modelzoo", cardData=True))
    out = []
    for m in models:
        card = m.card_data
        library = m.library_name or (getattr(card, "library_name", None) if card is not None else None)
        if library != "modelzoo":
            continue
        metrics = {r.metric_type: r.metric_value for r in (getattr(card, "eval_results", None) or [])}
        out.append(
            {
                "id": m.id,
                "sha": m.sha,
                "task": m.pipeline_tag,
                "license": getattr(card, "license", None),
                "private": bool(m.private),
                "updated": m.last_modified.isoformat() if m.last_modified else None,
                "metrics": metrics,
            }
        )
    return sorted(out, key=lambda d: d["id"])
