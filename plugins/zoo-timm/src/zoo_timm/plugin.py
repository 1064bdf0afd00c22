"""Registers every timm architecture as a backbone, with all of timm's pretrained tags.

Runs only when the catalog is (re)built; the result is cached, so ``zoo list`` does not import timm.
"""

from __future__ import annotations

from modelzoo.sdk import PretrainedTag, Spec, hookimpl

from .offline import OFFLINE_TAGS

BUILDER = "zoo_timm.build:build"
LABEL_SETS = {1000: "imagenet-1k", 11821: "imagenet-12k", 21841: "imagenet-21k", 21843: "imagenet-21k"}


def _tag(arch: str, tag: str, cfg) -> PretrainedTag:
    sources = []
    if cfg.hf_hub_id:
        hub = f"hf-hub:{cfg.hf_hub_id}"
        if cfg.hf_hub_filename:
            hub += f"::{cfg.hf_hub_filename}"
        sources.append(hub)
    if cfg.url:
        sources.append(cfg.url)
    return PretrainedTag(
        tag=tag,
        sources=sources,
        license=cfg.license,
        input_size=list(cfg.input_size) if cfg.input_size else None,
        mean=[float(m) for m in cfg.mean] if cfg.mean else None,
        std=[float(s) for s in cfg.std] if cfg.std else None,
        interpolation=cfg.interpolation or None,
        crop_pct=cfg.crop_pct,
        num_classes=cfg.num_classes or None,
        labels=LABEL_SETS.get(cfg.num_classes),
    )


@hookimpl
def modelzoo_specs() -> list[Spec]:
    import timm
    from timm.models import get_arch_pretrained_cfgs

    modules = {arch: module for module in timm.list_modules() for arch in timm.list_models(module=module)}
    specs = []
    for arch in timm.list_models():
        tags = []
        for full_name, cfg in get_arch_pretrained_cfgs(arch).items():
            tag = full_name.partition(".")[2]
            if not tag or not (cfg.hf_hub_id or cfg.url):
                continue  # architecture defaults without any weights
            tags.append(_tag(arch, tag, cfg))
        offline = OFFLINE_TAGS.get(arch, [])
        tags.extend(offline)
        specs.append(
            Spec(
                name=arch,
                kind="backbone",
                tasks=["image-classification", "object-detection"],
                outputs=["pooled", "pyramid"],
                modality="image",
                builder=BUILDER,
                pretrained=tags,
                default_tag=offline[0].tag if offline else (tags[0].tag if tags else None),
                description=f"timm {arch}",
                meta={"library": "timm", "module": modules.get(arch, "")},
            )
        )
    return specs


@hookimpl
def modelzoo_hub_backbone(repo: str, sha: str, config: dict, files: dict) -> Spec | None:
    """A timm-format Hub repo (config.json with ``architecture`` + ``pretrained_cfg``) as a backbone."""
    from .hub import hub_spec

    return hub_spec(repo, sha, config, files)
