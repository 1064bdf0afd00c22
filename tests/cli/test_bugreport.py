"""An exception nobody anticipated ends ``zoo`` with one line naming whose bug it is (modelzoo or the
plugin whose code raised) and how to get the traceback for the report; ``MODELZOO_TRACEBACK=1`` re-raises."""

from __future__ import annotations

import types

import pytest

from modelzoo.cli import bugreport
from modelzoo.cli import catalog as cli_catalog
from modelzoo.cli import main as cli_mod
from modelzoo.cli.main import main

pytestmark = pytest.mark.attack("plugins")


def raised_in(module_name: str, filename: str, source: str) -> BaseException:
    """The exception that ``source``'s ``run()`` raises, with frames that belong to ``module_name``."""
    module = types.ModuleType(module_name)
    exec(compile(source, filename, "exec"), module.__dict__)
    try:
        module.run()
    except Exception as exc:
        return exc
    raise AssertionError("run() did not raise")


def test_a_plugins_bug_is_reported_as_that_plugins(monkeypatch):
    monkeypatch.setattr(bugreport, "_plugin_packages", lambda: {"modelzoo": "modelzoo", "zoo_fake": "zoo-fake"})
    source = "import json\n\ndef run():\n    json.loads(1.5)\n"
    exc = raised_in("zoo_fake.task", "/site-packages/zoo_fake/task.py", source)
    line = bugreport.describe_bug(exc)
    assert line.startswith("a bug in zoo-fake (zoo_fake/task.py:4): TypeError: the JSON object must be str")
    assert line.endswith("rerun with MODELZOO_TRACEBACK=1 for the traceback and report it to zoo-fake")
    assert "\n" not in line
    # with no frame of modelzoo or a plugin (here a library's only), modelzoo takes the report
    unowned = raised_in("somelib.core", "/site-packages/somelib/core.py", "def run():\n    raise ValueError('x\\ny')\n")
    assert bugreport.describe_bug(unowned) == (
        "a bug in modelzoo: ValueError: x y; rerun with MODELZOO_TRACEBACK=1 for the traceback and report it to modelzoo"
    )


def test_the_original_exception_and_a_workers_traceback_are_looked_through(monkeypatch):
    """modelzoo re-raising a plugin's error ``from`` it, and torch's loader copying a worker's traceback
    into the message: the plugin that broke is named either way."""
    monkeypatch.setattr(bugreport, "_plugin_packages", lambda: {"modelzoo": "modelzoo", "zoo_fake": "zoo-fake"})
    source = "def run():\n    try:\n        inner()\n    except KeyError as e:\n        raise RuntimeError('wrapped') from e\n"
    plugin = raised_in("zoo_fake.data", "/x/zoo_fake/data.py", "def run():\n    {}['k']\n")
    wrapper = types.ModuleType("modelzoo.fakeengine")
    exec(compile(source, "/x/modelzoo/fakeengine.py", "exec"), wrapper.__dict__)
    wrapper.inner = lambda: (_ for _ in ()).throw(plugin)
    try:
        wrapper.run()
    except RuntimeError as exc:
        assert bugreport.describe_bug(exc).startswith("a bug in zoo-fake (zoo_fake/data.py:2): RuntimeError: wrapped;")
    copied = ValueError(
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/site-packages/torch/utils/data/_utils/worker.py", line 349, in _worker_loop\n'
        '  File "/home/me/venv/site-packages/zoo_fake/data.py", line 31, in __getitem__\nValueError: bad row'
    )
    assert bugreport.describe_bug(copied).startswith(
        "a bug in zoo-fake (zoo_fake/data.py:31): ValueError: Caught ValueError in DataLoader worker process 0.;"
    )


@pytest.mark.parametrize("value, wanted", [("1", True), ("yes", True), ("0", False), ("false", False), ("", False)])
def test_the_traceback_switch(monkeypatch, value, wanted):
    monkeypatch.setenv("MODELZOO_TRACEBACK", value)
    assert bugreport.traceback_wanted() is wanted


def test_installed_plugins_are_known_by_their_distribution():
    owners = bugreport._plugin_packages()
    assert owners["modelzoo"] == "modelzoo" and owners["zoo_detection"] == "zoo-detection"


def test_zoo_prints_one_line_or_on_request_the_traceback(monkeypatch, capsys):
    def broken(args):
        return {}["missing"]

    monkeypatch.setattr(cli_catalog, "cmd_list", broken)
    monkeypatch.delenv("MODELZOO_TRACEBACK", raising=False)
    assert main(["list"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: a bug in modelzoo (modelzoo/cli/main.py:") and "KeyError: 'missing'" in err
    monkeypatch.setenv("MODELZOO_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["list"])
    monkeypatch.delenv("MODELZOO_TRACEBACK")
    monkeypatch.setattr(cli_mod, "build_parser", lambda command: broken(None))  # before any command runs
    assert main(["list"]) == 1
    assert capsys.readouterr().err.startswith("error: a bug in modelzoo (modelzoo/cli/main.py:")
