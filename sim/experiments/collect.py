"""Gather a sweep into one results table: ``coercion-sim-collect SWEEP_DIR``.

A sweep directory (``hydra.sweep.dir`` of a multirun) holds one directory per job. The collector
writes ``SWEEP_DIR/results.parquet`` (atomically) with one row per job:

* ``job``: the job's directory name (its number);
* one column per override of the job, named by its config key (``model.precaution``,
  ``policy.stockpile.months``, ``scenario``), with the override's value;
* ``seed``: the seed the run used (with ``replication`` set, the replication's seed; the root seed
  is then in ``root_seed``);
* ``status``: ``ok`` (complete outputs), ``failed`` (``failed.json``: the error is in ``error``),
  ``running`` (started, not finished) or ``missing`` (in the sweep's plan, not started);
* ``wall_seconds`` (the run and writing its outputs), ``run_seconds`` (the run alone), ``started``,
  ``finished`` (UTC datetimes, ``datetime64[ns, UTC]``; ``NaT`` for jobs without complete outputs):
  from ``provenance.json``;
* every scalar of ``metrics.json`` as a column named by its dotted key
  (``output_loss_share.JPN``).

It can run while jobs are still finishing (every file it reads is written atomically, and a job
counts as complete only once ``provenance.json``, written last, exists); run it again later for the
rest. ``--aggregate`` also writes ``results_summary.parquet``: for each combination of the override
columns other than the seed and the replication number, each numeric outcome's count, mean,
standard deviation and quantiles over the replications (a tidy table, one row per combination and
outcome).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.experiments.jobs import COMPLETE_FILE, FAILURE_FILE, NON_RESULT_KEYS, PLAN_FILE, job_status, replication_seed

__all__ = [
    "RESULTS_FILE",
    "SUMMARY_FILE",
    "REPLICATION_COLUMNS",
    "collect",
    "aggregate",
    "summary",
    "override_columns",
    "load_timeseries",
    "main",
]

RESULTS_FILE = "results.parquet"
SUMMARY_FILE = "results_summary.parquet"
#: Columns that number replications rather than tell scenarios or policies apart.
REPLICATION_COLUMNS = ("seed", "replication", "root_seed")
#: Columns the collector adds besides overrides and metrics.
META_COLUMNS = (
    "job",
    "seed",
    "replication",
    "root_seed",
    "status",
    "error",
    "wall_seconds",
    "run_seconds",
    "started",
    "finished",
)
#: Meta columns that hold moments (ISO 8601 text in ``provenance.json``, datetimes in the table).
TIME_COLUMNS = ("started", "finished")
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# --------------------------------------------------------------------------------------------------
# Reading job directories
# --------------------------------------------------------------------------------------------------
def _parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Hydra override strings (``key=value``) -> ``{key: typed value}``, in order; keys that do not
    change results (``resume``, ``output.progress``) are left out.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for text in overrides:
        o = parser.parse_override(str(text))
        if o.is_delete() or o.key_or_group in NON_RESULT_KEYS:
            continue
        value = o.value()
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        out[o.key_or_group] = value
    return out


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _job_dirs(sweep_dir: Path) -> list[Path]:
    dirs = [
        d
        for d in sweep_dir.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and ((d / ".hydra").is_dir() or (d / COMPLETE_FILE).exists() or (d / FAILURE_FILE).exists())
    ]
    return sorted(dirs, key=lambda d: (0, int(d.name), "") if d.name.isdigit() else (1, 0, d.name))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


def _job_row(job_dir: Path, planned: Sequence[Sequence[str]] = ()) -> tuple[dict[str, Any], list[str]]:
    """One job directory -> (row, its override strings).

    The overrides come from Hydra's ``.hydra/overrides.yaml``; a job killed while Hydra was writing
    that file takes them from its failure marker, else from the sweep's plan (``planned``, by job
    number), so the job is one row and not also a ``missing`` one.
    """
    status = job_status(job_dir)
    failure = _read_json(job_dir / FAILURE_FILE) if status == "failed" else None
    overrides = _read_yaml(job_dir / ".hydra" / "overrides.yaml")
    if not isinstance(overrides, list):
        if failure and isinstance(failure.get("overrides"), list):
            overrides = list(failure["overrides"])
        elif job_dir.name.isdigit() and int(job_dir.name) < len(planned):
            overrides = list(planned[int(job_dir.name)])
        else:
            overrides = []
    overrides = [str(o) for o in overrides]
    row: dict[str, Any] = {"job": job_dir.name}
    row.update(_parse_overrides(overrides))
    # The job's configuration: the resolved one a complete run saved, else what Hydra composed.
    config = _read_yaml(job_dir / "config.yaml") if status == "ok" else None
    if not isinstance(config, dict):
        config = _read_yaml(job_dir / ".hydra" / "config.yaml")
    config = config if isinstance(config, dict) else {}
    root = config.get("seed", row.get("seed"))
    replication = config.get("replication", row.get("replication"))
    metrics = _read_json(job_dir / "metrics.json") if status == "ok" else None
    if replication is not None and root is not None:
        row["root_seed"] = int(root)
        row["replication"] = int(replication)
        try:
            row["seed"] = replication_seed(int(root), int(replication))
        except ValueError:
            row["seed"] = None
    elif root is not None:
        row["seed"] = int(root)
    if metrics and "seed" in metrics:
        row["seed"] = int(metrics["seed"])
    row["status"] = status
    row["error"] = failure.get("error") if failure else None
    prov = _read_json(job_dir / COMPLETE_FILE) if status == "ok" else None
    if prov:
        row["wall_seconds"] = prov.get("wall_seconds")
        row["run_seconds"] = prov.get("run_seconds", prov.get("wall_seconds"))  # older outputs: wall only
        row["started"], row["finished"] = prov.get("started"), prov.get("finished")
    if metrics:
        flat: dict[str, Any] = {}
        _flatten("", metrics, flat)
        for key, value in flat.items():
            row.setdefault(key, value)  # an override or meta column of the same name wins
    return row, overrides


def _tidy_types(df: pd.DataFrame) -> pd.DataFrame:
    """Columns Parquet can store: all-number object columns as numbers, mixed ones as strings."""
    for col in df.columns:
        s = df[col]
        if s.dtype != object:
            continue
        values = s.dropna()
        if values.empty:
            continue
        kinds = {type(v) for v in values}
        if kinds <= {int, float} or kinds <= {bool}:
            df[col] = pd.to_numeric(s) if kinds <= {int, float} else s.astype("boolean")
        elif kinds != {str}:
            df[col] = s.map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    return df


# --------------------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------------------
def override_columns(results: pd.DataFrame) -> list[str]:
    """The columns of a results table that hold the jobs' overrides (recorded in ``attrs`` by
    :func:`collect`, else read from the Parquet metadata).
    """
    cols = results.attrs.get("override_columns")
    if cols is None:
        raise ValueError("results: no attrs['override_columns']; allowed: a table read from results.parquet")
    return [c for c in cols if c in results.columns]


def collect(
    sweep_dir: str | Path,
    *,
    aggregate: bool | None = False,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    write: bool = True,
) -> pd.DataFrame:
    """Gather a sweep directory into one table (one row per job) and write ``results.parquet``.

    Args:
        sweep_dir: The multirun's ``hydra.sweep.dir``.
        aggregate: Also write ``results_summary.parquet`` (see :func:`aggregate`); ``None``: when
            the sweep varies the seed or the replication number (more than one value; a fixed
            ``seed=1`` among the overrides gives no summary of one run per combination).
        quantiles: Quantiles for the summary.
        write: Write the files (``False``: only return the table).

    Returns:
        The results table; ``attrs["override_columns"]`` names the override columns.

    Raises:
        FileNotFoundError: ``sweep_dir`` is not a directory.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"SWEEP_DIR: {str(sweep_dir)!r} is not a directory; allowed: a multirun's sweep directory"
        )
    rows: list[dict[str, Any]] = []
    override_keys: dict[str, None] = {}
    seen: set[tuple[str, ...]] = set()
    plan = _read_json(sweep_dir / PLAN_FILE) or {}
    planned = plan.get("jobs", []) if isinstance(plan.get("jobs"), list) else []
    for job_dir in _job_dirs(sweep_dir):
        row, overrides = _job_row(job_dir, planned)
        override_keys.update(dict.fromkeys(_parse_overrides(overrides)))
        seen.add(tuple(overrides))
        rows.append(row)
    for overrides in planned:
        if tuple(overrides) in seen:
            continue
        parsed = _parse_overrides(overrides)
        override_keys.update(dict.fromkeys(parsed))
        row = {"job": None, **parsed, "status": "missing", "error": None}
        if "replication" in parsed and "seed" in parsed:
            row["root_seed"], row["seed"] = parsed["seed"], replication_seed(parsed["seed"], parsed["replication"])
        rows.append(row)
    overrides_cols = [k for k in override_keys if k != "job"]
    df = pd.DataFrame(rows)
    for col in META_COLUMNS:
        if col not in df.columns and col not in ("replication", "root_seed"):
            df[col] = None
    meta = [c for c in META_COLUMNS if c in df.columns and c != "job" and c not in overrides_cols]
    metric_cols = [c for c in df.columns if c not in meta and c not in overrides_cols and c != "job"]
    df = _tidy_types(df[["job", *overrides_cols, *meta, *metric_cols]].copy())
    for col in TIME_COLUMNS:
        if col not in overrides_cols:
            df[col] = _utc_datetimes(df[col])
    df.attrs["override_columns"] = overrides_cols
    if write:
        _write_table(df, sweep_dir / RESULTS_FILE)
    if aggregate is None:  # replications to aggregate: several seeds or replication numbers
        aggregate = any(c in overrides_cols and df[c].nunique(dropna=True) > 1 for c in ("seed", "replication"))
    if aggregate and write:
        _write_table(globals()["aggregate"](df, quantiles=quantiles), sweep_dir / SUMMARY_FILE)
        df.attrs["summary_file"] = str(sweep_dir / SUMMARY_FILE)
    return df


def _utc_datetimes(values: pd.Series) -> pd.Series:
    """ISO 8601 moments (``2026-01-01T00:00:02+00:00``; without an offset: UTC) as UTC datetimes;
    missing or unreadable ones are ``NaT``.
    """
    return pd.to_datetime(values.astype(object), utc=True, format="ISO8601", errors="coerce")


def _write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write a table with its ``attrs`` (override columns) in the Parquet metadata, atomically."""
    from sim.reporting.files import write_parquet

    return write_parquet(df, path)


def aggregate(results: pd.DataFrame, *, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
    """Replications aggregated: one row per combination of the override columns other than
    ``seed``/``replication``/``root_seed`` and per numeric outcome, with ``n`` (completed runs with a
    value), ``mean``, ``std`` and ``q<percent>`` columns (``q05``, ``q50``, ...).
    """
    groups = [c for c in override_columns(results) if c not in REPLICATION_COLUMNS]
    ok = results[results["status"] == "ok"]
    skip = set(META_COLUMNS) | set(override_columns(results))
    outcomes = [
        c
        for c in ok.columns
        if c not in skip and pd.api.types.is_numeric_dtype(ok[c]) and not pd.api.types.is_bool_dtype(ok[c])
    ]
    long = ok[groups + outcomes].melt(id_vars=groups, value_vars=outcomes, var_name="outcome", value_name="value")
    keys = [*groups, "outcome"]
    grouped = long.groupby(keys, dropna=False, sort=False)["value"]
    out = grouped.agg(n="count", mean="mean", std="std")
    for q in quantiles:
        out[f"q{round(q * 100):02d}"] = grouped.quantile(q)
    out = out.reset_index()
    out.attrs["override_columns"] = groups
    return out


def _seconds(a: Any, b: Any) -> float | None:
    """Seconds from moment ``a`` to ``b`` (datetimes or ISO 8601 text), ``None`` if either is missing."""
    a, b = pd.to_datetime(a, utc=True, errors="coerce"), pd.to_datetime(b, utc=True, errors="coerce")
    if pd.isna(a) or pd.isna(b):
        return None
    return float((b - a).total_seconds())


def summary(results: pd.DataFrame, sweep_dir: str | Path | None = None) -> str:
    """A few lines: jobs ok / failed / pending (running, missing), wall time, the first failures."""
    counts = results["status"].value_counts()
    n_ok, n_failed = int(counts.get("ok", 0)), int(counts.get("failed", 0))
    n_running, n_missing = int(counts.get("running", 0)), int(counts.get("missing", 0))
    where = f" in {sweep_dir}" if sweep_dir is not None else ""
    lines = [
        f"coercion-sim-collect: {len(results)} jobs{where}: {n_ok} ok, {n_failed} failed, "
        f"{n_running + n_missing} pending ({n_running} running, {n_missing} missing)"
    ]
    ok = results[results["status"] == "ok"]
    if len(ok) and ok["wall_seconds"].notna().any():
        walls = ok["wall_seconds"].astype(float)
        elapsed = _seconds(ok["started"].min(), ok["finished"].max())
        text = f"  wall time of the runs: {walls.sum():.1f} s in all, {walls.mean():.2f} s per run"
        if elapsed is not None:
            text += f"; first start to last finish {elapsed:.0f} s"
        lines.append(text)
    failed = results[results["status"] == "failed"]
    for _, row in failed.head(5).iterrows():
        error = str(row["error"]).strip().splitlines()[0] if row["error"] else "(no message)"
        lines.append(f"  failed: job {row['job']}: {error}")
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more failed jobs (column 'error')")
    if sweep_dir is not None:
        lines.append(f"  -> {Path(sweep_dir) / RESULTS_FILE}")
    if results.attrs.get("summary_file"):
        lines.append(f"  -> {results.attrs['summary_file']}")
    return "\n".join(lines)


def load_timeseries(
    sweep_dir: str | Path,
    results: pd.DataFrame | None = None,
    *,
    variable: str | Sequence[str],
    country: str | Sequence[str] | None = None,
    good: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The time series of the sweep's completed jobs, filtered, one table with the job's override
    columns and ``seed`` alongside (``results`` defaults to :func:`collect` without writing).
    """
    sweep_dir = Path(sweep_dir)
    if results is None:
        results = collect(sweep_dir, write=False)
    cols = [*override_columns(results), *[c for c in ("seed", "replication") if c in results.columns]]
    cols = list(dict.fromkeys(cols))

    def _as_list(x):
        return None if x is None else [x] if isinstance(x, str) else list(x)

    filters = [("variable", "in", _as_list(variable))]
    if country is not None:
        filters.append(("country", "in", _as_list(country)))
    if good is not None:
        filters.append(("good", "in", _as_list(good)))
    frames = []
    for _, row in results[results["status"] == "ok"].iterrows():
        ts = pd.read_parquet(sweep_dir / str(row["job"]) / "timeseries.parquet", filters=filters)
        for col in ["job", *cols]:
            ts[col] = row[col]
        frames.append(ts)
    if not frames:
        raise ValueError(f"no completed jobs with time series in {sweep_dir}")
    out = pd.concat(frames, ignore_index=True)
    for col in ("country", "good", "variable"):
        out[col] = out[col].astype(str)
    return out


def read_results(path: str | Path) -> pd.DataFrame:
    """Read ``results.parquet`` (or a sweep directory) back, with ``attrs["override_columns"]``."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return pd.read_parquet(path)


# --------------------------------------------------------------------------------------------------
# Console script
# --------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``coercion-sim-collect SWEEP_DIR [--aggregate] [--check]``): exit status 0,
    1 with ``--check`` when some job is not ``ok`` or when the table cannot be written, 2 for bad
    arguments.
    """
    parser = argparse.ArgumentParser(
        prog="coercion-sim-collect",
        description="Gather a sweep directory into SWEEP_DIR/results.parquet (one row per job).",
    )
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the multirun's sweep directory (hydra.sweep.dir)")
    parser.add_argument(
        "--aggregate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write results_summary.parquet: mean, std and quantiles over seeds/replications "
        "(default: when the sweep varies seed or replication)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 unless every job of the sweep finished ok (for scripts: a sweep itself "
        "exits 0 when some jobs failed)",
    )
    parser.add_argument(
        "--quantiles",
        default=",".join(str(q) for q in DEFAULT_QUANTILES),
        help="comma-separated quantiles for --aggregate (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        quantiles = [float(q) for q in args.quantiles.split(",") if q.strip()]
        if not all(0.0 <= q <= 1.0 for q in quantiles):
            raise ValueError
    except ValueError:
        allowed = "numbers in [0, 1], comma-separated"
        print(f"error: --quantiles: {args.quantiles!r} is invalid; allowed: {allowed}", file=sys.stderr)
        return 2
    try:
        results = collect(args.sweep_dir, aggregate=args.aggregate, quantiles=quantiles)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the sweep folder is full or read-only: the jobs' own files are untouched
        print(f"error: cannot write the results table into {args.sweep_dir}: {exc}", file=sys.stderr)
        return 1
    print(summary(results, args.sweep_dir))
    if args.check and not (len(results) and (results["status"] == "ok").all()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
