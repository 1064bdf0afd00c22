"""One rule for names that become paths (revisions, repo ids, file names, run names), attacked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelzoo.errors import ZooError
from modelzoo.testing import reliability
from modelzoo.util.names import check_path_name, path_name_problem

pytestmark = pytest.mark.attack("names")

GOOD = ["main", "v1", "v1.0.2", "refs/pr/1", "a" * 200, "release-2026_12", "0123456789abcdef" * 2 + "01234567"]
BAD = [
    "",
    "../../../../outside/x",
    "..",
    "a/../b",
    "./a",
    "/etc/passwd",
    "a//b",
    "C:\\x",
    "a\\b",
    "x" * 5000,
    "a" * 201,
    "main\n",
    "\x1b[31mred",
    "a/.",
    "a.lock",
    "-rf",
]


@pytest.mark.parametrize("name", GOOD)
def test_ordinary_names_pass(name):
    assert check_path_name(name, "revision") == name


@pytest.mark.parametrize("name", BAD, ids=range(len(BAD)))
def test_names_that_leave_their_folder_are_one_line(name):
    with pytest.raises(ZooError) as err:
        check_path_name(name, "revision")
    assert str(err.value).startswith("revision ") and "\n" not in str(err.value) and len(str(err.value)) < 200


def test_repo_ids_have_two_parts():
    assert path_name_problem("org/name", parts=2) is None
    assert path_name_problem("org", parts=2) and path_name_problem("a/b/c", parts=2)


@reliability.fuzz_settings(300)
@given(st.text(max_size=80))
def test_no_accepted_name_escapes_its_folder(name):
    reliability.count("names")
    if path_name_problem(name) is None:
        from pathlib import PurePosixPath

        joined = PurePosixPath("/base") / name
        assert ".." not in joined.parts and str(joined).startswith("/base/")
        assert name.isprintable()
