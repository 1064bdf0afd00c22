"""An exception nobody anticipated ends ``zoo`` with one line naming whose bug it is (modelzoo or the
plugin whose code raised) and how to get the traceback for the report; ``MODELZOO_TRACEBACK=1`` re-raises."""

from __future__ import annotations

import types

import pytest

from modelzoo import bugreport
from modelzoo import cli as cli_mod
from modelzoo.cli import main

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
    # code outside modelzoo and its plugins (here a library) is not blamed: the last owned frame is
    unowned = raised_in("somelib.core", "/site-packages/somelib/core.py", "def run():\n    raise ValueError('x\\ny')\n")
    assert bugreport.describe_bug(unowned) == (
        "a bug in modelzoo: ValueError: x y; rerun with MODELZOO_TRACEBACK=1 for the traceback and report it to modelzoo"
    )


def test_installed_plugins_are_known_by_their_distribution():
    owners = bugreport._plugin_packages()
    assert owners["modelzoo"] == "modelzoo" and owners["zoo_detection"] == "zoo-detection"


def test_zoo_prints_one_line_or_on_request_the_traceback(monkeypatch, capsys):
    def broken(args):
        return {}["missing"]

    monkeypatch.setattr(cli_mod, "cmd_list", broken)
    monkeypatch.delenv("MODELZOO_TRACEBACK", raising=False)
    assert main(["list"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: a bug in modelzoo (modelzoo/cli.py:") and "KeyError: 'missing'" in err
    monkeypatch.setenv("MODELZOO_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["list"])
