"""Writing a run's data files (sim/reporting/files.py): every writer goes through a temporary file and a rename,
so a crash mid-write leaves the previous file (or none), never a truncated one; and provenance records
what produced the run.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import helpers
import pandas as pd
import pytest

import sim.reporting.files as outputs

TABLE = pd.DataFrame({"step": [0, 1, 2], "country": ["JPN", "JPN", "CHN"], "value": [1.5, 2.5, -0.25]})


def _writers():
    """(name, write(path), read(path) -> content) for every data-file writer."""
    return {
        "parquet": (lambda p: outputs.write_parquet(TABLE, p), lambda p: pd.read_parquet(p)),
        "json": (lambda p: outputs.write_json({"b": 2, "a": [1.0, None]}, p), lambda p: json.loads(p.read_text())),
        "text": (lambda p: outputs.atomic_write_text(p, "seed: 1\nname: Å\n"), lambda p: p.read_text("utf-8")),
        "bytes": (lambda p: outputs.atomic_write_bytes(p, b"\x00\x01" * 1000), lambda p: p.read_bytes()),
    }


@pytest.mark.parametrize("kind", sorted(_writers()))
def test_writers_produce_the_file_and_create_its_folder(kind, tmp_path):
    write, read = _writers()[kind]
    path = tmp_path / "run" / "sub" / f"out.{kind}"
    assert write(path) == path
    content = read(path)
    if kind == "parquet":
        pd.testing.assert_frame_equal(content, TABLE)
    elif kind == "json":
        assert content == {"a": [1.0, None], "b": 2}
        assert path.read_text().startswith('{\n  "a"') and path.read_text().endswith("}\n")  # sorted, indented
    elif kind == "text":
        assert content == "seed: 1\nname: Å\n"
    else:
        assert content == b"\x00\x01" * 1000
    assert helpers.temp_files_in(tmp_path) == []
    # The usual permissions (mkstemp alone would make the file private to its owner).
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


class _Crash(Exception):
    pass


@pytest.mark.parametrize("kind", sorted(_writers()))
@pytest.mark.parametrize("existing", [True, False], ids=["over_old_file", "new_file"])
def test_a_crash_between_write_and_rename_leaves_the_old_file_or_none(kind, existing, tmp_path, monkeypatch):
    """A job killed after writing the data but before the rename leaves the previous complete file (a
    reader of an earlier run's outputs sees it unchanged) or no file, and no temporary file behind."""
    write, read = _writers()[kind]
    path = tmp_path / f"out.{kind}"
    old = None
    if existing:
        write(path)
        old = path.read_bytes()
    renamed = []

    def crash(src, dst):
        renamed.append((src, dst))
        raise _Crash("killed before the rename")

    monkeypatch.setattr(outputs.os, "replace", crash)
    with pytest.raises(_Crash):
        write(path)
    assert len(renamed) == 1 and os.fspath(renamed[0][1]) == os.fspath(path)
    # The temporary file sits beside the target (a rename across file systems is not atomic) and is named
    # .NAME.*.tmp, so a reader listing the run's files and the clean-up of stopped jobs can tell it apart.
    tmp = Path(renamed[0][0])
    assert tmp.parent == path.parent
    assert tmp.name.startswith(f".{path.name}.") and tmp.name.endswith(".tmp")
    if existing:
        assert path.read_bytes() == old
    else:
        assert not path.exists()
    assert helpers.temp_files_in(tmp_path) == []


@pytest.mark.parametrize("kind", sorted(_writers()))
def test_a_crash_while_writing_never_leaves_a_truncated_file(kind, tmp_path, monkeypatch):
    """The disk fills up (or the job dies) half way through the data: the old file is intact."""
    write, read = _writers()[kind]
    path = tmp_path / f"out.{kind}"
    outputs.atomic_write_bytes(path, b"previous complete file")
    real_fdopen = outputs.os.fdopen

    class HalfWriter:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()
            return False

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(outputs.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        write(path)
    assert path.read_bytes() == b"previous complete file"
    assert helpers.temp_files_in(tmp_path) == []


def test_parquet_tables_are_written_without_their_index(tmp_path):
    """A filtered table keeps its row labels in memory; the file holds only its columns."""
    subset = TABLE[TABLE.country == "JPN"].iloc[::-1]  # row labels 1, 0
    path = outputs.write_parquet(subset, tmp_path / "t.parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(TABLE.columns)
    assert back.index.equals(pd.RangeIndex(2))
    pd.testing.assert_frame_equal(back, subset.reset_index(drop=True))


def test_write_json_refuses_nan_rather_than_writing_invalid_json(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError):
        outputs.write_json({"x": float("nan")}, path)
    assert not path.exists() and helpers.temp_files_in(tmp_path) == []


def test_provenance_records_the_run():
    prov = outputs.provenance(
        seed=7, wall_seconds=1.23456, started="2026-01-01T00:00:00", finished="2026-01-01T00:00:02", extra={"x": 1}
    )
    assert prov["package"] == "coercion-sim" and prov["seed"] == 7 and prov["x"] == 1
    assert prov["wall_seconds"] == 1.235
    assert prov["started"] == "2026-01-01T00:00:00" and prov["finished"] == "2026-01-01T00:00:02"
    assert set(prov["dependencies"]) == set(outputs._DEPENDENCIES)
    assert prov["dependencies"]["numpy"] is not None and prov["version"] is not None
    assert set(prov["git"]) == {"commit", "dirty"}
    json.dumps(prov, allow_nan=False)  # provenance.json must be writable
    assert "x" not in outputs.provenance(seed=1, wall_seconds=0, started="", finished="")
