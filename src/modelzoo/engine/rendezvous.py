"""``zoo finetune --nnodes M --rdzv-endpoint HOST:PORT [--rdzv-id ID]``: the rendezvous of several nodes.

It is torchrun's c10d rendezvous (``--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id
ID``: the node on HOST hosts its store, the nodes order themselves), which :func:`..launch.launch`
runs in-process; this module checks the flags, probes the endpoint before torchrun meets it (a program
there that is not a rendezvous store never answers torch's handshake, and torch's client then waits
forever), and turns a failed rendezvous into one line: nodes that did not come within
``MODELZOO_DIST_TIMEOUT`` (torchrun's ``join_timeout``), nobody hosting it, a closed rendezvous, a
rendezvous lost mid-run.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZooError
from ..util.text import first_line


@dataclass(frozen=True)
class Nodes:
    """``--nnodes M --rdzv-endpoint HOST:PORT [--rdzv-id ID]``: the same command on every node."""

    count: int
    host: str
    port: int
    run_id: str
    given_id: bool = False  # --rdzv-id was given (the resume command repeats it)

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def flags(self, join_timeout: float) -> list[str]:
        """torchrun's flags for this rendezvous (instead of ``--standalone``)."""
        wait = max(1, round(join_timeout))  # the store's read timeout: torch's 60 s, or less when we wait less
        conf = f"join_timeout={wait},read_timeout={min(60, wait)}"
        return [
            *("--nnodes", str(self.count), "--rdzv-backend", "c10d", "--rdzv-endpoint", self.endpoint),
            *("--rdzv-id", self.run_id, "--rdzv-conf", conf),
        ]

    def resume_flags(self) -> str:
        return f" --nnodes {self.count} --rdzv-endpoint {self.endpoint}" + (
            f" --rdzv-id {self.run_id}" if self.given_id else ""
        )


def parse_nodes(nnodes: int | None, endpoint: str | None, run_id: str | None, out: Path | None) -> Nodes | None:
    """The multi-node flags, checked (one line each); None for one machine."""
    if nnodes is None and endpoint is None and run_id is None:
        return None
    if nnodes is None or nnodes < 1:
        raise ZooError(
            "--nnodes must be a whole number >= 1 (the machines in the run), given with --rdzv-endpoint HOST:PORT"
        )
    if nnodes == 1 and endpoint is None and run_id is None:
        return None
    if endpoint is None:
        raise ZooError(
            f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, the same on every node (HOST: the node that hosts"
            " the rendezvous, e.g. the first of the job; PORT: a free port there, e.g. 29500)"
        )
    host, sep, port = endpoint.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ZooError(f"--rdzv-endpoint {endpoint!r} is not HOST:PORT (e.g. node1:29500 or 10.0.0.1:29500)")
    if out is None:
        raise ZooError(
            "several nodes write one run folder: give --out RUN_DIR on a file system every node shares"
            " (the same path on every node)"
        )
    if run_id is not None and (not run_id or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", run_id)):
        raise ZooError(f"--rdzv-id {run_id!r} must be letters, digits, '.', '_' or '-' (e.g. the job's id)")
    default_id = "zoo-" + (re.sub(r"[^A-Za-z0-9._-]", "_", out.resolve().name)[:100] or "run")
    return Nodes(nnodes, host, int(port), run_id or default_id, run_id is not None)


#: how long a rendezvous store may take to answer torch's handshake (it answers in milliseconds)
HANDSHAKE_SECONDS = 10.0


def probe_rendezvous(nodes: Nodes) -> None:
    """Before torchrun meets the endpoint: a program there that is not a rendezvous store is one line
    (torch's client would wait for its handshake forever, and torch's own errors are tracebacks). A
    free port on this machine is fine (this node will host the store), so is nothing listening yet (the
    host node may start later: torchrun waits for it up to ``join_timeout``)."""
    if _binds(nodes.host, nodes.port):
        return
    answer = store_answers(nodes.host, nodes.port, HANDSHAKE_SECONDS)
    if answer in ("store", "nobody"):
        return
    if answer == "silent":
        what = f"accepts connections but did not answer as a rendezvous store within {HANDSHAKE_SECONDS:g} s"
    else:
        what = f"is not a rendezvous store ({answer})"
    raise ZooError(
        f"{nodes.endpoint} {what}: another program holds port {nodes.port} on {nodes.host}; give every node"
        " another --rdzv-endpoint port (e.g. 29501), or stop what listens there"
    )


def _binds(host: str, port: int) -> bool:
    """Is ``host`` this machine and ``port`` free there (this node would host the rendezvous store)?"""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ZooError(
            f"--rdzv-endpoint host {host!r} does not resolve ({getattr(exc, 'strerror', None) or exc}); check the"
            " name, or give the host's IP address"
        ) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            try:
                sock.bind(address)
                return True
            except OSError:
                continue
    return False


def store_answers(host: str, port: int, seconds: float) -> str:
    """What answers torch's store handshake at ``host:port``: ``"store"`` (a rendezvous store),
    ``"nobody"`` (nothing accepted a connection within ``seconds``), ``"silent"`` (a connection was
    accepted, no answer came), else the error's first line. Torch's client waits forever on a silent
    peer: it runs in a daemon thread (the GIL is released meanwhile) that is left behind then."""
    import socket
    from datetime import timedelta

    from torch.distributed import TCPStore

    try:  # nothing accepts a connection: say so now (torch's client would retry for twice ``seconds``)
        socket.create_connection((host, port), timeout=min(seconds, 5.0)).close()
    except OSError:
        return "nobody"
    answer: list[str] = []

    def connect() -> None:
        try:
            TCPStore(host, port, is_master=False, timeout=timedelta(seconds=seconds), wait_for_workers=False)
            answer.append("store")
        except Exception as exc:  # torch's DistNetworkError, RuntimeError...
            answer.append("nobody" if "trying to connect" in str(exc) else first_line(exc) or "?")

    thread = threading.Thread(target=connect, name="zoo-rendezvous-probe", daemon=True)
    thread.start()
    thread.join(seconds + 5)  # a store answers in milliseconds
    return answer[0] if answer else "silent"


def rendezvous_failed(
    exc: BaseException, nodes: Nodes, started: bool, kept: str, peer_line: str | None = None
) -> ZooError:
    """The one line for a failed rendezvous of several nodes: the others did not come, nobody hosts it,
    it was closed, or, once workers had ``started``, it was lost mid-run: the node hosting it went away
    (``peer_line``: a worker that saw its peer go first has said which). ``kept``: what is left of the
    run and how this node alone continues it."""
    from torch.distributed.elastic.rendezvous.api import RendezvousClosedError, RendezvousTimeoutError

    from .distributed import timeout_seconds

    wait, where = timeout_seconds(), nodes.endpoint
    same = "same --nnodes, --rdzv-endpoint and --rdzv-id"
    if isinstance(exc, RendezvousTimeoutError):
        if store_answers(nodes.host, nodes.port, HANDSHAKE_SECONDS) == "store":
            return ZooError(
                f"the rendezvous at {where} waited {wait:g} s for {nodes.count} nodes and not all came: start the"
                f" command on every node ({same}) within that time; MODELZOO_DIST_TIMEOUT waits longer"
            )
        return ZooError(
            f"no rendezvous answered at {where} within {wait:g} s: start the command on {nodes.host} too (its node"
            f" hosts the rendezvous) and check that {nodes.host} is up and port {nodes.port} reachable from here"
        )
    if isinstance(exc, RendezvousClosedError):
        return ZooError(
            f"the rendezvous {nodes.run_id} at {where} is closed (a run under that id ended or failed); start every"
            f" node with another --rdzv-id, or wait for the other nodes to stop ({same})"
        )
    detail = (first_line(exc) or type(exc).__name__).removesuffix(" See inner exception for details.")
    if not started:
        return ZooError(
            f"could not reach the rendezvous at {where} ({detail}): start the command on {nodes.host} too (its node"
            f" hosts the rendezvous), check that {nodes.host} is up and port {nodes.port} reachable from here and"
            " not held by another program (else give every node another port)"
        )
    if peer_line is not None:  # torchrun stopped the workers, one had named the node it lost
        return ZooError(peer_line.removeprefix("error: "))
    return ZooError(
        f"lost the rendezvous at {where} ({detail}): the node on {nodes.host} that hosts it stopped or cannot be"
        f" reached; the run stopped; {kept} (on this node alone, or with --nnodes and a --rdzv-endpoint on a node"
        " that is up)"
    )
