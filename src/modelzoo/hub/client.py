"""The Hub client around ``huggingface_hub``: references, endpoint, token, offline mode, and client
exceptions turned into one line that says what to do (the token never appears in it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ZooError
from ..util.names import check_path_name, path_name_problem
from ..util.text import first_line

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


# -- references and errors --------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, str | None]:
    """``[hf-hub:]org/name[@revision]`` → ``(repo_id, revision or None)``."""
    text = ref[len("hf-hub:") :] if ref.startswith("hf-hub:") else ref
    repo, sep, rev = text.partition("@")
    if not REPO_RE.match(repo) or (sep and not rev) or path_name_problem(repo, parts=2):
        raise ZooError(f"{ref[:80]!r} is not a Hub model reference; expected ORG/NAME[@BRANCH|TAG|SHA]")
    if rev:  # a revision names a file in the HF cache (refs/<revision>): it must stay inside it
        check_path_name(rev, "revision")
    return repo, rev or None


def check_commit(sha: object, asked: str, repo_id: str) -> str:
    """The commit a server answered for ``repo_id@asked``: 40 hex digits (it names a cache folder), and
    the very commit asked for when ``asked`` is one (a pinned sha is a promise, not a hint)."""
    if not isinstance(sha, str) or not COMMIT_RE.match(sha):
        raise ZooError(f"the Hub answered {str(sha)[:60]!r} as the commit of {repo_id}@{asked[:60]}; not a commit id")
    if COMMIT_RE.match(asked) and sha != asked:
        raise ZooError(
            f"{repo_id}@{asked[:12]} was pinned, but the Hub answered commit {sha[:12]}; refusing to use another commit"
        )
    return sha


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def _offline() -> bool:
    from huggingface_hub import constants

    check = getattr(constants, "is_offline_mode", None)
    return bool(check() if check else constants.HF_HUB_OFFLINE)


def _is_connection_error(exc: BaseException | None) -> bool:
    names = ("ConnectError", "ConnectTimeout", "TimeoutException", "ReadTimeout", "NetworkError", "ConnectionError")
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__name__ == "OfflineModeIsEnabled":
            return False
        if any(c.__name__ in names for c in type(exc).__mro__):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


#: what a connection that opened and then broke looks like (httpx, urllib3, the OS), and the client's own
#: "Consistency check failed" when a download ended short of its size
_DROPPED = (
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ConnectionResetError",
    "BrokenPipeError",
    "IncompleteRead",
)


def _dropped(exc: BaseException | None) -> BaseException | None:
    """The exception in ``exc``'s chain that says the connection was cut off mid-transfer, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if any(c.__name__ in _DROPPED for c in type(exc).__mro__):
            return exc
        if isinstance(exc, OSError) and str(exc).startswith("Consistency check failed"):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _cut_off(exc: BaseException) -> ZooError:
    detail = first_line(exc, 100) or "no details"
    return ZooError(
        f"the connection to the Hub at {endpoint()} was cut off mid-transfer ({type(exc).__name__}: {detail});"
        " nothing partial was kept: run the command again"
    )


def _unreachable() -> ZooError:
    return ZooError(
        f"cannot reach the Hub at {endpoint()}; check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use"
        " models already in the cache"
    )


def request_timeout() -> float:
    """Seconds one metadata request waits for the Hub's answer: the client's own ``HF_HUB_ETAG_TIMEOUT``
    (``huggingface_hub`` sends its API requests with no timeout at all, so a stalled server would hang)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def _timed_out(exc: BaseException | None) -> BaseException | None:
    """The exception in ``exc``'s chain that says a server took the connection but sent no answer in time
    (a read, write or pool timeout; a connect timeout is a Hub that cannot be reached)."""
    seen = 0
    while exc is not None and seen < 10:
        names = {c.__name__ for c in type(exc).__mro__}
        if "TimeoutException" in names and "ConnectTimeout" not in names:
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _silent(exc: BaseException) -> ZooError:
    """One line for a Hub that took the request and did not answer, naming the setting that bounded the wait."""
    from huggingface_hub import constants

    try:
        request = exc.request  # type: ignore[attr-defined]  # httpx's exceptions carry their request
        seconds = (request.extensions.get("timeout") or {}).get("read")
        download = request.method == "GET" and "/resolve/" in str(request.url)
    except (AttributeError, RuntimeError):
        seconds, download = None, False
    name = "HF_HUB_DOWNLOAD_TIMEOUT" if download else "HF_HUB_ETAG_TIMEOUT"
    if not isinstance(seconds, (int, float)):
        seconds = constants.HF_HUB_DOWNLOAD_TIMEOUT if download else constants.HF_HUB_ETAG_TIMEOUT
    return ZooError(
        f"the Hub at {endpoint()} took the connection but did not answer within {seconds:g} s ({name}); it is"
        f" stalled or overloaded: try again later (or raise {name})"
    )


def _offline_miss(what: str) -> ZooError:
    from huggingface_hub import constants

    return ZooError(
        f"{what} is not in the local HF cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1 forbids downloading;"
        " pull it once while online"
    )


@contextmanager
def hub_errors(repo_id: str, revision: str | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` exceptions into one-line :class:`ZooError` messages (never with the token)."""
    from huggingface_hub import errors

    remote_entry = getattr(errors, "RemoteEntryNotFoundError", errors.EntryNotFoundError)
    where = f"{repo_id}@{revision}" if revision else repo_id
    client_log = logging.getLogger("huggingface_hub")
    level = client_log.level
    client_log.setLevel(logging.ERROR)  # its retry warnings ("Trying to resume download...") are ours to say
    try:
        _check_token()
        yield
    except ZooError:
        raise
    except errors.OfflineModeIsEnabled:
        raise _offline_miss(where) from None
    except errors.LocalEntryNotFoundError as exc:
        if _offline():
            raise _offline_miss(where) from None
        if (cut := _dropped(exc)) is not None:
            raise _cut_off(cut) from None
        if (late := _timed_out(exc)) is not None:
            raise _silent(late) from None
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise ZooError(f"{where} could not be fetched and is not cached ({str(exc).splitlines()[0]})") from None
    except errors.RevisionNotFoundError:
        raise ZooError(
            f"revision {revision!r} not found in {repo_id} on {endpoint()}; use a branch, tag or full commit sha"
        ) from None
    except remote_entry as exc:
        name = str(getattr(exc, "response", None) and exc.response.url).rsplit("/", 1)[-1]
        raise ZooError(f"file {name} not found in {where} on {endpoint()}") from None
    except errors.RepositoryNotFoundError:
        raise ZooError(
            f"repo {repo_id} not found on {endpoint()} (or it is private and your token cannot read it)"
        ) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise ZooError(
                f"the Hub at {endpoint()} rejected your token (from HF_TOKEN or `hf auth login`); create a new"
                " access token and set it again"
            ) from None
        if status == 403:
            raise ZooError(
                f"your token may not write to {repo_id}; use a token with write access to its namespace"
            ) from None
        if status in (409, 412):
            raise ZooError(f"{where} changed on the Hub while pushing; run the push again") from None
        text = (getattr(exc, "server_message", None) or str(exc)).strip()
        detail = text.splitlines()[0] if text else "no details"
        raise ZooError(f"the Hub at {endpoint()} answered {status} for {where}: {detail}") from None
    except Exception as exc:
        if (cut := _dropped(exc)) is not None:
            raise _cut_off(cut) from None
        if (late := _timed_out(exc)) is not None:
            raise _silent(late) from None
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise
    finally:
        client_log.setLevel(level)


def _check_token(token: str | None = None) -> None:
    """A token that cannot go into an HTTP header (non-ASCII, a line break) is one line that never shows it."""
    from huggingface_hub import get_token

    token = token or get_token()
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise ZooError(
            "the Hugging Face token (from HF_TOKEN or `hf auth login`) holds characters no token has"
            " (spaces, line breaks or non-ASCII); copy it again from your Hub settings"
        )


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise ZooError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


# -- the HF cache's refs ------------------------------------------------------------------------
def cache_folder(repo_id: str):
    """The HF cache folder of a model repo (``models--ORG--NAME``)."""
    from pathlib import Path

    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def remember_refs(repo_id: str, revision: str, sha: str, token: str | None = None) -> None:
    """Record ``revision`` → ``sha`` in the HF cache layout (``refs/<name>``), and every other branch or tag
    that points at the same commit, so an offline ``ORG/NAME`` (``main``) resolves after ``ORG/NAME@v1``
    was fetched while ``v1`` was ``main``. Listing the refs is one request; when it fails only the named
    revision is recorded."""
    from huggingface_hub import HfApi

    from ..util.files import atomic_write_text

    names = [] if COMMIT_RE.match(revision) else [revision]
    try:
        refs = HfApi(token=token).list_repo_refs(repo_id)
        names += [r.name for r in [*refs.branches, *refs.tags] if r.target_commit == sha]
    except Exception:  # the refs are a convenience for offline use; the fetch itself succeeded
        pass
    for name in dict.fromkeys(names):
        if name and "/" not in name and name not in (".", ".."):
            atomic_write_text(cache_folder(repo_id) / "refs" / name, sha)


# -- listing ----------------------------------------------------------------------------------
def _check_reachable() -> None:
    """One request without retries: listing retries connection errors with backoff for ~23 s."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint(), timeout=request_timeout())
    except Exception as exc:
        if (late := _timed_out(exc)) is not None:
            raise _silent(late) from None
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise


#: seconds one Hub transfer (a pull's downloads, a push's upload) may take in all, unless
#: MODELZOO_HUB_TIMEOUT says otherwise
HUB_TIMEOUT = 3600.0


def within_deadline(work: Callable[[], Any], what: str, retry: str) -> Any:
    """``work()`` (a whole transfer) within the overall Hub deadline, ``MODELZOO_HUB_TIMEOUT``: a server
    that trickles, or takes the connection and never answers, ends in one line (``retry`` says what to do)
    instead of a hang; socket timeouts alone bound each read, not the whole."""
    from ..util.deadline import DeadlinePassed, call_with_deadline
    from ..util.env import env_number

    deadline = env_number("MODELZOO_HUB_TIMEOUT", HUB_TIMEOUT, "seconds")
    try:
        return call_with_deadline(work, deadline, what)
    except DeadlinePassed:
        error = ZooError(
            f"{what} did not finish within {deadline:g} s (MODELZOO_HUB_TIMEOUT): the Hub at {endpoint()} is"
            f" stalled or too slow; {retry}"
        )
        error.abandoned_work = True  # the transfer's thread is left behind: zoo must not wait for it at exit
        raise error from None
