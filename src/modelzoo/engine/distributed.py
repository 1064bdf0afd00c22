"""Fine-tuning on several processes: torch.distributed (NCCL on CUDA, gloo on CPU) and DDP.

Processes are started by PyTorch's own launcher (``torch.distributed.run`` / ``torchrun``; ``zoo
finetune --nproc N`` calls it, see :mod:`modelzoo.engine.launch`), which sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``. What this module adds is what makes N processes train like one:

* **The global batch.** The recipe's ``batch_size`` is the global batch. Every process draws the same
  shuffled order (the one a single process's DataLoader would draw), cuts it into the same global
  batches, and takes its own contiguous share of each; a share's loss is weighted by its size, so
  the averaged gradient is the gradient of the whole global batch, also when the last batch is
  short or a process's share is empty (it then runs one example with weight 0, keeping the
  collective calls in step).
* **Evaluation.** Each example is evaluated by exactly one process (no padding, so nothing is
  counted twice); the tasks' picklable ``eval_batch`` outputs are gathered before the metrics.
* **Only rank 0 writes**, and rank 0 alone reads the run folder; what other processes need from it
  (a checkpoint to resume) is broadcast, so nodes without a shared file system work.
* **A lost peer is one line.** A collective that fails because another process or node went away
  (its connection reset, or no answer within ``MODELZOO_DIST_TIMEOUT``) becomes :class:`PeerLost`,
  naming the node that stopped answering (the survivors check in on the launcher's store) and the
  resume command.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from ..errors import ZooError

#: seconds a collective (or joining the group) may wait before the run stops with an error
DEFAULT_TIMEOUT = 600.0
#: seconds the survivors of a lost peer wait for each other on the store before naming who is gone
CHECK_IN_SECONDS = 2.0
#: what torch's collectives say when a peer process went away or stopped answering
_LOST = ("connection reset", "connection closed", "broken pipe", "timed out", "timeout", "socket closed", "eof")


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: started by torchrun: a process group (and DDP) even for a world of one, as the launcher asked
    launched: bool = False

    @property
    def distributed(self) -> bool:
        return self.size > 1 or self.launched

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes (run folder, checkpoints, plots, Hub)."""
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (one process when it is not set)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ZooError("RANK / WORLD_SIZE / LOCAL_RANK must be whole numbers (they are set by torchrun)") from None
    if size < 1 or not 0 <= rank < size:
        raise ZooError(f"RANK {rank} / WORLD_SIZE {size} do not describe a process of the run; launch with torchrun")
    return World(rank=rank, size=size, local_rank=local, launched="WORLD_SIZE" in os.environ)


def timeout_seconds() -> float:
    try:
        return float(os.environ.get("MODELZOO_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        raise ZooError("MODELZOO_DIST_TIMEOUT must be a number of seconds") from None


def init(world: World, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU); a rendezvous that fails is one clear line."""
    import torch.distributed as dist

    if not world.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        store = _attempt_store()
        dist.init_process_group(
            backend=backend,
            rank=world.rank,
            world_size=world.size,
            timeout=timedelta(seconds=timeout_seconds()),
            **({"store": store} if store is not None else {}),
        )
    except Exception as exc:
        raise _not_joined(exc, world, backend) from None
    # DDP's hint about depthwise kernels' gradient strides is about speed, said once per process: noise
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    store = _store()
    try:  # where each rank runs, for naming a node that is lost later (a busy store only loses the name)
        if store is not None:
            store.set(f"modelzoo/host/{world.rank}", f"{os.environ.get('GROUP_RANK', '?')} {socket.gethostname()}")
    except Exception:
        pass


#: what torch says when nobody answers at the rendezvous address (or the name does not resolve)
_UNANSWERED = ("timed out", "timeout", "refused", "unreachable", "no route", "not known", "name resolution")


def _not_joined(exc: BaseException, world: World, backend: str) -> ZooError:
    """The one line for a process group that could not form: the address, and what to do about it."""
    host, port = os.environ.get("MASTER_ADDR", "?"), os.environ.get("MASTER_PORT", "?")
    text = str(exc).strip()
    detail = text.splitlines()[0][:200] if text else type(exc).__name__
    lower = text.lower()
    if "address already in use" in lower or "eaddrinuse" in lower:
        fix = (
            f"port {port} on {host} is in use by another program: pick a free port (MASTER_PORT, or torchrun's"
            " --master-port / --rdzv-endpoint HOST:PORT) or stop what listens there"
        )
    elif "resource temporarily unavailable" in lower or "can't start new thread" in lower:
        fix = (
            "its threads could not start: this machine's or container's task limit was reached (pids.max,"
            " --pids-limit, ulimit -u); raise it or run fewer processes"
        )
    elif any(word in lower for word in _UNANSWERED):
        fix = (
            f"nobody answered at {host}:{port} within {timeout_seconds():g} s: check that {host} is up and reachable"
            " from here, that the port is open, and that the process of rank 0 was started"
            " (MODELZOO_DIST_TIMEOUT waits longer)"
        )
    else:
        fix = "check the rendezvous address and port (a port in use, a host not reachable) or set MODELZOO_DIST_TIMEOUT"
    return ZooError(f"rank {world.rank} could not join the {backend} process group at {host}:{port} ({detail}); {fix}")


class PeerLost(ZooError):
    """Another process of the run went away: the run stopped; the message names it and how to resume."""


def _attempt_store():
    """Under torchrun's agent store, this attempt's own part of it; None elsewhere (``env://`` as usual).

    torchrun keeps one store server for every restart of the workers, and torch keys a process group's
    addresses the same way in each attempt: a restarted worker could read the address of a worker that
    died in the attempt before and fail to connect ("Connection refused"). A prefix per attempt
    (``TORCHELASTIC_RESTART_COUNT``, which every node's launcher advances when its workers fail) keeps
    the attempts apart."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    import torch.distributed as dist

    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    wait = timedelta(seconds=timeout_seconds())
    base = dist.TCPStore(addr, port, is_master=False, timeout=wait, wait_for_workers=False)
    return dist.PrefixStore(f"modelzoo/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", base)


def _store():
    """A client of the launcher's key-value store (torchrun's), or None outside torchrun or when it is gone."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if "TORCHELASTIC_RUN_ID" not in os.environ or not addr or not (port or "").isdigit():
        return None
    import torch.distributed as dist

    try:
        wait = timedelta(seconds=min(CHECK_IN_SECONDS, timeout_seconds()))
        return dist.TCPStore(addr, int(port), is_master=False, timeout=wait, wait_for_workers=False)
    except Exception:
        return None


def is_lost_peer(exc: BaseException, world: World) -> bool:
    """Did a collective fail because another process went away (not because of this process's data)?"""
    text = str(exc).lower()
    return world.distributed and ("gloo" in text or "nccl" in text) and any(word in text for word in _LOST)


def silent_ranks(world: World) -> tuple[list[int], dict[int, str]]:
    """The ranks that do not check in on the store within ``CHECK_IN_SECONDS`` (every survivor of a lost
    peer checks in as it fails), and where each rank ran (``"<node> <host>"``); ``([], {})`` without a store."""
    store = _store()
    if store is None:
        return [], {}
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    try:
        store.set(f"modelzoo/alive/{attempt}/{world.rank}", "1")
        end = time.monotonic() + min(CHECK_IN_SECONDS, timeout_seconds())
        while True:
            silent = [r for r in range(world.size) if not store.check([f"modelzoo/alive/{attempt}/{r}"])]
            if not silent or time.monotonic() > end:
                break
            time.sleep(0.1)
        keys = {r: f"modelzoo/host/{r}" for r in silent}
        where = {r: store.get(key).decode() for r, key in keys.items() if store.check([key])}
    except Exception:  # the store went with the lost node: nothing more to learn
        return [], {}
    return silent, where


def lost_peer(exc: BaseException, world: World, out: Any = None) -> PeerLost:
    """The one line for a run whose peer went away: which node stopped answering, and how to resume."""
    from pathlib import Path

    silent, where = silent_ranks(world)
    nodes: dict[str, list[int]] = {}
    for rank in silent:
        node, _, host = where.get(rank, "? ?").partition(" ")
        nodes.setdefault(f"node {node} ({host})" if node != "?" else f"the node of rank {rank}", []).append(rank)
    who = (
        "; ".join(
            f"lost {name}: rank(s) {', '.join(map(str, ranks))} stopped answering" for name, ranks in nodes.items()
        )
        or "lost a peer process (it stopped answering)"
    )
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = detail.split("] ", 1)[-1].split(". ", 1)[0][:160]  # gloo: "[file:line] Read error [addr]: reset"
    if out is None:
        kept = "continue from the run folder's last checkpoint with: zoo finetune --resume RUN"
    elif (Path(out) / "checkpoint" / "last.pt").is_file():
        kept = f"the last checkpoint in {out} is intact; continue with: zoo finetune --resume {out}"
    else:
        kept = f"no checkpoint was written yet in {out}; start again"
    return PeerLost(f"rank {world.rank}: {who} ({detail}); the run stopped; {kept}")


def close() -> None:
    """Leave the process group. Called on the way out of a failure too: the failure is stamped with
    the time it reached here (``failed_at``), before the peers can notice this process leaving, so
    the ``--nproc`` launcher orders the failures of its workers by when they happened."""
    import sys

    import torch.distributed as dist

    failure = sys.exc_info()[1]
    if failure is not None and not hasattr(failure, "failed_at"):
        try:
            failure.failed_at = time.time()  # type: ignore[attr-defined]
        except AttributeError:  # an exception type that takes no attributes: the record's time then
            pass
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- what each process trains and evaluates -----------------------------------------------------
def shuffled_order(n: int, seed: int) -> list[int]:
    """The order ``DataLoader(shuffle=True, generator=Generator().manual_seed(seed))`` visits ``n``
    examples in (it draws its workers' base seed from the generator first, then the permutation), so
    one process and N processes see the same global batches; a test checks it against DataLoader."""
    gen = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=gen)
    return torch.randperm(n, generator=gen).tolist()


def share(items: list[int], world: World) -> list[int]:
    """This process's contiguous share of ``items`` (shares differ in size by at most one)."""
    k, extra = divmod(len(items), world.size)
    start = world.rank * k + min(world.rank, extra)
    return items[start : start + k + (world.rank < extra)]


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Batches of this process's share of each global batch, and the weight of each batch's loss.

    ``weights[i]`` makes the average of the processes' gradients the global batch's gradient:
    ``len(share) * world.size / len(global batch)``; an empty share runs one example with weight 0.
    """

    def __init__(self, n: int, global_batch: int, world: World, seed: int | None) -> None:
        order = shuffled_order(n, seed) if seed is not None else list(range(n))
        self.batches: list[list[int]] = []
        self.weights: list[float] = []
        for start in range(0, n, global_batch):
            chunk = order[start : start + global_batch]
            mine = share(chunk, world)
            self.batches.append(mine or chunk[:1])
            self.weights.append(len(mine) * world.size / len(chunk))

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class ShareSampler(torch.utils.data.Sampler):
    """Every example in order, or this process's contiguous share of them (evaluation, features)."""

    def __init__(self, n: int, world: World) -> None:
        self.indices = share(list(range(n)), world)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


# -- collectives ------------------------------------------------------------------------------------
def gather(items: list[Any], world: World) -> list[Any]:
    """Every process's ``items``, concatenated in rank order (each process gets the whole list)."""
    if not world.distributed:
        return items
    import torch.distributed as dist

    parts: list[Any] = [None] * world.size
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_all(values: list[float], world: World) -> list[float]:
    """Element-wise sums over the processes (train loss totals and counts)."""
    if not world.distributed:
        return values
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()
