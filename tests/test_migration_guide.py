"""docs/migration.md shows the adopter host's own code: each snippet marked "From
tests/zamio/<file>" must appear in that file, line for line, so the guide cannot drift
from what the adopter stage runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "migration.md"
SNIPPET = re.compile(r"```python\n# From (tests/zamio/[\w/.]+)\n(.*?)```", re.S)


def _snippets():
    return SNIPPET.findall(GUIDE.read_text(encoding="utf-8"))


def test_the_guide_shows_the_adopter_hosts_code():
    assert {path for path, _code in _snippets()} >= {
        "tests/zamio/settings.py", "tests/zamio/urls.py", "tests/zamio/api.py"}


@pytest.mark.parametrize("path,code", _snippets(), ids=lambda value: value if value.startswith("tests/") else "")
def test_each_snippet_is_in_its_file(path, code):
    source = (ROOT / path).read_text(encoding="utf-8")
    assert code in source, f"docs/migration.md shows code that {path} does not have:\n{code}"
