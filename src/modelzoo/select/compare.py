"""``zoo compare``: registered backbones side by side, with figures measured on this machine.

Static tables (timm's results CSVs, torchvision's weight metadata) know params, GMACs and a
throughput measured on someone else's GPU. This measures what matters here, for any registered
backbone, through the same builders the engine uses:

* parameters, and MACs of one forward pass at a given input size, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` and reported as MACs = FLOPs / 2 so the figures line
  up with timm's and torchvision's tables. PyTorch's table misses the CPU kernel of fused attention
  (``scaled_dot_product_attention`` dispatches to ``_scaled_dot_product_flash_attention_for_cpu``),
  which would silently count a transformer's attention as free; :data:`EXTRA_FORMULAS` adds it;
* forward and training throughput (examples/s), each measured for a few seconds;
* the pretrained tag's source, licence and published metrics (ImageNet top-1 where a plugin records it);
* the output kinds the backbone emits and the tasks it fits.

Weights do not change any of these figures, so backbones are built with random weights: comparing
needs no download.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..errors import ZooError
from ..util.cores import LoadWatch
from ..util.text import table as text_table


def _attention_flops(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """FLOPs of fused attention: ``q @ kᵀ`` and ``softmax(.) @ v`` (PyTorch's own formula for the CUDA kernels)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _extra_formulas() -> dict[Any, Callable[..., int]]:
    ops = torch.ops.aten
    found = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu",):
        op = getattr(ops, name, None)  # absent from some builds: nothing to add then
        if op is not None:
            found[op] = _attention_flops
    return found


#: FLOP formulas PyTorch's default table lacks (op -> formula on shapes), passed as ``custom_mapping``
EXTRA_FORMULAS = _extra_formulas()


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` as FlopCounterMode counts them, fused CPU attention included."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def count_macs(module: torch.nn.Module, inputs: Any) -> int:
    """Multiply-accumulates of one forward pass of ``module`` on ``inputs`` (FLOPs / 2), in eval mode."""
    was_training = module.training
    module.eval()
    try:
        return count_flops(module, inputs) // 2
    finally:
        module.train(was_training)


def throughput(step: Callable[[], Any], examples: int, seconds: float) -> float:
    """Examples per second of ``step`` (which processes ``examples``), run for about ``seconds``
    after one untimed warm-up call (at least two timed calls)."""
    step()
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= seconds:
            return calls * examples / elapsed


def measure_speed(
    module: torch.nn.Module, inputs: torch.Tensor, seconds: float, train: bool = True
) -> tuple[float, float | None]:
    """Forward (eval, no grad) and training (forward + backward + SGD step) examples/s on ``inputs``."""
    examples = len(inputs)
    module.eval()

    def forward() -> None:
        with torch.no_grad():
            module(inputs)

    fwd = throughput(forward, examples, seconds)
    if not train:
        return fwd, None
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-6)
    module.train()

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        out = module(inputs)
        out = torch.cat([o.flatten(1) for o in out], 1) if isinstance(out, (list, tuple)) else out
        out.float().mean().backward()
        opt.step()

    try:
        return fwd, throughput(train_step, examples, seconds)
    finally:
        module.eval()


@dataclass
class Comparison:
    """One backbone's row of ``zoo compare`` (also its ``--json`` object)."""

    name: str
    backbone: str
    tag: str | None
    params: int | None = None
    macs: int | None = None
    input_size: list[int] = field(default_factory=list)
    forward_per_s: float | None = None
    train_per_s: float | None = None
    source: str | None = None
    license: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    error: str | None = None
    #: one line when the machine was busier than its cores while measuring (the speeds are then low)
    busy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_backbone(name: str, image_size: int = 224, seconds: float = 3.0, batch_size: int = 16) -> Comparison:
    """Measure one registered backbone (``arch``, ``arch.tag`` or ``plugin:arch``) on random
    ``3 x image_size x image_size`` inputs; what cannot be measured is recorded in ``error``."""
    from ..catalog.lookup import catalog
    from ..model.assembly import create_backbone

    spec, tag_name = catalog().resolve(name, kind="backbone")
    tag = spec.tag(tag_name) if spec.pretrained else None
    row = Comparison(
        name=name,
        backbone=spec.qualified_name,
        tag=tag.tag if tag else None,
        input_size=[3, image_size, image_size],
        source=tag.sources[0] if tag and tag.sources else None,
        license=(tag.license if tag else None) or spec.license,
        metrics=dict(tag.metrics) if tag else {},
        outputs=list(spec.outputs),
        tasks=list(spec.tasks),
    )
    try:
        backbone = create_backbone(spec.qualified_name, pretrained=False)
    except ZooError as exc:
        row.error = f"cannot build: {exc}"
        return row
    row.params = sum(p.numel() for p in backbone.parameters())
    x = torch.randn(1, 3, image_size, image_size)
    try:
        row.macs = count_macs(backbone, x)
        if seconds > 0:
            row.forward_per_s, row.train_per_s = measure_speed(
                backbone, torch.randn(batch_size, 3, image_size, image_size), seconds
            )
    except Exception as exc:  # a backbone whose input is not an image (a text encoder...)
        row.error = f"cannot run on a {'x'.join(map(str, row.input_size))} input ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return row


def compare(
    names: list[str], image_size: int = 224, seconds: float = 3.0, batch_size: int = 16, log=None
) -> list[Comparison]:
    """:func:`compare_backbone` for each name, in order (unknown names fail before anything is measured)."""
    from ..catalog.lookup import catalog

    if not names:
        raise ZooError("name at least one backbone to compare (zoo list --kind backbone)")
    if image_size < 8 or image_size > 4096:
        raise ZooError(f"--image-size {image_size}: use a size between 8 and 4096 pixels")
    if seconds < 0 or batch_size < 1:
        raise ZooError("--seconds must be >= 0 and --batch-size >= 1")
    for name in names:
        catalog().resolve(name, kind="backbone")  # did-you-mean before any measuring
    rows = []
    watch = LoadWatch()
    for name in names:
        if log:
            log(f"measuring {name} ...")
        rows.append(compare_backbone(name, image_size, seconds, batch_size))
    busy = watch.note("speeds") if seconds > 0 else None
    for row in rows:
        row.busy = busy
    return rows


def _short_source(source: str | None) -> str:
    """``pkg:DIST``, ``hf-hub:REPO`` or the host of a URL: where weights come from, in a table cell."""
    if not source:
        return "-"
    if source.startswith("pkg:"):
        return "pkg:" + source[4:].split("/", 1)[0]
    if source.startswith("hf-hub:"):
        return source.split("::", 1)[0]
    if "://" in source:
        return source.split("://", 1)[1].split("/", 1)[0]
    return source if len(source) <= 40 else "..." + source[-37:]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def format_table(rows: list[Comparison]) -> str:
    """The rows as an aligned text table (metric columns: every published metric any row has)."""
    metric_keys = sorted({k for r in rows for k in r.metrics})
    size = rows[0].input_size[-1] if rows else 0
    headers = ["NAME", "PARAMS", f"GMACS@{size}", "FWD/S", "TRAIN/S", *(k.upper() for k in metric_keys)]
    headers += ["LICENSE", "SOURCE", "OUTPUTS", "TASKS"]
    table = []
    for r in rows:
        table.append(
            [
                r.name + (f".{r.tag}" if r.tag and "." not in r.name else ""),
                _num(r.params / 1e6 if r.params else None, ".2f") + ("M" if r.params else ""),
                _num(r.macs / 1e9 if r.macs is not None else None, ".3f"),
                _num(r.forward_per_s, ".1f"),
                _num(r.train_per_s, ".1f"),
                *(_num(r.metrics.get(k), ".2f") for k in metric_keys),
                r.license or "-",
                _short_source(r.source),
                ",".join(r.outputs) or "-",
                ",".join(r.tasks) or "-",
            ]
        )
    lines = text_table(headers, table).splitlines()
    lines += [f"{r.name}: {r.error}" for r in rows if r.error]
    return "\n".join(lines)
