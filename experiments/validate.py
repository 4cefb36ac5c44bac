"""Calibrate, predict with bands, compare levers with bands: ``make validate`` / ``make validate-quick``.

    .venv/bin/python experiments/validate.py [--budget quick|default] [--workers 2] [--seed 1]
                                             [--out outputs/validation] [--resume DIR] [--report-only DIR]

Writes ``outputs/validation/<timestamp>/`` (docs/calibration.md): ``posterior.parquet`` (a column per
parameter and ``weight``), ``predictive.parquet`` (tidy: case, kind, draw, seed, quantile, date, country,
good, variable, value; scalar metrics have no date), ``levers.parquet``, ``report.md``, ``figures/``
(corner plot, fan charts, lever comparison; PNG and PDF), ``provenance.json`` and ``abc.db`` (pyabc's
history). Phases already done are skipped on ``--resume`` (the ABC resumes from its database).

Budgets, in model runs (about 0.17 s of CPU each for rare_earth_2010 on the fast path, i.e. ~700 runs a
minute on 2 free cores; with pyabc's bookkeeping and the process pool about 550 a minute were measured):

* ``quick``: ABC 24 particles x 3 generations after a 24-run calibration sample (no generation starts past
  150 runs; 172 in the measured run), predictive 6 draws x 1 seed x 5 cases (30 runs), levers 6 draws x 10
  variants (60 runs): about 260 runs, about 1 minute on 2 quiet cores;
* ``default``: ABC 300 particles x 10 generations after a 300-run calibration sample (no generation starts
  past 7,000 runs; 7,328 in the measured run), predictive 60 draws x 2 seeds x 5 cases (600 runs), levers
  60 draws x 10 variants (600 runs): about 8,500 runs, 15.5 minutes measured on 2 quiet cores. Both take
  longer on a busy machine (the quick budget once took 21 minutes under a load average of ~9); ``--resume``
  continues an interrupted run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from counterfactual_levers import VARIANTS  # noqa: E402

from sim.experiments import calibration as cal  # noqa: E402
from sim.reporting.files import atomic_write_bytes, atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {
    "quick": {"population": 24, "generations": 3, "max_simulations": 150, "draws": 6, "seeds": 1, "lever_draws": 6},
    "default": {
        "population": 300,
        "generations": 10,
        "max_simulations": 7000,
        "draws": 60,
        "seeds": 2,
        "lever_draws": 60,
    },
}


def _parquet(df: pd.DataFrame, path: Path) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def _bar(total: int, desc: str, mode: str):
    from sim.reporting.progress import shown

    return tqdm(total=total, desc=f"[coercion-sim] {desc}", disable=not shown(mode), file=sys.stderr, mininterval=1.0)


def _log(msg: str) -> None:
    print(f"[coercion-sim] {msg}", file=sys.stderr, flush=True)


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance(args, budget: dict, timings: dict) -> dict:
    """Seed, budget, versions, git commit and machine of a validation run."""
    versions = {}
    for pkg in ("coercion-sim", "pyabc", "numpy", "pandas", "numba", "mesa", "omegaconf"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "seed": args.seed,
        "budget_name": args.budget,
        "budget": budget,
        "workers": args.workers,
        "parameters": [p.__dict__ | {"keys": list(p.keys)} for p in cal.PARAMETERS],
        "cases": list(cal.SHIPPED_CASES),
        "versions": versions,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
        "load_average": os.getloadavg(),
        "timings_seconds": timings,
    }


def figures(out: Path, posterior: pd.DataFrame, predictive: pd.DataFrame, levers: pd.DataFrame | None, history):
    """Corner plot, fan charts (every case; the in-sample one with the observations) and the lever chart."""
    import matplotlib.pyplot as plt

    from sim.reporting.figures import save_figure, style

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = [c for c in posterior.columns if c != "weight"]
    w = posterior["weight"].to_numpy(float)
    params = {p.name: p for p in cal.PARAMETERS}
    with style():
        n = len(names)
        fig, axes = plt.subplots(n, n, figsize=(1.5 * n, 1.5 * n), squeeze=False)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                ax = axes[i, j]
                if j > i:
                    ax.axis("off")
                    continue
                if i == j:
                    p = params.get(a)
                    rng = (p.low, p.high) if p else None
                    ax.hist(posterior[a], bins=15, weights=w, range=rng, color="C0")
                else:
                    ax.scatter(posterior[b], posterior[a], s=4, c=w, cmap="Blues", alpha=0.8)
                    if b in params:
                        ax.set_xlim(params[b].low, params[b].high)
                    if a in params:
                        ax.set_ylim(params[a].low, params[a].high)
                ax.tick_params(labelsize=5)
                if i == n - 1:
                    ax.set_xlabel(b, fontsize=5)
                if j == 0:
                    ax.set_ylabel(a, fontsize=5)
        fig.suptitle("Posterior (rare_earth_2010): marginals and pairs, axes = prior ranges", fontsize=7)
        written += save_figure(fig, fig_dir / "corner")

        q = predictive[(predictive.kind == "quantile") & predictive.date.notna()]
        for case in sorted(q.case.unique()):
            sub = q[q.case == case]
            panels = []
            for (var, country, good), grp in sub.groupby(["variable", "country", "good"]):
                if not np.isfinite(grp["value"]).any():
                    continue  # a country without imports: no share to draw
                if var == "output_loss_share" and not (grp["value"].abs() > 1e-9).any():
                    continue
                if case == cal.IN_SAMPLE and var in ("coercer_import_share", "output_loss_share") and country != "JPN":
                    continue
                if var != "price_domestic_ratio" or case == cal.IN_SAMPLE:
                    panels.append((var, country, good))
            panels = panels[:8]
            cols = 2
            rows = max(1, (len(panels) + 1) // 2)
            fig, axes = plt.subplots(rows, cols, figsize=(7.2, 2.2 * rows), squeeze=False)
            for ax, (var, country, good) in zip(axes.ravel(), panels, strict=False):
                s = sub[(sub.variable == var) & (sub.country == country) & (sub.good == good)]
                piv = s.pivot_table(index="date", columns="quantile", values="value", dropna=False).reindex(
                    columns=[0.05, 0.25, 0.5, 0.75, 0.95]
                )
                x = piv.index.to_numpy()
                ax.fill_between(x, piv[0.05], piv[0.95], color="C0", alpha=0.2, lw=0, label="5-95 %")
                ax.fill_between(x, piv[0.25], piv[0.75], color="C0", alpha=0.35, lw=0, label="25-75 %")
                ax.plot(x, piv[0.5], color="C0", lw=1, label="median")
                if case == cal.IN_SAMPLE and history is not None:
                    h = history
                    if var == "price_export_ratio":
                        o = h[(h.series == "export_price") & (h.good == good)].dropna(subset=["ratio_to_baseline"])
                        if len(o):  # a good without observations (the magnets) keeps a linear axis
                            ax.plot(o.date, o.ratio_to_baseline, "k.", ms=3, label="observed (elements)")
                            ax.set_yscale("log")
                    elif var == "coercer_import_share":
                        o = h[h.series == "china_share_of_japan_imports"]
                        ax.plot(o.date, o.value, "k.", ms=3, label="observed")
                    ax.set_xlim(x.min(), x.max())
                ax.set_title(f"{var} {country} {good}", fontsize=7, loc="left")
                ax.tick_params(labelsize=6)
            axes.ravel()[0].legend(fontsize=5)
            for ax in axes.ravel()[len(panels) :]:
                ax.axis("off")
            fig.suptitle(f"{case}: posterior predictive bands", fontsize=8)
            written += save_figure(fig, fig_dir / f"fan_{case}")

        if levers is not None:
            summ = cal.lever_summary(levers)
            fig, ax = plt.subplots(figsize=(6.5, 3.2))
            y = np.arange(len(summ))
            med = summ.avoided_q50 / 1e6
            ax.errorbar(
                med,
                y,
                xerr=[med - summ.avoided_q05 / 1e6, summ.avoided_q95 / 1e6 - med],
                fmt="o",
                ms=3,
                capsize=2,
            )
            labels = [
                f"{v} ({s:.0%} first)" if np.isfinite(s) else v
                for v, s in zip(summ.variant, summ.share_ranked_first, strict=True)
            ]
            ax.set_yticks(y, labels)
            ax.tick_params(axis="y", labelsize=6)  # a tick property, kept when save_figure fixes the ticks
            ax.invert_yaxis()
            ax.axvline(0, color="0.6", lw=0.6)
            ax.set_xlabel("Japan's damage avoided, US$ m (median, 5-95 % over posterior draws)")
            written += save_figure(fig, fig_dir / "levers")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "validation")
    parser.add_argument("--resume", type=Path, default=None, help="continue the run in this folder")
    parser.add_argument(
        "--report-only", type=Path, default=None, help="rebuild report.md and figures/ in this folder from its files"
    )
    parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--cases", nargs="*", default=list(cal.SHIPPED_CASES))
    args = parser.parse_args(argv)
    from sim.reporting.figures import load_history

    history = load_history("rare_earth_2010_history.csv")
    if args.report_only is not None:
        # The report and its figures, from the folder's files alone (no run).
        folder = args.report_only
        levers_file = folder / "levers.parquet"
        figures(
            folder,
            pd.read_parquet(folder / "posterior.parquet"),
            pd.read_parquet(folder / "predictive.parquet"),
            pd.read_parquet(levers_file) if levers_file.exists() else None,
            history,
        )
        cal.write_report(folder, history=history)
        print(folder / "report.md")
        return 0
    if args.workers < 1:
        print(f"error: --workers {args.workers} is invalid; allowed: 1 or more", file=sys.stderr)
        return 2
    unknown = [c for c in args.cases if c not in cal.SHIPPED_CASES]
    if unknown:
        print(f"error: --cases {unknown} is invalid; allowed: {', '.join(cal.SHIPPED_CASES)}", file=sys.stderr)
        return 2
    budget = dict(BUDGETS[args.budget])
    prov_old: dict = {}
    if args.resume is not None:
        out = args.resume
        prov_old = json.loads((out / "provenance.json").read_text()) if (out / "provenance.json").exists() else {}
        if prov_old:
            args.seed, budget = prov_old.get("seed", args.seed), prov_old.get("budget", budget)
    else:
        out = args.out / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict = dict(prov_old.get("timings_seconds", {})) if args.resume is not None else {}
    atomic_write_text(out / "provenance.json", json.dumps(provenance(args, budget, timings), indent=1))
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) if args.workers > 1 else _Serial() as pool:
        # 1. ABC-SMC on the in-sample case
        t0 = time.perf_counter()
        if not (out / "posterior.parquet").exists():
            start, end = "2009-01", "2020-12"
            obs = cal.observations(history, start, end)
            _log(
                f"ABC-SMC: {budget['population']} particles x {budget['generations']} generations "
                f"(<= {budget['max_simulations']} runs), {len(obs)} observations"
            )
            hist = cal.run_abc(
                str(out / "abc.db"),
                obs=obs,
                population=budget["population"],
                generations=budget["generations"],
                max_simulations=budget["max_simulations"],
                seed=args.seed,
                map_=pool.map,
                resume=args.resume is not None,
                on_generation=lambda t, eps, n: _log(f"ABC generation {t}: epsilon {eps:.3f}, {n} runs"),
            )
            posterior = cal.posterior_frame(hist)
            cal.check_weights(posterior)
            _parquet(posterior, out / "posterior.parquet")
            timings["abc_runs"] = int(hist.total_nr_simulations)
            timings["abc"] = time.perf_counter() - t0
            atomic_write_text(out / "provenance.json", json.dumps(provenance(args, budget, timings), indent=1))
        posterior = pd.read_parquet(out / "posterior.parquet")
        # 2. Posterior predictive, every shipped case
        t0 = time.perf_counter()
        if not (out / "predictive.parquet").exists():
            draws = cal.resample(posterior, budget["draws"], args.seed)
            tasks = [
                (case, d, s, draws.iloc[d].to_dict())
                for case in args.cases
                for d in range(len(draws))
                for s in range(1, budget["seeds"] + 1)
            ]
            frames, bar = [], _bar(len(tasks), "predictive runs", args.progress)
            for case, d, s, rows, scalars in pool.imap_unordered(cal.predictive_task, tasks):
                rows = rows.assign(case=case, kind="draw", draw=d, seed=s, quantile=np.nan)
                sc = pd.DataFrame(
                    {
                        "case": case,
                        "kind": "draw",
                        "draw": d,
                        "seed": s,
                        "quantile": np.nan,
                        "date": pd.NaT,
                        "country": "",
                        "good": "",
                        "variable": list(scalars),
                        "value": list(scalars.values()),
                    }
                )
                frames += [rows, sc]
                bar.update()
            bar.close()
            draw_rows = pd.concat(frames, ignore_index=True)
            q = cal.quantiles(draw_rows[draw_rows.date.notna()])
            cols = ["case", "kind", "draw", "seed", "quantile", "date", "country", "good", "variable", "value"]
            predictive = pd.concat([draw_rows[cols], q[cols]], ignore_index=True).sort_values(
                ["case", "kind", "draw", "seed", "variable", "country", "good", "date"], kind="stable"
            )
            _parquet(predictive.reset_index(drop=True), out / "predictive.parquet")
            timings["predictive_runs"] = len(tasks)
            timings["predictive"] = time.perf_counter() - t0
            atomic_write_text(out / "provenance.json", json.dumps(provenance(args, budget, timings), indent=1))
        # 3. Levers over posterior draws
        t0 = time.perf_counter()
        if not (out / "levers.parquet").exists():
            draws = cal.resample(posterior, budget["lever_draws"], args.seed + 1)
            tasks = [
                (name, tuple(ov), d, 1, draws.iloc[d].to_dict())
                for d in range(len(draws))
                for name, (_, ov) in VARIANTS.items()
            ]
            rows, bar = [], _bar(len(tasks), "lever runs", args.progress)
            for row in pool.imap_unordered(cal.lever_task, tasks):
                rows.append(row)
                bar.update()
            bar.close()
            table = cal.lever_table(rows).sort_values(["draw", "variant"]).reset_index(drop=True)
            _parquet(table, out / "levers.parquet")
            timings["lever_runs"] = len(tasks)
            timings["levers"] = time.perf_counter() - t0
            atomic_write_text(out / "provenance.json", json.dumps(provenance(args, budget, timings), indent=1))
    predictive = pd.read_parquet(out / "predictive.parquet")
    levers = pd.read_parquet(out / "levers.parquet")
    t0 = time.perf_counter()
    figures(out, posterior, predictive, levers, history)
    timings["figures_and_report"] = time.perf_counter() - t0
    atomic_write_text(out / "provenance.json", json.dumps(provenance(args, budget, timings), indent=1))
    cal.write_report(out, history=history)
    print(out)
    return 0


class _Serial:
    """A one-process stand-in for ``multiprocessing.Pool`` (``--workers 1``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    map = staticmethod(lambda f, xs: list(map(f, xs)))
    imap_unordered = staticmethod(map)


if __name__ == "__main__":
    sys.exit(main())
