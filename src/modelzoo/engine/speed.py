"""Per-device speed settings, chosen by measurement rather than by the device's name.

What is fastest depends on the hardware, the backbone and the input size, not on whether the device is
called ``cuda``: on a CPU with AVX-512, channels_last ran a convolutional training step 2.7x faster than
the default NCHW layout, while bf16 autocast there was slower than fp32. So, once per (device, backbone,
input size, batch, threads), a micro-measurement (a few steps on random inputs, alternating the layouts,
torch's RNG and the model's state untouched) times each candidate:

* memory format: contiguous (NCHW) or channels_last (for models with a ``[C, H, W]`` input), for a
  training step (forward + backward, every backbone layer trainable) and for inference (the feature
  pass, evaluation, ``zoo predict``); channels_last is used where it is at least
  :data:`MIN_GAIN` faster;
* autocast: on CUDA the recipe's ``amp`` (bf16, else fp16) as before; on a CPU, bf16 autocast only when
  the recipe's ``amp`` allows it, the CPU computes bf16 natively, it is :data:`MIN_GAIN` faster than
  fp32 *and* its outputs stay within :data:`BF16_TOLERANCE` of fp32's (else fp32). A model without an
  image input (a text encoder) has no layout to choose and no random input to time, so its bf16 is
  timed on one real batch of the run's training data, through the task's own ``loss`` (training) and
  ``eval_batch`` (inference, and the tolerance check), :func:`measure_task`;
* ``torch.compile`` stays the recipe's ``compile`` (opt-in: its compile time outweighs short runs).

The timings are cached in the user cache (``speed.json``), so the measurement costs a second or two
once. ``MODELZOO_CHANNELS_LAST=1|0`` forces the layout (benches, tests). Threads and loader workers are
sized to the cores this process may use (:mod:`modelzoo.util.cores`), divided among the processes of
a run on one machine, so threads x processes never exceed them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..util.cores import usable_cores, worker_threads
from ..util.files import atomic_write_text, read_json_object
from ..util.paths import cache_dir

#: a candidate must be this much faster than the plain setting to be chosen (noise is ~5%)
MIN_GAIN = 1.1
#: bf16 outputs may differ from fp32's by this relative norm (beyond it accuracy is not held)
BF16_TOLERANCE = 0.02
CACHE_FILE = "speed.json"
#: timed steps per candidate per round (two rounds, alternating); a step's batch is at most this
STEPS, MAX_BATCH = 2, 16


@dataclass
class SpeedPlan:
    """What this process runs with; ``line()`` is the one start-up line."""

    device: str
    threads: int
    workers: int
    channels_last: bool = False
    #: autocast dtype name ("bfloat16", "float16") or None for fp32
    autocast: str | None = None
    compiled: bool = False
    #: channels_last's measured speed-up over contiguous (None: not measured, not an image model)
    gain: float | None = None
    #: bf16 autocast's measured speed-up over the best fp32 setting, when it was chosen on a CPU
    bf16_gain: float | None = None
    #: "measured", "cached" (measured before on this machine), "forced" (MODELZOO_CHANNELS_LAST), "n/a"
    how: str = "n/a"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return getattr(torch, self.autocast) if self.autocast else None

    def line(self) -> str:
        parts = [self.device, f"{self.threads} thread{'s' if self.threads != 1 else ''}"]
        if self.workers:
            parts.append(f"{self.workers} loader worker{'s' if self.workers != 1 else ''}")
        layout = "channels_last" if self.channels_last else "contiguous"
        if self.gain is not None and self.how in ("measured", "cached"):
            layout += f" ({self.gain:.2f}x {self.how})" if self.channels_last else f" (channels_last {self.gain:.2f}x)"
        elif self.how == "forced":
            layout += " (MODELZOO_CHANNELS_LAST)"
        if self.gain is not None or self.how not in ("measured", "cached") or self.channels_last:
            parts.append(layout)  # (a model without an image input has no layout to name)
        precision = {"bfloat16": "bf16 autocast", "float16": "fp16 autocast"}.get(self.autocast or "", "fp32")
        if self.bf16_gain is not None and self.autocast == "bfloat16":
            precision += f" ({self.bf16_gain:.2f}x {self.how})"
        parts.append(precision)
        if self.compiled:
            parts.append("compiled")
        return "speed: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- threads and workers ----------------------------------------------------------------------------
def local_processes() -> int:
    """Processes of this run on this machine (torchrun's ``LOCAL_WORLD_SIZE``; 1 when not launched)."""
    value = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, int(value)) if value.isdigit() else 1


def process_cores() -> int:
    """This process's share of the usable cores (at least 1)."""
    return max(1, usable_cores() // local_processes())


def auto_workers(cores: int, in_memory: bool, device: torch.device) -> int:
    """Loader worker processes: none for in-memory tensors on a CPU (decoding is cheap; workers would only
    compete with the compute threads), a quarter of the cores for files on a CPU (decoding overlaps the
    step, which keeps the rest), every core but one when a GPU computes (capped at 8)."""
    if device.type == "cpu":
        return 0 if in_memory else min(8, cores // 4)
    return max(0, min(8, cores - 1))


def configure_threads(cores: int, workers: int, device: torch.device) -> int:
    """Torch's intra-op threads: the cores left after the loader workers (at least 1); a user's
    ``OMP_NUM_THREADS`` (or torchrun's) is kept as given. Returns the thread count in use."""
    if "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, cores - workers) if device.type == "cpu" else max(1, min(cores - workers, 4))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return torch.get_num_threads()


def launch_threads(nproc: int, environ: dict[str, str] | None = None) -> None:
    """Before ``--nproc N`` starts its workers: each gets ``usable cores // N`` OpenMP threads (unless
    the user set ``OMP_NUM_THREADS``; torchrun would otherwise give each one thread), and every worker
    inherits the passive wait policy."""
    env = os.environ if environ is None else environ
    env.setdefault("OMP_NUM_THREADS", str(worker_threads(nproc, usable_cores(), env)))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# -- the measurement --------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return device.type


def image_shape(model: torch.nn.Module) -> list[int] | None:
    """``[C, H, W]`` from the model's preprocessing, or None (not an image model: nothing to choose)."""
    size = (getattr(model, "config", {}).get("preprocess") or {}).get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3 and all(isinstance(v, int) and v > 0 for v in size):
        return list(size)
    return None


def _reduce(out: Any) -> torch.Tensor:
    """One scalar from whatever a backbone returns (a tensor, or containers of feature maps)."""
    if isinstance(out, torch.Tensor):
        return out.float().mean()
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    parts = [_reduce(v) for v in items]
    return torch.stack(parts).sum() if parts else torch.zeros(())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(
    variants: dict[str, tuple[bool, torch.dtype | None]],
    step: Callable[[bool, torch.dtype | None], Any],
    examples: int,
    module: torch.nn.Module,
    device: torch.device,
) -> dict[str, float]:
    """Examples/s of each variant (channels_last?, autocast dtype) of ``step``: one warm-up step each, then
    two alternating rounds of :data:`STEPS` timed steps; the faster round counts (the least disturbed)."""
    best: dict[str, float] = {}
    for rnd in range(3):  # round 0 warms up
        for name, (cl, dtype) in variants.items():
            module.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            _sync(device)
            start = time.perf_counter()
            for _ in range(1 if rnd == 0 else STEPS):
                step(cl, dtype)
            _sync(device)
            if rnd:
                best[name] = max(best.get(name, 0.0), STEPS * examples / max(1e-9, time.perf_counter() - start))
    return best


def time_variants(
    module: torch.nn.Module, x: torch.Tensor, variants: dict[str, tuple[bool, torch.dtype | None]], train: bool
) -> dict[str, float]:
    """Examples/s of a forward (``train``: + backward) pass of ``module`` on ``x`` in each variant."""

    def step(cl: bool, dtype: torch.dtype | None) -> None:
        xx = x.contiguous(memory_format=torch.channels_last) if cl else x.contiguous()
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            if train:
                _reduce(module(xx)).backward()
            else:
                with torch.no_grad():
                    module(xx)

    return _time(variants, step, len(x), module, x.device)


def bf16_holds(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """bf16 autocast outputs within :data:`BF16_TOLERANCE` (relative norm) of fp32's on ``x``."""
    with torch.no_grad():
        ref = _reduce_tensor(module(x))
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            low = _reduce_tensor(module(x))
    return _close(low, ref)


def _reduce_tensor(out: Any) -> torch.Tensor:
    """The floating-point values of ``out`` (a tensor or containers of them) as one flat fp32 tensor."""
    if isinstance(out, torch.Tensor):
        return out.float().flatten() if out.is_floating_point() else torch.zeros(0)
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    parts = [_reduce_tensor(v).cpu() for v in items]
    return torch.cat(parts) if parts else torch.zeros(0)


def _close(low: torch.Tensor, ref: torch.Tensor) -> bool:
    return bool(ref.numel() and (low - ref).norm() <= BF16_TOLERANCE * ref.norm().clamp(min=1e-12))


def cpu_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def measure(
    backbone: torch.nn.Module, shape: list[int], batch: int, device: torch.device, try_bf16: bool, train: bool = True
) -> dict:
    """Timings of the candidates for inference and (``train``) a training step, with the module's state,
    its trainable flags and torch's RNG as they were before (and its layout contiguous)."""
    variants: dict[str, tuple[bool, torch.dtype | None]] = {"contiguous": (False, None), "channels_last": (True, None)}
    result: dict[str, Any] = {}
    with _untouched(backbone, device):
        x = torch.randn(min(batch, MAX_BATCH), *shape, device=device)
        backbone.eval()
        result["infer"] = time_variants(backbone, x, variants, train=False)
        if try_bf16 and bf16_holds(backbone, x):
            result["infer"].update(time_variants(backbone, x, {"channels_last_bf16": (True, torch.bfloat16)}, False))
        if not train:
            return result
        _all_trainable(backbone)
        result["train"] = time_variants(backbone, x, variants, train=True)
        if "channels_last_bf16" in result["infer"]:
            result["train"].update(time_variants(backbone, x, {"channels_last_bf16": (True, torch.bfloat16)}, True))
    return result


@contextlib.contextmanager
def _untouched(module: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """A measurement inside leaves things as they were: torch's RNG (forked, seeded 0 inside), the
    module's state, trainable flags, gradients, train/eval mode and layout (contiguous)."""
    buffers = {k: v.detach().clone() for k, v in module.state_dict().items()}
    flags = [(p, p.requires_grad) for p in module.parameters()]
    was_training = module.training
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        try:
            yield
        finally:
            for p, flag in flags:
                p.grad = None
                p.requires_grad_(flag)
            module.load_state_dict(buffers)
            module.train(was_training)
            module.to(memory_format=torch.contiguous_format)


def _all_trainable(module: torch.nn.Module) -> None:
    """Train mode, every floating-point parameter trainable: a training step as a full fine-tune takes it."""
    module.train()
    for p in module.parameters():
        p.requires_grad_(p.is_floating_point())


def measure_task(task: Any, model: torch.nn.Module, batch: Any, device: torch.device, train: bool = True) -> dict:
    """fp32 against bf16 autocast for a model without an image input, timed on ``batch`` (real training
    examples, as the task's DataLoader yields them, on the device) through the task's ``eval_batch``
    (inference) and ``loss`` + backward (training, every layer trainable); bf16 is timed only where its
    ``eval_batch`` outputs stay within :data:`BF16_TOLERANCE` of fp32's. The model's state, trainable
    flags and torch's RNG are left as they were, and so is the task's autocast dtype."""
    dtype_before = task.amp_dtype
    fp32 = {"contiguous": (False, None)}
    bf16 = {"bf16": (False, torch.bfloat16)}
    result: dict[str, Any] = {}

    def infer(_: bool, dtype: torch.dtype | None) -> Any:
        task.amp_dtype = dtype
        with torch.no_grad():
            return task.eval_batch(model, batch)

    def step(_: bool, dtype: torch.dtype | None) -> None:
        task.amp_dtype = dtype
        loss, _n = task.loss(model, batch)
        loss.backward()

    try:
        with _untouched(model, device):
            model.eval()
            with torch.no_grad():
                examples = int(task.loss(model, batch)[1])
            result["infer"] = _time(fp32, infer, examples, model, device)
            holds = _close(_reduce_tensor(infer(False, torch.bfloat16)), _reduce_tensor(infer(False, None)))
            if holds:
                result["infer"].update(_time(bf16, infer, examples, model, device))
            if not train:
                return result
            _all_trainable(model)
            result["train"] = _time(fp32, step, examples, model, device)
            if holds:
                result["train"].update(_time(bf16, step, examples, model, device))
    finally:
        task.amp_dtype = dtype_before
    return result


def _cache_keys(device: torch.device, arch: str, shape: list[int], batch: int, threads: int, bf16: bool):
    """(what was measured: device, backbone, input size, torch; how: batch, threads, bf16 tried)."""
    size = "x".join(map(str, shape))
    what = f"{device_name(device)}|{device.type}|{arch}|{size}|torch {torch.__version__}"
    return what, f"batch {min(batch, MAX_BATCH)}|threads {threads}|bf16 {bf16}"


def _read_cache() -> dict[str, Any]:
    path = cache_dir() / CACHE_FILE
    try:
        return read_json_object(path) if path.is_file() else {}
    except Exception:  # a broken cache file is measured over
        return {}


def batch_signature(batch: Any) -> str:
    """The shapes of a batch's tensors (``input_ids 16x47,...``): what a task-timed measurement is cached by."""
    if isinstance(batch, torch.Tensor):
        return "x".join(map(str, batch.shape))
    if isinstance(batch, dict):
        return ",".join(f"{k} {batch_signature(v)}" for k, v in sorted(batch.items(), key=lambda kv: str(kv[0])))
    if isinstance(batch, (list, tuple)):
        return "(" + ",".join(batch_signature(v) for v in batch) + ")"
    return type(batch).__name__


def timings(
    model: torch.nn.Module,
    device: torch.device,
    batch: int,
    threads: int,
    try_bf16: bool,
    any_how: bool = False,
    measure_now: bool = True,
    train: bool = True,
    example: Callable[[], tuple[Any, Any]] | None = None,
):
    """The cached timings of this model's backbone on this device (with a training step's when ``train``),
    measured now when missing (unless not ``measure_now``); (timings, how). ``any_how``: timings measured
    with any batch and threads will do. A model without an image input is timed only for bf16
    (``try_bf16``), on the (task, batch) that ``example()`` returns (:func:`measure_task`)."""
    shape = image_shape(model)
    task_batch = None
    if shape is None:
        if not (try_bf16 and example):
            return None, "n/a"
        try:
            task_batch = example()
        except Exception:  # no training batch to time on: keep the defaults
            return None, "n/a"
        size = [f"{task_batch[0].name}: {batch_signature(task_batch[1])}"]
    arch = str((getattr(model, "config", {}).get("backbone") or {}).get("name", type(model).__name__))
    what, how = _cache_keys(device, arch, shape or size, batch, threads, try_bf16)
    entry = _read_cache().get(what)
    entry = entry if isinstance(entry, dict) else {}
    usable = [v for k, v in entry.items() if (k == how or any_how) and isinstance(v, dict) and "infer" in v]
    usable = [v for v in usable if "train" in v or not train]
    if usable:
        return usable[0], "cached"
    if not measure_now:
        return None, "n/a"
    try:
        if task_batch is not None:
            found = measure_task(task_batch[0], model, task_batch[1], device, train)
        else:
            found = measure(model.backbone, shape, batch, device, try_bf16, train)
    except Exception:  # a model that cannot run on this input (or this layout): keep the defaults
        return None, "n/a"
    cached = _read_cache()  # another process may have added entries meanwhile
    if not isinstance(cached.get(what), dict):
        cached[what] = {}
    cached[what][how] = found
    try:
        path = cache_dir() / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(cached, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache: measured again next time
    return found, "measured"


def choose(found: dict | None, trains_backbone: bool, device: torch.device, amp_dtype: torch.dtype | None):
    """(channels_last, gain, autocast dtype) from the timings: the training step's when a stage trains
    the backbone, inference's otherwise."""
    if not found:
        return False, None, amp_dtype if device.type == "cuda" else None
    t = found.get("train" if trains_backbone else "infer") or {}
    base = t.get("contiguous") or 1e-9
    gain = t.get("channels_last", 0.0) / base if "channels_last" in t else None
    cl = gain is not None and gain >= MIN_GAIN
    dtype = amp_dtype if device.type == "cuda" else None
    if device.type == "cpu" and bf16_gain(t) >= MIN_GAIN:
        cl, dtype = "channels_last_bf16" in t, torch.bfloat16
    return cl, None if gain is None else round(gain, 2), dtype


def bf16_gain(t: dict[str, float]) -> float:
    """bf16 autocast's examples/s over the best fp32 variant's in timings ``t`` (0 when not timed)."""
    low = t.get("channels_last_bf16", t.get("bf16", 0.0))
    return low / max(t.get("contiguous", 0.0), t.get("channels_last", 0.0), 1e-9)


def forced_layout() -> bool | None:
    value = os.environ.get("MODELZOO_CHANNELS_LAST", "").strip().lower()
    return {"1": True, "true": True, "0": False, "false": False}.get(value)


def plan(
    model: torch.nn.Module,
    device: torch.device,
    *,
    batch: int,
    threads: int,
    workers: int,
    trains_backbone: bool,
    amp: bool,
    compiled: bool,
    example: Callable[[], tuple[Any, Any]] | None = None,
) -> SpeedPlan:
    """Measure (or read) and choose this run's settings; the model is left in the chosen layout."""
    cuda_amp = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if device.type == "cuda" else None
    amp_dtype = cuda_amp if amp else None
    p = SpeedPlan(device=str(device), threads=threads, workers=workers, compiled=compiled)
    forced = forced_layout()
    if forced is not None:
        p.channels_last, p.how = forced and image_shape(model) is not None, "forced"
        p.autocast = str(amp_dtype).removeprefix("torch.") if amp_dtype else None
    else:
        bf16 = amp and device.type == "cpu" and cpu_bf16()
        found, p.how = timings(model, device, batch, threads, bf16, train=trains_backbone, example=example)
        cl, p.gain, dtype = choose(found, trains_backbone, device, amp_dtype)
        p.channels_last, p.autocast = cl, str(dtype).removeprefix("torch.") if dtype else None
        if found and dtype == torch.bfloat16 and device.type == "cpu":
            p.bf16_gain = round(bf16_gain(found.get("train" if trains_backbone else "infer") or {}), 2)
    apply_layout(model, p.channels_last)
    return p


def apply_layout(model: torch.nn.Module, channels_last: bool) -> None:
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def inference_layout(model: torch.nn.Module, device: torch.device, measure_now: bool = True) -> bool:
    """``zoo predict`` / ``zoo eval``: channels_last when this backbone's inference timings say it is
    faster on this device (cached by a fine-tune, or measured now unless not ``measure_now``: a few
    inputs are not worth a measurement); the model is put in that layout."""
    if forced_layout() is not None:
        cl = bool(forced_layout()) and image_shape(model) is not None
    else:
        found, _ = timings(model, device, MAX_BATCH, torch.get_num_threads(), False, True, measure_now, train=False)
        cl = choose(found, False, device, None)[0]
    apply_layout(model, cl)
    return cl


# -- the engine's use ---------------------------------------------------------------------------------
def setup(trainer: Any) -> SpeedPlan:
    """Size the threads, measure or read the layout and precision for ``trainer``'s model (rank 0 decides,
    every process follows), hand them to its task, and say the choice once."""
    from . import distributed

    r, device = trainer.recipe, trainer.device
    threads = configure_threads(process_cores(), trainer.workers, device)
    trains = any(trainer.stage_groups)
    choice = None
    if trainer.world.main:
        batch = max(1, r.data.batch_size // max(1, trainer.world.size))
        p = plan(
            trainer.model, device, batch=batch, threads=threads, workers=trainer.workers,
            trains_backbone=trains, amp=r.amp, compiled=r.compile, example=lambda: (trainer.task, example_batch(trainer, batch)),
        )  # fmt: skip
        choice = p.to_dict()
    choice = distributed.broadcast(choice, trainer.world)
    p = SpeedPlan(**{**choice, "device": str(device), "threads": threads, "workers": trainer.workers})
    trainer.speed = p
    adopt(trainer, p.channels_last, p.autocast)
    trainer.log(p.line())
    return p


def example_batch(trainer: Any, size: int) -> Any:
    """The first ``min(size, MAX_BATCH)`` training examples as one batch on the device, as the task's
    DataLoader collates them (what a model without an image input is timed on)."""
    from torch.utils.data import DataLoader, Subset

    with torch.random.fork_rng(devices=[]):  # making the batch must not move the run's random stream
        data = trainer.task.dataset("train")
        first = Subset(data, range(min(size, MAX_BATCH, len(data))))
        loader = DataLoader(first, batch_size=len(first), collate_fn=trainer.task.collate)
        return trainer.task.to_device(next(iter(loader)))


def adopt(trainer: Any, channels_last: bool, autocast: str | None) -> None:
    """Run ``trainer`` with this layout and autocast dtype (a resumed run: the ones it started with)."""
    apply_layout(trainer.model, channels_last)
    trainer.speed.channels_last, trainer.speed.autocast = channels_last, autocast
    trainer.amp_dtype = getattr(torch, autocast) if autocast else None
    trainer.task.channels_last = channels_last
    trainer.task.amp_dtype = trainer.amp_dtype
