"""What zoo prints cannot drive the terminal or split a result line: control characters are escaped."""

from __future__ import annotations

import pytest

from modelzoo.cli.output import note, out
from modelzoo.util.text import escape, escape_lines

pytestmark = pytest.mark.attack("terminal")


def test_ansi_escapes_print_as_text_and_lines_stay_lines(capsys):
    out("label \x1b[31mred\x1b[0m\rover\nsecond line\tcell")
    note("note \x1b]0;title\x07 \x9b2J")
    captured = capsys.readouterr()
    assert captured.out == "label \\x1b[31mred\\x1b[0m\\x0dover\nsecond line\tcell\n"
    assert "\x1b" not in captured.err and "\x07" not in captured.err and "\x9b" not in captured.err


def test_one_value_is_one_line():
    assert escape("Shirt\nFAKE: 1.000") == "Shirt\\x0aFAKE: 1.000"
    assert escape_lines("ok\nok") == "ok\nok"


def test_an_error_message_with_a_newline_is_one_line(capsys):
    from modelzoo.cli.main import main

    assert main(["info", "no-such\n\x1b[2Jthing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and err.startswith("error: ")
