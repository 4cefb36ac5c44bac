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


def test_the_files_the_suite_hands_out_first_exist():
    """``conftest.LONGEST_FILES_FIRST`` names test files; a renamed one would silently lose its place."""
    import conftest

    missing = [name for name in conftest.LONGEST_FILES_FIRST if not (ROOT / "tests" / name).is_file()]
    assert not missing, f"conftest.LONGEST_FILES_FIRST names files that are not in tests/: {missing}"
    assert "--no-loadscope-reorder" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_make_targets_named_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)\b(?!=)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named, "the README names no make target"
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"


# --- Source notes: every number can be traced inside the repository --------------------------------------

SOURCES = ROOT / "docs" / "sources"
# The notes other parts of the repository cite by these names (scenario files, configs, the ODD, code).
SOURCE_NOTES = {
    "README.md",
    "rare_earth_2010.md",
    "other_cases_inputs.md",
    "parameters.md",
    "china_domestic_supply.md",
    "value_chains.md",
    "strategic_coercion.md",
    "model_design.md",
}
# Files that may cite a source note: configs, docs, code, experiments, notebooks, tests, data, the README.
CITING_FILES = sorted(
    p
    for pattern in (
        "configs/**/*.yaml",
        "docs/**/*.md",
        "sim/**/*.py",
        "sim/world/data/*",
        "experiments/*.py",
        "notebooks/*.ipynb",
        "tests/**/*.py",
        "tests/**/*.yaml",
        "benchmarks/*",
        "README.md",
        "CITATION.cff",
    )
    for p in ROOT.glob(pattern)
    if p.is_file() and p.suffix not in {".pyc", ".parquet", ".npz"} and p != Path(__file__).resolve()
)
CITED_NOTE = re.compile(r"docs/sources/([\w.-]+\.md)")
# A reference to a note kept outside the repository: the shared design and reference folders, or a note's
# bare name without its docs/sources/ path (the names the notes had outside, and the names they have here).
OUTSIDE_PATH = re.compile(r"(\.\./)+shared\b|\bshared/(reference|design)\b|\.\./reference\b")
NOTE_NAMES = (
    r"MODEL|STYLE|parameters|other_cases_inputs|rare_earth_2010|value_chains|strategic_coercion"
    r"|china_domestic_supply(?:_2006_2016)?|model_design"
)
BARE_NOTE = re.compile(rf"(?<!docs/sources/)(?<![\w/.-])(?:{NOTE_NAMES})\.md\b")
# In a note: a table body row, or a bullet, states a fact; it must carry a URL or say why it has none.
FACT_LINE = re.compile(r"^\s*(?:[-*] |\|)")
TABLE_RULE = re.compile(r"^\s*\|[\s:|-]+\|\s*$")
HAS_SOURCE = re.compile(r"https?://\S+|no URL: \S.{10,}")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def test_the_source_notes_the_repository_cites_are_all_present():
    present = {p.name for p in SOURCES.glob("*.md")}
    assert SOURCE_NOTES <= present, f"missing source notes: {sorted(SOURCE_NOTES - present)}"


@pytest.mark.parametrize("path", CITING_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_source_note_exists(path):
    missing = sorted({name for name in CITED_NOTE.findall(_text(path)) if not (SOURCES / name).is_file()})
    assert not missing, f"{path.relative_to(ROOT)} cites source notes that are not in docs/sources/: {missing}"


@pytest.mark.parametrize("path", CITING_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_cites_a_note_outside_the_repository(path):
    in_sources = path.parent == SOURCES  # notes link to each other by their bare names, inside the folder
    bad = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}"
        for i, line in enumerate(_text(path).splitlines(), start=1)
        if OUTSIDE_PATH.search(line) or (not in_sources and BARE_NOTE.search(line))
    ]
    assert not bad, "citations of notes outside the repository (cite docs/sources/<note>.md):\n" + "\n".join(bad)


def test_links_between_source_notes_resolve():
    for note in SOURCES.glob("*.md"):
        for target in re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)", _text(note)):
            assert (SOURCES / target).is_file(), f"{note.name} links to {target}, which is not in docs/sources/"


def test_the_index_lists_every_source_note():
    index = _text(SOURCES / "README.md")
    unlisted = [p.name for p in SOURCES.glob("*.md") if p.name != "README.md" and f"]({p.name})" not in index]
    assert not unlisted, f"docs/sources/README.md does not list: {unlisted}"


@pytest.mark.parametrize("name", sorted(SOURCE_NOTES - {"README.md"}))
def test_every_fact_in_a_source_note_names_its_url(name):
    """Each table row and bullet of a note carries an http(s) URL or 'no URL:' and the reason; a note that
    holds no outside facts (the design summary) says so once instead."""
    lines = _text(SOURCES / name).splitlines()
    if name == "model_design.md":
        assert any(line.startswith("**No URLs:**") and len(line) > 40 for line in lines), (
            "model_design.md must state why it carries no URLs"
        )
        return
    bad = []
    for i, line in enumerate(lines):
        if not FACT_LINE.match(line) or TABLE_RULE.match(line):
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]):
            continue  # a table's header row
        if not HAS_SOURCE.search(line):
            bad.append(f"{name}:{i + 1}: {line.strip()[:120]}")
    assert not bad, "facts without a URL or a stated reason:\n" + "\n".join(bad)
    assert len(re.findall(r"https?://", "\n".join(lines))) >= 20, f"{name} cites fewer than 20 URLs"
