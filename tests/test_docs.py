"""The documentation's commands run from the repository root of any clone.

A command that ``cd``-s into one machine's checkout (``/work/...``, ``/home/...``) or points at a
file by an absolute path works only there; every path in the docs must be relative to the root.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [ROOT / "README.md", *ROOT.joinpath("docs").rglob("*.md"), *ROOT.joinpath("benchmarks").glob("*.md")]
    + list(ROOT.joinpath("notebooks").glob("*.ipynb"))
    + list(ROOT.joinpath("experiments").glob("*.py"))
)
# absolute paths into a user's or a build machine's tree; URLs (https://...) are not matched
MACHINE_PATH = re.compile(r"(?<![\w:/.])(/work/|/home/|/root/|/Users/|/tmp/|~/)[\w.-]")
CD_ABSOLUTE = re.compile(r"\bcd\s+(/|~)")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_machine_specific_paths(path):
    bad = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}"
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if MACHINE_PATH.search(line) or CD_ABSOLUTE.search(line)
    ]
    assert not bad, "machine-specific paths in the docs:\n" + "\n".join(bad)


def test_make_targets_named_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)\b(?!=)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named, "the README names no make target"
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"
