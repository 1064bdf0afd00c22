"""The core's built-in plugin: generic classification heads, loaded through the same entry-point
path as any third-party plugin (``core = "modelzoo.builtin"``)."""

from __future__ import annotations

from .hookspecs import hookimpl
from .specs import Spec


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        Spec(
            name="linear",
            kind="head",
            tasks=["image-classification", "text-classification"],
            consumes=["pooled"],
            builder="modelzoo.heads:build_linear",
            options={"dropout": 0.0},
            description="Dropout + linear classifier on pooled features",
        ),
        Spec(
            name="mlp",
            kind="head",
            tasks=["image-classification", "text-classification"],
            consumes=["pooled"],
            builder="modelzoo.heads:build_mlp",
            options={"hidden": 512, "dropout": 0.1},
            description="Linear-GELU-Dropout-Linear classifier on pooled features",
        ),
    ]
