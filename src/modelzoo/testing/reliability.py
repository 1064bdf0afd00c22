"""RELIABILITY.md, generated from a test run: one row per attack class, what was attacked, how many
cases ran (fuzz examples included), and what held.

Tests say what they attack with ``@pytest.mark.attack("<class>")`` (a module's ``pytestmark`` or a
test's); a test that tries many cases in one body (a hypothesis property, a loop over hostile files)
adds them with :func:`count`. ``pytest --reliability RELIABILITY.md`` writes the table at the end of
the session; a class "held" when every one of its tests passed.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

#: the attack classes, in the table's order: name -> what is attacked
ATTACKS: dict[str, str] = {
    "plugins": "plugins that fail to import, raise in a hook, return malformed specs, collide, import slowly,"
    " print to stdout, register a broken task class, never answer, call os._exit, or print at exit",
    "catalog": "the catalog cache and the shipped registry after installs, removals, upgrades, edits and damage",
    "run folder": "two runs into one folder, --out folders that are not ours, failed runs, --resume elsewhere,"
    " bit flips in any run file or checkpoint, a recipe edited before --resume, a push during training,"
    " weights of another architecture",
    "training faults": "kill -9 at random moments (also mid-checkpoint), a full disk, a NaN loss, Ctrl-C, SIGTERM,"
    " an address-space limit too small for torch",
    "distributed": "a killed worker, a port in use, an unreachable rendezvous, resuming with another world size,"
    " a lost node, a rendezvous port held by another program, nodes that never come, restarts across nodes,"
    " a task limit (pids.max, ulimit -u) that stops the workers' threads from starting, up front or mid-run",
    "caches": "stale, foreign and malicious feature caches",
    "recipes": "recipe values, types, overrides (--set) and encodings",
    "files": "truncated or bit-flipped safetensors, sha256 mismatches, malicious pickles as weights, checkpoints"
    " and pulled files, config.json with wrong shapes or keys, paths escaping their folder",
    "images": "corrupt, truncated and decompression-bomb images, symlinked and empty class folders, one class,"
    " 16-bit and float images (scaled, never clipped)",
    "annotations and text": "COCO/VOC annotation files and CSV/JSONL text data, malformed and non-UTF-8",
    "names": "model names, tags and list filters; revisions, repo ids and file names that would become paths",
    "terminal": "labels, names and messages holding ANSI escapes, newlines and other control characters",
    "hub": "bad tokens, missing repos/revisions/files, connections dropped mid-transfer, files not matching"
    " their sha256, a zoo.lock that disagrees with the server, a server that resolves any revision or answers"
    " another commit than the one pinned, unlisted files, a server that trickles or never answers; the token"
    " never printed",
}

_CASES: Counter = Counter()


def count(attack: str, cases: int = 1) -> None:
    """Add ``cases`` tried inside one test (fuzz examples, a loop over hostile inputs) to ``attack``."""
    if attack not in ATTACKS:
        raise KeyError(f"unknown attack class {attack!r}; add it to modelzoo.testing.reliability.ATTACKS")
    _CASES[attack] += cases


def fuzz_settings(max_examples: int):
    """Hypothesis settings for the suite's property tests: derandomized (the same examples every run),
    a fixed example count, no example database on disk, and a deadline far above any real case, so a
    hang fails the test instead of stalling the suite. Count each example with :func:`count`."""
    from hypothesis import HealthCheck, settings

    return settings(
        derandomize=True,
        max_examples=max_examples,
        deadline=10_000,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--reliability", metavar="PATH", help="write the attack table (RELIABILITY.md) of this run to PATH"
    )


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "attack(name): the attack class a test belongs to (RELIABILITY.md)")
    workers = getattr(config.option, "numprocesses", None)
    if config.getoption("reliability", None) and workers and config.pluginmanager.hasplugin("xdist"):
        import pytest

        raise pytest.UsageError("--reliability counts cases in one process: add -n 0")
    config._zoo_attacks = {"items": {}, "outcomes": defaultdict(Counter), "start": time.time()}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        marker = item.get_closest_marker("attack")
        if marker is not None:
            name = marker.args[0]
            if name not in ATTACKS:
                raise ValueError(f"{item.nodeid}: unknown attack class {name!r}")
            config._zoo_attacks["items"][item.nodeid] = name


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    path = config.getoption("--reliability")
    if not path:
        return
    items = config._zoo_attacks["items"]
    tests: Counter = Counter(items.values())
    failed: Counter = Counter()
    passed: Counter = Counter()
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            name = items.get(getattr(report, "nodeid", ""))
            if name is None or getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when == "call":
                passed[name] += 1
            elif outcome in ("failed", "error"):
                failed[name] += 1
    minutes = (time.time() - config._zoo_attacks["start"]) / 60
    lines = [
        "# Reliability",
        "",
        "Generated by `python -m pytest -n 0 [-m attack] --reliability=RELIABILITY.md` (the `modelzoo.testing`",
        f"pytest plugin) from the run of {time.strftime('%Y-%m-%d')}: {sum(tests.values())} attack tests in a run"
        f" that took {minutes:.1f} min. A case is a test, or one input a test tried (a fuzz example, a hostile file);",
        "an attack class held when every one of its tests passed.",
        "",
        "| attack class | what was attacked | tests | cases | held |",
        "|---|---|---|---|---|",
    ]
    for name, what in ATTACKS.items():
        n = tests.get(name, 0)
        cases = n + _CASES.get(name, 0)
        held = "-" if n == 0 else ("yes" if failed[name] == 0 and passed[name] == n else f"no ({failed[name]} failed)")
        lines.append(f"| {name} | {what} | {n} | {cases} | {held} |")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    terminalreporter.write_line(f"wrote {path}")
