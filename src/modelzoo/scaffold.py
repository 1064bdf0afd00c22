"""``zoo plugins new``: a working plugin skeleton (pyproject with entry point, hookimpl, one test)."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ZooError
from .fsutil import atomic_write_text

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A modelzoo plugin"
requires-python = ">=3.11"
dependencies = ["modelzoo", "torch"]

[project.entry-points.modelzoo]
{plugin} = "{module}.plugin"

[tool.setuptools.packages.find]
where = ["src"]
"""

PLUGIN = '''"""modelzoo plugin {dist}: registers its backbones through the modelzoo_specs hook."""

from modelzoo import Spec, hookimpl


@hookimpl
def modelzoo_specs():
    # Specs are plain data: listing never imports the builder module (or torch).
    return [
        Spec(
            name="{plugin}_tiny",
            kind="backbone",
            tasks=["image-classification"],
            outputs=["pooled"],
            num_features=32,
            builder="{module}.models:build_tiny",
            description="A tiny convolutional backbone (replace with your own)",
        )
    ]
'''

MODELS = '''"""Builders: imported only when a model is built."""

from torch import nn

from modelzoo.backbone import Backbone, FeatureInfo


def build_tiny(spec, output="pooled", pretrained=None, width=32):
    if pretrained is not None:
        raise ValueError("{plugin}_tiny has no pretrained weights")
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return Backbone(net, FeatureInfo("pooled", num_features=width), {{"input_size": [3, 32, 32]}})
'''

TEST = """import torch

import modelzoo
from modelzoo.catalog import catalog


def test_registered_and_builds():
    catalog(refresh=True)
    spec = modelzoo.get("{plugin}:{plugin}_tiny")
    assert spec.plugin == "{plugin}"
    backbone = modelzoo.create_backbone("{plugin}:{plugin}_tiny", pretrained=False)
    assert backbone(torch.zeros(2, 3, 32, 32)).shape == (2, 32)
"""


def new_plugin(dist: str, parent: str | Path = ".") -> Path:
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", dist) or dist == "zoo":
        raise ZooError(f"plugin name {dist!r} must be lowercase letters, digits and '-', e.g. zoo-myplugin")
    plugin = re.sub(r"^zoo-", "", dist).replace("-", "_")
    module = dist.replace("-", "_")
    root = Path(parent) / dist
    if root.exists():
        raise ZooError(f"{root} already exists; choose another name or --dir")
    fields = {"dist": dist, "plugin": plugin, "module": module}
    files = {
        "pyproject.toml": PYPROJECT,
        f"src/{module}/__init__.py": '"""{dist}: a modelzoo plugin."""\n',
        f"src/{module}/plugin.py": PLUGIN,
        f"src/{module}/models.py": MODELS,
        f"tests/test_{plugin}.py": TEST,
        "README.md": "# {dist}\n\nA modelzoo plugin. Install with `zoo plugins install -e .`, test with `pytest`.\n",
    }
    for rel, template in files.items():
        atomic_write_text(root / rel, template.format(**fields))
    return root
