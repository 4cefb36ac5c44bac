"""The ``coercion-sim`` command: a Hydra app that runs one scenario and writes its outputs.

``coercion-sim scenario=rare_earth_2010 seed=1`` writes into its Hydra run directory
``timeseries.parquet``, ``flows.parquet``, ``metrics.json``, ``config.yaml`` (resolved),
``provenance.json`` and ``figures/`` (PNG and PDF), each atomically, then prints a summary. Invalid
input stops the run before anything is written, with one message naming the field and the value.

In a multirun (``coercion-sim -m ...``) each job does the same in its own directory, except that it
draws no figures unless ``output.figures=true``, a failed run writes ``failed.json`` and lets the
sweep go on, and ``resume=true`` skips jobs whose complete outputs exist (see :mod:`sim.experiments.sweep`).

Faults: a run (or sweep, or sweep job) claims its output folder (:class:`sim.reporting.files.OutputLock`), so a
second run pointed at the same folder stops at once (exit code 2, naming the holder's pid and host);
an output folder that cannot be written (full disk, no permission, a path through a file) stops a
single run with ``error: cannot write ...`` (exit code 1), removes what it had written, and leaves no
``provenance.json``: nothing that looks like a complete run.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sim.world.config import CONFIG_DIR, register_configs

__all__ = ["main", "write_outputs", "figures_wanted", "summary_lines", "figure_worker_count"]

#: The run's record in its job log, ``coercion-sim.log`` (configs/hydra/job_logging/coercion_sim.yaml
#: sends this logger to the file only): what ran, the summary, the files written and the times.
record = logging.getLogger("coercion-sim.record")


def write_outputs(result, outdir: str | Path, *, figures: bool = True, flows: bool = True, workers=None) -> list[Path]:
    """Write a :class:`sim.api.RunResult` into ``outdir`` (atomically, file by file).

    With ``workers`` (:class:`sim.reporting.figure_worker.FigureWorker`) the figures are drawn there,
    side by side, instead of one after another in this process.

    ``provenance.json`` comes last and is stamped then: ``output_seconds`` is the time spent writing
    the tables, configuration and figures, ``wall_seconds`` the run (``run_seconds``: building and
    running the model, its tables and metrics) plus that, and ``finished`` the moment it is written.

    If a file cannot be written (``OSError``: a full disk, no permission), the files this call had
    written are removed and the error, naming the file, is raised: the folder never holds a
    ``provenance.json`` beside outputs of another run (an earlier run's is removed before anything
    is written) nor one of an incomplete run.
    """
    from sim.experiments.sweep import COMPLETE_FILE
    from sim.reporting.files import atomic_write_text, write_json, write_parquet

    t0 = time.perf_counter()
    outdir = Path(outdir)
    written: list[Path] = []
    try:
        # An earlier run's completeness marker no longer holds once its files start being replaced.
        (outdir / COMPLETE_FILE).unlink(missing_ok=True)
        if figures:  # first, so a worker draws them while the tables are written
            _announce("drawing figures", result.config)
            finish_figures = _start_figures(result, outdir / "figures", written, workers)
        written.append(write_parquet(result.timeseries, outdir / "timeseries.parquet"))
        if flows:
            written.append(write_parquet(result.flows, outdir / "flows.parquet"))
        if getattr(result, "episodes", None) is not None:
            written.append(write_parquet(result.episodes, outdir / "episodes.parquet"))
        written.append(write_json(result.metrics, outdir / "metrics.json"))
        written.append(atomic_write_text(outdir / "config.yaml", OmegaConf.to_yaml(result.config)))
        if figures:
            written += finish_figures()
        # Provenance last: its presence marks a complete output directory.
        prov = dict(result.provenance)
        run_seconds = float(prov.get("run_seconds", prov.get("wall_seconds", 0.0)))
        output_seconds = time.perf_counter() - t0
        prov.update(
            run_seconds=round(run_seconds, 3),
            output_seconds=round(output_seconds, 3),
            wall_seconds=round(run_seconds + output_seconds, 3),
            finished=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        )
        written.append(write_json(prov, outdir / COMPLETE_FILE))
    except BaseException:
        if workers is not None:
            workers.settle()  # no figure may be written after the files are removed
        _remove_written(written, outdir)
        raise
    return written


def _remove_written(written: list[Path], outdir: Path) -> None:
    """Remove the files of an output folder written before a failure, and ``figures/`` if that
    leaves it empty.
    """
    for path in written:
        try:
            Path(path).unlink(missing_ok=True)
        except OSError:
            pass
    try:
        (outdir / "figures").rmdir()
    except OSError:
        pass


def _announce(what: str, cfg: DictConfig) -> None:
    """One progress line on stderr (``output.progress``: ``always``, or ``auto`` on a terminal), for
    a step that takes seconds without other output, such as drawing the figures (:func:`sim.reporting.progress.announce`).
    """
    from sim.reporting.progress import announce

    mode = str(OmegaConf.select(cfg, "output.progress", default="auto"))
    announce(what, mode, str(OmegaConf.select(cfg, "scenario.name", default="run")))


def figures_wanted(cfg: DictConfig, *, sweep_job: bool) -> bool:
    """Whether a run draws its figures: ``output.figures`` ``true``/``false`` as set; ``auto`` (the
    default) draws them for a single run and not for a job of a sweep, where the two figures would
    cost several times the run itself (compare a sweep's results with :mod:`sim.reporting.sweep_figures`).
    """
    value = cfg.output.figures
    if isinstance(value, bool):
        return value
    word = str(value).lower()
    if word == "auto":
        return not sweep_job
    if word in ("true", "false"):  # a quoted "true" in a config file
        return word == "true"
    raise ValueError(f"output.figures: {value!r} is invalid; allowed: auto, true or false")


def _start_figures(result, figdir: Path, written: list[Path], workers=None):
    """Start drawing the run's figures and return a function that finishes them and returns their
    paths. ``written`` (the caller's list of files written so far) gets the figures' files at once,
    so a failure part-way removes them; finishing replaces them by the files written. With
    ``workers`` (:class:`sim.reporting.figure_worker.FigureWorker`) the figures are handed over now and
    drawn side by side there while the caller writes the tables; otherwise they are drawn one after
    another here when finished.
    """
    scenario = OmegaConf.to_container(result.config.scenario, resolve=True)
    from sim.reporting.figure_names import run_figure_names

    names = run_figure_names(scenario)
    expected = [figdir / f"{name}.{ext}" for name in names for ext in ("png", "pdf")]
    written += expected  # removed on failure
    if workers is not None:
        workers.submit(names, result.timeseries, result.flows, scenario, figdir)

    def finish() -> list[Path]:
        if workers is not None:
            paths = workers.result()
        else:
            from sim.reporting.figures import draw_run_figure

            paths = [
                p for name in names for p in draw_run_figure(name, result.timeseries, result.flows, scenario, figdir)
            ]
        for p in expected:
            written.remove(p)
        return paths

    return finish


#: Environment variable that sets how many figures a single run draws at the same time in its figure
#: worker (:class:`sim.reporting.figure_worker.FigureWorker`): ``0`` (or ``1``) draws them one after
#: another in the command's own process; unset, the command decides (:func:`figure_worker_count`).
WORKERS_ENV = "COERCION_SIM_FIGURE_WORKERS"


def figure_worker_count(n_figures: int, *, cores: int | None = None, load: float | None = None) -> int:
    """How many figures a single run draws at the same time in a figure worker; 0: none, the command
    draws them itself, one after another.

    The worker (:class:`sim.reporting.figure_worker.FigureWorker`) imports Matplotlib while the model
    runs, on the core the model leaves idle, then draws the figures side by side (one in the worker,
    the others in children it forks) while the command's own process waits: ``min(n_figures, cores)``
    at once. It costs about 1 CPU s more than drawing in the command's process (the worker imports
    pandas as well), so it is not started on a single core, nor when the one-minute load average
    says every core is already busy. ``COERCION_SIM_FIGURE_WORKERS`` overrides the choice.

    Args:
        n_figures: Figures the run draws.
        cores: Logical cores this process may use (default: its CPU affinity, else :func:`os.cpu_count`).
        load: One-minute load average (default: :func:`os.getloadavg`).

    Returns:
        0 (draw in this process) or the number of figures drawn at once (at least 2).
    """
    wanted = os.environ.get(WORKERS_ENV, "").strip()
    if wanted:
        try:
            n = int(wanted)
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"{WORKERS_ENV}: {wanted!r} is invalid; allowed: a whole number >= 0")
        return min(n, n_figures) if n >= 2 and n_figures >= 2 else 0
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not available on this platform
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this platform
            load = 0.0
    if cores < 2 or load >= cores:
        return 0
    n = min(n_figures, cores)
    return n if n >= 2 else 0


def _figure_workers(cfg: DictConfig):
    """A figure worker for a single run's figures (:func:`figure_worker_count`), started now so it
    loads Matplotlib while the model runs; or none, and the figures are drawn in this process.
    """
    from sim.reporting.figure_names import run_figure_names

    n = figure_worker_count(len(run_figure_names(cfg.scenario)))
    if not n:
        return contextlib.nullcontext()
    from sim.reporting.figure_worker import FigureWorker

    return FigureWorker(n)


def _summary(result, outdir: Path) -> str:
    """The lines printed after a run: what the measures did to their targets, chosen by the kind of
    measure on each good (:func:`summary_lines`), then output losses.
    """
    m = result.metrics
    scenario = result.config.scenario
    head = f"coercion-sim: {m['scenario']} (seed {m['seed']}, {m['n_steps']} months) -> {outdir}"
    game = []
    if "game.episodes" in m:  # the strategic layer (sim.coercion.strategy): its episodes, by outcome
        counts = ", ".join(
            f"{k.removeprefix('game.outcome.').replace('_', ' ')} {v}"
            for k, v in m.items()
            if k.startswith("game.outcome.") and v
        )
        game = [
            f"  episodes: {m['game.disputes']} disputes, {m['game.episodes']} threatened ({counts}); episodes.parquet"
        ]
    return "\n".join(
        [
            head,
            *game,
            *summary_lines(
                m,
                goods=[str(g.id) for g in scenario.goods],
                coercer=str(scenario.coercer),
                targets=[str(t) for t in scenario.targets],
                measures=scenario.measures,
            ),
        ]
    )


def summary_lines(metrics: dict, *, goods, coercer: str, targets, measures) -> list[str]:
    """Summary lines of a run's metrics that fit the kind of measure on each good.

    * A good under an export restriction (quota, ban, licence, duty; the coercer restricts what it
      sells): the highest delivered price each target paid, the coercer's export price and wedge at
      its peak, and the targets' months of shortage.
    * A good under an import measure (ban, informal restriction, tariff; the coercer restricts what
      it buys): each target's export revenue lost on the good, the price its producers received in
      the first year, and how much of the lost sales went elsewhere (redirection).
    * A good under no trade measure (or a run without measures): the coercer's export price, as
      before.

    Then, for import measures, each target's lost export revenue as a share of its baseline; and
    every country's output loss as a share of its own baseline value added over the run.

    Args:
        metrics: The run's ``metrics.json`` as a mapping.
        goods: The scenario's goods.
        coercer: The coercing country.
        targets: The targeted countries.
        measures: The scenario's measures (mappings with ``type`` and ``goods``).

    Returns:
        The lines, indented by two spaces.
    """
    from sim.coercion.sides import measure_side

    m = metrics
    sides: dict[str, set[str]] = {g: set() for g in goods}
    for measure in measures or ():
        side = measure_side(measure.get("type"))
        if side is None or (measure.get("imposer") is not None and str(measure.get("imposer")) != coercer):
            continue
        for g in measure.get("goods") or goods:
            sides.setdefault(str(g), set()).add(side)
    lines: list[str] = []
    any_import = False
    for g in goods:
        if "export" in sides[g]:
            lines.append(_export_line(m, g, coercer, targets))
        if "import" in sides[g]:
            any_import = True
            lines.append(_import_line(m, g, coercer, targets))
        if not sides[g] and f"peak_export_price_ratio.{g}" in m and not any(sides.values()):
            lines.append(f"  {g}: {_coercer_price_words(m, g)}")
    short = {t: m[f"shortage_months.{t}"] for t in targets if m.get(f"shortage_months.{t}")}
    if any("export" in v for v in sides.values()) and targets:
        lines.append(
            "  months with shortages (firms lacking over 1% of their use of a good): "
            + (", ".join(f"{t} {n}" for t, n in short.items()) if short else "none in " + ", ".join(targets))
        )
    if any_import:
        lost = {t: m[f"export_revenue_lost_share.{t}"] for t in targets if f"export_revenue_lost_share.{t}" in m}
        if lost:
            lines.append(
                "  export revenue lost (share of the targets' baseline export revenue on these goods over the run): "
                + ", ".join(f"{t} {v:.1%} (US${_money(m[f'export_revenue_lost.{t}'])})" for t, v in lost.items())
            )
    losses = {k.split(".", 1)[1]: v for k, v in m.items() if k.startswith("output_loss_share.")}
    if losses:
        lines.append(
            "  output loss (share of each country's baseline value added over the run): "
            + ", ".join(f"{c} {v:.2%}" for c, v in losses.items())
        )
    return lines


def _coercer_price_words(m: dict, g: str) -> str:
    if f"peak_export_price_ratio.{g}" not in m:
        return "no coercer export price recorded"
    return (
        f"coercer export price peaked at {m[f'peak_export_price_ratio.{g}']:.1f}x "
        f"({m[f'peak_export_price_date.{g}']}), export/domestic wedge "
        f"{m[f'export_domestic_wedge_at_peak.{g}']:.1f}x at the peak"
    )


def _export_line(m: dict, g: str, coercer: str, targets) -> str:
    """An export-restricted good: the prices the targets paid first, then the coercer's price."""
    paid = {t: m[f"peak_price_paid_ratio.{g}.{t}"] for t in targets if f"peak_price_paid_ratio.{g}.{t}" in m}
    words = (
        "delivered price peaked at " + ", ".join(f"{t} {v:.1f}x" for t, v in paid.items())
        if paid
        else "no target buys it"
    )
    return f"  {g} (export restriction by {coercer}): {words}; {_coercer_price_words(m, g)}"


def _import_line(m: dict, g: str, coercer: str, targets) -> str:
    """An import-restricted good: the targets' lost sales, the price received, redirection."""
    parts = []
    for t in targets:
        bits = []
        if f"export_revenue_lost.{g}.{t}" in m:
            bits.append(f"export revenue lost US${_money(m[f'export_revenue_lost.{g}.{t}'])}")
        if m.get(f"export_price_received_ratio_12m.{g}.{t}") is not None:
            bits.append(f"price received {m[f'export_price_received_ratio_12m.{g}.{t}']:.2f}x in the first year")
        if f"redirected_share_12m.{g}.{t}" in m:
            bits.append(
                f"{m[f'redirected_share_12m.{g}.{t}']:.0%} of lost sales to {coercer} sold elsewhere within a year"
            )
        if bits:
            parts.append(f"{t} " + ", ".join(bits))
    return f"  {g} (import measure by {coercer}): " + ("; ".join(parts) if parts else "no target exports it")


def _money(x: float) -> str:
    """US$ amounts in words a reader takes in at once: 1.2bn, 340m, 12k."""
    for unit, size in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def _record_start(cfg: DictConfig, outdir: Path, overrides: list[str]) -> None:
    """Log what is about to run (the job log's first lines)."""
    record.info("command: %s", " ".join(sys.argv))
    record.info(
        "scenario %s, seed %s%s -> %s",
        cfg.scenario.name,
        cfg.seed,
        f", replication {cfg.replication}" if cfg.get("replication") is not None else "",
        outdir,
    )
    record.info("overrides: %s", " ".join(overrides) if overrides else "(none)")


def _record_end(result, outdir: Path, written: list[Path]) -> None:
    """Log the summary, the files written and the times (the job log's last lines)."""
    for line in _summary(result, outdir).splitlines():
        record.info("%s", line.strip())
    record.info("wrote %s", ", ".join(str(Path(p).relative_to(outdir)) for p in written))
    record.info("run %.2f s (building and running the model, its tables and metrics)", _run_seconds(result))


def _run_seconds(result) -> float:
    prov = result.provenance
    return float(prov.get("run_seconds", prov.get("wall_seconds", 0.0)))


def _one_line(exc: BaseException) -> str:
    """An error's message on one line (OmegaConf's add ``full_key: ...`` lines; they are joined)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def _clean_failed_run_dir(outdir: Path) -> None:
    """Remove a run directory that holds nothing but Hydra's own files (no partial outputs), and the
    folders above it that Hydra made and that are left empty, up to the working directory. The
    working directory itself, or a folder holding it (``hydra.run.dir=.``, ``hydra.job.chdir=true``),
    is never removed.
    """
    try:
        cwd = Path(HydraConfig.get().runtime.cwd).resolve()
    except Exception:  # not inside a Hydra app
        cwd = Path(os.getcwd()).resolve()
    from sim.reporting.files import LOCK_FILE, remove_empty_folders

    outdir = outdir.resolve()
    if not outdir.is_dir() or outdir == cwd or outdir in cwd.parents:
        return
    ours = [p for p in outdir.iterdir() if p.name not in (".hydra", LOCK_FILE) and p.suffix != ".log"]
    if not ours:
        shutil.rmtree(outdir, ignore_errors=True)
        remove_empty_folders(outdir.parent, cwd)


def _run(cfg: DictConfig):
    """Run ``cfg`` in memory; with ``replication`` set, on the replication's seed (the saved
    configuration keeps the root seed and the replication number, so it reproduces the run).
    """
    from sim.api import run_config
    from sim.experiments.sweep import run_seed

    if cfg.get("replication") is None:
        return run_config(cfg)
    root, seed = int(cfg.seed), run_seed(cfg)
    run_cfg = copy.deepcopy(cfg)
    run_cfg.seed = seed
    result = run_config(run_cfg)
    result.config.seed = root
    result.provenance.update(root_seed=root, replication=int(cfg.replication))
    return result


def _sweep_job(cfg: DictConfig, outdir: Path, overrides: list[str]) -> str:
    """One job of a multirun: skip it if resuming and its outputs are complete; otherwise run it,
    and on failure write ``failed.json`` instead of stopping the sweep. Returns ``ok``, ``failed``,
    ``skipped``, or ``busy`` when another live process holds the job's folder (a cut-off sweep whose
    jobs still run) and the job is left to it. The job claims its folder while it runs and first
    removes the temporary files of an earlier attempt killed mid-write.
    """
    from sim.reporting.files import FolderInUseError, OutputLock, remove_temp_files

    log = logging.getLogger("coercion-sim.sweep")
    lock = OutputLock(outdir)
    try:
        lock.acquire()
    except FolderInUseError as exc:  # another process (a sweep cut off and still running) has it
        log.error("job %s not run: %s; allowed: a job folder no other run is writing", outdir.name, exc)
        return "busy"
    try:
        remove_temp_files(outdir)  # left by an earlier attempt killed mid-write
        return _sweep_job_locked(cfg, outdir, overrides, log)
    finally:
        lock.release()


def _sweep_job_locked(cfg: DictConfig, outdir: Path, overrides: list[str], log: logging.Logger) -> str:
    """The job of :func:`_sweep_job`, its folder claimed."""
    from sim.experiments.sweep import COMPLETE_FILE, FAILURE_FILE, same_configuration, write_failure
    from sim.world.scenario import prepare_config

    def forget_earlier_outputs() -> None:
        # Outputs of an earlier attempt (or another configuration) no longer count as complete.
        for name in (FAILURE_FILE, COMPLETE_FILE):
            (outdir / name).unlink(missing_ok=True)

    def failed(exc: Exception) -> str:
        log.error("job %s failed: %s", outdir.name, exc)
        try:
            write_failure(outdir, exc, overrides)
        except OSError as marker_exc:  # the folder cannot take even the marker: still let the sweep go on
            log.error("job %s: cannot write its failure marker: %s", outdir.name, marker_exc)
        return "failed"

    try:
        prepared = prepare_config(cfg)
    except Exception as exc:  # one bad combination must not take the sweep down
        forget_earlier_outputs()
        return failed(exc)
    if cfg.resume and same_configuration(outdir, prepared):
        log.info("job %s: complete outputs of this configuration exist, skipped (resume=true)", outdir.name)
        return "skipped"
    forget_earlier_outputs()
    _record_start(prepared, outdir, overrides)
    try:
        result = _run(prepared)
        written = write_outputs(
            result, outdir, figures=figures_wanted(cfg, sweep_job=True), flows=bool(cfg.output.flows)
        )
    except Exception as exc:
        return failed(exc)
    _record_end(result, outdir, written)
    print(_summary(result, outdir))
    return "ok"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> str | None:
    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    # Matplotlib's PDF backend subsets fonts with fontTools, which logs each table it prunes at INFO:
    # hundreds of lines per figure in the job log, and a measurable share of the figure time.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    hydra_cfg = HydraConfig.get()
    outdir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, outdir, [str(o) for o in hydra_cfg.overrides.task])
    # Check, expand (a generated world) and validate before importing the model stack, so bad input
    # fails fast; the model then uses the prepared config as it is.
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import OmegaConfBaseException

    from sim.experiments.sweep import claim_output_folder, run_seed
    from sim.reporting.files import remove_temp_files
    from sim.world.scenario import ScenarioError, prepare_config

    claim_output_folder(outdir, "hydra.run.dir")  # already claimed by SweepCallback.on_run_start
    remove_temp_files(outdir)  # left by an earlier run in this folder killed mid-write
    with contextlib.ExitStack() as stack:
        # The figure worker starts before the checks, so it has loaded Matplotlib when the run ends
        # (it is stopped if the checks fail); a bad output.figures is left to the checks, which name it.
        workers = None
        try:
            early = figures_wanted(cfg, sweep_job=False)
        except ValueError:
            early = False
        if early:
            try:
                workers = stack.enter_context(_figure_workers(cfg))
            except ValueError as exc:  # a bad COERCION_SIM_FIGURE_WORKERS
                _clean_failed_run_dir(outdir)
                print(f"error: {exc}", file=sys.stderr)
                sys.exit(2)
        try:
            cfg = prepare_config(cfg)
            run_seed(cfg)  # a bad replication number or root seed
        except (ConfigCompositionException, OmegaConfBaseException, ValueError) as exc:
            # An unknown key or a wrong type in the scenario (set on the command line), a value that
            # does not resolve; ScenarioError, or a bad replication: one line, nothing left behind.
            stack.close()
            _clean_failed_run_dir(outdir)
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            sys.exit(2)
        draw = figures_wanted(cfg, sweep_job=False)
        from sim.market import MarketClearingError

        _record_start(cfg, outdir, [str(o) for o in hydra_cfg.overrides.task])
        try:
            result = _run(cfg)
        except (ScenarioError, MarketClearingError) as exc:
            stack.close()
            _clean_failed_run_dir(outdir)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        try:
            written = write_outputs(result, outdir, figures=draw, flows=bool(cfg.output.flows), workers=workers)
        except OSError as exc:  # a full disk, no permission: write_outputs removed what it had written
            stack.close()
            _clean_failed_run_dir(outdir)
            print(f"error: cannot write the run's outputs to {outdir}: {exc}", file=sys.stderr)
            sys.exit(1)
    _record_end(result, outdir, written)
    print(_summary(result, outdir))
    return None


def _lint_named_scenarios(argv: list[str]) -> None:
    """Check the scenarios named on the command line (``scenario=NAME``, several in a sweep; looked
    up as Hydra does: the shipped configs, then ``--config-dir`` and ``hydra.searchpath`` folders)
    before Hydra composes them, so a mistake in a scenario file is one line naming the file and the
    field, exit code 2, before any output folder exists.

    It refuses:

    * a name that is no scenario file (``scenario=nope``, or ``scenario=schema``, the schema files
      extend), with the scenarios there are;
    * a file that is empty, binary, not UTF-8, too large or not valid YAML;
    * a misspelt key or a wrong type, with its full path and what is allowed
      (``scenario.goods[0].referense_price: unknown key; allowed: id, ...``; Hydra's own message
      names only the last key), and a required field left out (``scenario.start: missing``) unless
      the command line sets it.

    A user's file with the name of a shipped scenario is shadowed by it (Hydra reads the shipped
    configs first): a warning line says which file is used.
    """
    from sim.world.config import lint_scenario_file, scenario_name_problem, shadowed_scenario_message

    dirs, names, overridden, other_paths = [], [], set(), False
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith(("--config-dir=", "-cd=")):
            dirs.append(arg.split("=", 1)[1])
        elif arg.startswith("hydra.searchpath="):
            dirs += re.findall(r"file://([^,\]'\"]+)", arg)
            other_paths = other_paths or "pkg://" in arg
        elif arg.startswith("scenario="):
            value = arg.split("=", 1)[1]
            if not any(c in value for c in "()[]{}$*"):  # sweep functions are Hydra's to expand
                names += [v.strip() for v in value.split(",") if v.strip()]
        elif arg.lstrip("+").startswith("scenario.") and "=" in arg:
            overridden.add(arg.lstrip("+").split("=", 1)[0].replace("[", ".").replace("]", ""))
    overridden = frozenset(re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", k) for k in overridden)
    for name in dict.fromkeys(names):
        problem = None if other_paths else scenario_name_problem(name, dirs)
        problem = problem or lint_scenario_file(name, dirs, overridden=overridden)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        shadowed = shadowed_scenario_message(name, dirs)
        if shadowed:
            print(f"warning: {shadowed}", file=sys.stderr)


def override_problem(exc: BaseException) -> str:
    """One line for an override Hydra could not compose, naming the key, the bad value and what is
    allowed: ``model.risk_avresion: unknown key; allowed: adjustment_rate, ...``, ``seed: Value 'abc'
    of type 'str' could not be converted to Integer``, ``model=foo: no such config; allowed:
    default``, or the parser's message for a malformed override. Hydra's own message spans several
    lines and, for an unknown key, does not say which keys there are.
    """
    import dataclasses

    from hydra.errors import MissingConfigException, OverrideParseException

    cause = exc.__cause__ if exc.__cause__ is not None else exc
    full_key = getattr(cause, "full_key", None)
    object_type = getattr(cause, "object_type", None)
    message = str(getattr(cause, "msg", None) or cause).splitlines()[0].strip()
    if isinstance(exc, MissingConfigException):
        found = re.search(r"Could not find '([^']+)/([^']+)'", str(exc))
        options = re.search(r"Available options in '[^']+':\s*((?:\n\t[^\n]+)+)", str(exc))
        allowed = ", ".join(o.strip() for o in options.group(1).splitlines() if o.strip()) if options else "?"
        if found:
            return f"{found.group(1)}={found.group(2)}: no such config; allowed: {allowed}"
        return _one_line(exc)
    if isinstance(exc, OverrideParseException):
        return f"malformed override: {str(exc).splitlines()[0]} (syntax: key=value, see coercion-sim --help)"
    if full_key and " not in " in message and dataclasses.is_dataclass(object_type):
        names = ", ".join(f.name for f in dataclasses.fields(object_type))
        return f"{full_key}: unknown key; allowed: {names}"
    if full_key:
        return f"{full_key}: {message}"
    return _one_line(exc)


def main() -> None:
    """Console entry point (``coercion-sim``).

    A command-line override Hydra cannot compose (a misspelt key, a wrong type, an unknown config
    group option, a malformed override) is one line naming the key and what is allowed, exit code 2,
    before any output folder exists. ``HYDRA_FULL_ERROR=1`` keeps Hydra's own report.
    """
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    _lint_named_scenarios(sys.argv[1:])
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    # Hydra reports an exception itself (several lines, exit code 1) unless HYDRA_FULL_ERROR is set;
    # then it raises it, and composition errors are reported here in one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _app()
    except SystemExit as exc:
        if exc.code not in (None, 0):  # e.g. a sweep whose jobs Hydra could not compose
            _discard_unstarted_plans()
        raise
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as exc:
        _discard_unstarted_plans()
        if full_error:
            raise
        print(f"error: {override_problem(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _discard_unstarted_plans() -> None:
    from sim.experiments.sweep import discard_unstarted_plans

    discard_unstarted_plans()


if __name__ == "__main__":
    main()
