"""The ``coercion-sim`` console script end to end, through the installed script in a subprocess.

Runs are started together (a thread pool of subprocesses) by module-scoped fixtures, after one
in-process run has written numba's on-disk cache, so the whole module costs a few process starts of
wall time on two cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import helpers
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim.reporting.files import OUTPUT_FILES
from sim.reporting.metrics import METRIC_DOCS
from sim.reporting.recording import VARIABLES
from sim.world.config import MAX_SCENARIO_FILE_BYTES, REQUIRED_HINTS

MINIMAL_GOODS = ["ore"]
MINIMAL_COUNTRIES = ["CHN", "JPN", "AUS"]
#: A small generated world through the command line (twelve countries, three goods, a year).
GENERATED_ARGS = [
    "scenario=generated",
    "scenario.countries=12",
    "scenario.goods=3",
    "scenario.firms=60",
    "scenario.months=12",
    "scenario.measure_start_month=3",
    "seed=3",
]


# ------------------------------------------------------------------------------------------------
# Successful runs
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Three runs of ``minimal`` (started together): ``a`` and ``b`` with seed 1, ``c`` with seed 2,
    recording two variables and no flows, with a tag; ``g``, a small generated world for a year; and
    ``flagship``, exactly what ``make run`` runs (``rare_earth_2010``, seed 1, default settings, so
    with figures)."""
    helpers.warm_numba_cache()
    root = tmp_path_factory.mktemp("cli_ok")
    base = ["scenario=minimal", "output.figures=false"]
    jobs = {
        "a": ([*base, "seed=1"], root / "a"),
        "b": ([*base, "seed=1"], root / "b"),
        "c": (
            [
                *base,
                "seed=2",
                "output.flows=false",
                "output.variables=[price_export,capacity]",
                "+tags.experiment=cli-test",
                "output.progress=always",
            ],
            root / "c",
        ),
        "g": ([*GENERATED_ARGS, "output.figures=false"], root / "g"),
        "flagship": (["scenario=rare_earth_2010", "seed=1"], root / "flagship"),
    }
    return helpers.run_cli_many(jobs)


def _ok(run):
    assert run.returncode == 0, f"coercion-sim {' '.join(run.args)} failed ({run.returncode}):\n{run.stderr}"
    return run


@pytest.fixture(scope="module")
def run_a(cli_runs):
    return _ok(cli_runs["a"])


def _read(run, name):
    path = run.run_dir / name
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".json"):
        return json.loads(path.read_text())
    return path.read_text()


def test_outputs_exist(run_a):
    for name in OUTPUT_FILES:
        path = run_a.run_dir / name
        assert path.is_file(), f"{name} missing from {run_a.run_dir}"
        assert path.stat().st_size > 0, f"{name} is empty"


def test_job_log_records_what_ran_and_the_summary(cli_runs):
    """``coercion-sim.log`` in the run folder says what ran (command, scenario, seed, overrides), the
    printed summary and the files written; the record is not printed twice on the console."""
    run = _ok(cli_runs["a"])
    assert [p.name for p in run.run_dir.glob("*.log")] == ["coercion-sim.log"]
    log = (run.run_dir / "coercion-sim.log").read_text()
    assert "scenario minimal, seed 1" in log and "overrides: scenario=minimal output.figures=false seed=1" in log
    for line in run.stdout.strip().splitlines():
        assert line.strip() in log, line
    assert "wrote timeseries.parquet, flows.parquet, metrics.json, config.yaml, provenance.json" in log
    assert "coercion-sim.record" not in run.stdout + run.stderr


def test_help_is_a_usage_summary():
    """``--help``: usage, every shipped scenario, common overrides with examples and where outputs go,
    then the config groups; not Hydra's banner nor the whole configuration (``--cfg job`` prints that)."""
    from sim.world.config import SCHEMA_NAMES, available_scenarios

    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "--help"], env=helpers.cli_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "powered by Hydra" not in text and "Powered by Hydra" not in text
    assert len(text.splitlines()) < 80, "the help is a summary, not the configuration"
    assert "reference_price" not in text, "no configuration dump"
    scenarios = text.split("Scenarios", 1)[1].split("Common overrides", 1)[0]
    for name in available_scenarios():
        if name not in SCHEMA_NAMES:
            assert f"\n  {name} " in scenarios, f"scenario {name} is not listed"
    for needle in (
        "Usage:",
        "seed=1",
        "policy.stockpile.months=",
        "-m ",
        "outputs/SCENARIO/DATE_TIME/",
        "results.parquet",
        "coercion-sim.log",
        "--cfg job",
        "--hydra-help",
        "policy: ",
    ):
        assert needle in text, needle


def test_provenance_is_written_last(run_a):
    mtimes = {name: (run_a.run_dir / name).stat().st_mtime_ns for name in OUTPUT_FILES}
    assert mtimes["provenance.json"] == max(mtimes.values())


def test_no_temporary_files_left(cli_runs):
    for name, run in cli_runs.items():
        assert helpers.temp_files_in(run.run_dir) == [], f"run {name} left temporary files"


def test_summary_printed_with_output_path(run_a):
    out = run_a.stdout
    assert str(run_a.run_dir) in out
    assert "minimal" in out and "seed 1" in out
    assert "36 months" in out
    assert "error" not in run_a.stderr.lower()


def test_timeseries_schema(run_a):
    ts = _read(run_a, "timeseries.parquet")
    assert list(ts.columns) == helpers.TIMESERIES_COLUMNS
    assert pd.api.types.is_datetime64_dtype(ts["date"])
    assert ts["step"].dtype == np.int32
    assert ts["value"].dtype == np.float64
    for col in ("country", "good", "variable"):
        assert isinstance(ts[col].dtype, pd.CategoricalDtype), col
    assert len(ts) > 0
    # date = first day of the step's month, from the scenario start
    assert (ts["date"].dt.day == 1).all()
    expected = pd.Timestamp("2020-01-01") + ts["step"].map(lambda s: pd.DateOffset(months=int(s)))
    assert (ts["date"] == expected).all()
    assert ts["step"].min() == 0 and ts["step"].max() == 35
    assert set(ts["country"].astype(str)) <= set(MINIMAL_COUNTRIES)
    variables = set(ts["variable"].astype(str))
    assert set(helpers.REQUIRED_VARIABLES) <= variables
    assert variables <= set(VARIABLES), "every recorded variable is documented in VARIABLES"
    assert np.isfinite(ts["value"]).all()


def test_timeseries_country_level_variables_use_good_all(run_a):
    ts = _read(run_a, "timeseries.parquet")
    level = ts["variable"].astype(str).map(lambda v: VARIABLES[v][0])
    goods = ts["good"].astype(str)
    assert (goods[level == "country"] == "all").all()
    assert set(goods[level == "good"]) <= set(MINIMAL_GOODS)
    assert "output_loss" in set(ts.loc[level == "country", "variable"].astype(str))


def test_timeseries_one_row_per_observation(run_a):
    ts = _read(run_a, "timeseries.parquet")
    assert not ts.duplicated(["step", "country", "good", "variable"]).any()


def test_flows_schema(run_a):
    fl = _read(run_a, "flows.parquet")
    assert list(fl.columns) == helpers.FLOWS_COLUMNS
    assert pd.api.types.is_datetime64_dtype(fl["date"])
    assert fl["step"].dtype == np.int32
    assert fl["quantity"].dtype == np.float64 and fl["value"].dtype == np.float64
    for col in ("good", "origin", "destination"):
        assert isinstance(fl[col].dtype, pd.CategoricalDtype), col
    assert len(fl) > 0
    assert (fl["date"].dt.day == 1).all()
    expected = pd.Timestamp("2020-01-01") + fl["step"].map(lambda s: pd.DateOffset(months=int(s)))
    assert (fl["date"] == expected).all()
    assert set(fl["good"].astype(str)) <= set(MINIMAL_GOODS)
    assert set(fl["origin"].astype(str)) | set(fl["destination"].astype(str)) <= set(MINIMAL_COUNTRIES)
    assert (fl["quantity"] > 0).all(), "flows.parquet holds non-zero flows only"
    assert (fl["value"] > 0).all()
    assert not fl.duplicated(["step", "good", "origin", "destination"]).any()


def test_metrics_have_the_core_documented_keys(run_a):
    metrics = _read(run_a, "metrics.json")
    assert metrics["scenario"] == "minimal"
    assert metrics["seed"] == 1
    assert metrics["n_steps"] == 36
    for key in (
        "clearing_max_iterations",
        "clearing_max_residual",
        "peak_export_price_ratio.ore",
        "peak_export_price_date.ore",
        "export_domestic_wedge_at_peak.ore",
        "coercer_import_share_start.ore.JPN",
        "coercer_import_share_end.ore.JPN",
        "output_loss_share.JPN",
        "new_capacity.ore.AUS",
        "coercer_cost.total",
        "clearing_seconds",
    ):
        assert key in metrics, key
    pattern = helpers.metric_key_regex(MINIMAL_GOODS, MINIMAL_COUNTRIES)
    documented = [k for k in metrics if pattern.match(k)]
    assert len(documented) >= 20


def test_every_metric_key_is_documented(run_a):
    metrics = _read(run_a, "metrics.json")
    pattern = helpers.metric_key_regex(MINIMAL_GOODS, MINIMAL_COUNTRIES)
    undocumented = sorted(k for k in metrics if not pattern.match(k))
    assert undocumented == []


def test_metric_docs_patterns_are_well_formed():
    for key in METRIC_DOCS:
        assert re.fullmatch(r"[a-z_0-9]+(\.(<good>|<country>|<lever>|<sector>|[a-z_0-9]+))*", key), key


def test_config_yaml_loads_and_has_the_seed(run_a):
    cfg = OmegaConf.load(run_a.run_dir / "config.yaml")
    assert cfg.seed == 1
    assert cfg.scenario.name == "minimal"
    assert cfg.output.figures is False
    # The written config is complete and valid: it passes the schema and the domain checks.
    from sim.world.config import Config
    from sim.world.scenario import validate_config

    merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    validate_config(merged)


def test_generated_world_runs_from_the_command_line(cli_runs):
    from sim.world.config import Config
    from sim.world.generate import generated_scenario, generator_seed
    from sim.world.scenario import validate_config

    run = _ok(cli_runs["g"])
    for name in ("timeseries.parquet", "flows.parquet", "metrics.json", "config.yaml", "provenance.json"):
        assert (run.run_dir / name).is_file(), name
    assert "coercion-sim: generated (seed 3, 12 months)" in run.stdout
    cfg = OmegaConf.load(run.run_dir / "config.yaml")
    # config.yaml records the generator's parameters (the structure's seed it derived included) ...
    gen = cfg.scenario.generated_from
    assert (gen.kind, gen.countries, gen.goods, gen.firms, gen.months) == ("generated", 12, 3, 60, 12)
    assert gen.seed == generator_seed(OmegaConf.create({"seed": None}), 3)
    # ... and the world they generated, a complete written scenario that passes validation.
    assert len(cfg.scenario.countries) == 12 and len(cfg.scenario.goods) == 3
    assert sum(u.n_firms for u in cfg.scenario.user_sectors) == 60
    validate_config(OmegaConf.merge(OmegaConf.structured(Config), cfg))
    again = generated_scenario(12, 3, 60, months=12, seed=int(gen.seed), measure_start_month=3)
    assert OmegaConf.to_container(again.countries) == OmegaConf.to_container(cfg.scenario.countries)
    assert OmegaConf.to_container(again.producers) == OmegaConf.to_container(cfg.scenario.producers)
    ts = _read(run, "timeseries.parquet")
    assert ts["step"].nunique() == 12
    assert set(ts["country"].astype(str)) == {c.code for c in cfg.scenario.countries}
    assert len(cfg.scenario.measures) == 1 and cfg.scenario.measures[0].imposer == cfg.scenario.coercer


def test_provenance(run_a, cli_runs):
    prov = _read(run_a, "provenance.json")
    assert prov["version"]
    assert "git" in prov  # the commit, or null outside a git checkout
    assert isinstance(prov["dependencies"], dict)
    for dep in ("numpy", "numba", "pandas", "mesa", "hydra-core"):
        assert prov["dependencies"].get(dep), dep
    assert prov["seed"] == 1 and prov["scenario"] == "minimal"
    assert prov["started"] <= prov["finished"]  # ISO 8601 UTC strings sort as times
    # The wall time covers the run and writing its outputs (figures included when drawn).
    assert prov["run_seconds"] > 0 and prov["output_seconds"] > 0
    assert prov["wall_seconds"] == pytest.approx(prov["run_seconds"] + prov["output_seconds"], abs=2e-3)
    assert prov["tags"] == {}
    assert _read(_ok(cli_runs["c"]), "provenance.json")["tags"] == {"experiment": "cli-test"}


def test_progress_always_reports_months_on_stderr(cli_runs, run_a):
    """``output.progress=always`` (batch jobs writing to a log): month lines on stderr, the last one
    complete; the default (``auto``) stays silent when stderr is not a terminal."""
    lines = [ln for ln in _ok(cli_runs["c"]).stderr.splitlines() if ln.startswith("[coercion-sim] minimal: month")]
    assert lines and lines[-1].startswith("[coercion-sim] minimal: month 36/36"), lines
    assert "[coercion-sim]" not in run_a.stderr


def test_progress_line_before_drawing_figures(capsys):
    from sim.cli import _announce

    for mode, shown in (("always", True), ("never", False), ("auto", False)):  # auto: stderr is not a tty here
        _announce("drawing figures", OmegaConf.create({"output": {"progress": mode}, "scenario": {"name": "x"}}))
        assert ("[coercion-sim] x: drawing figures ..." in capsys.readouterr().err) == shown, mode


def test_flagship_command_writes_everything_make_run_promises(cli_runs):
    """``coercion-sim scenario=rare_earth_2010 seed=1`` (``make run``): every output file, the overview
    and history figures as PNG and PDF (a single run draws them by default), the summary with the
    output path, and the timeseries schema with every required variable for the six countries."""
    run = _ok(cli_runs["flagship"])
    for name in OUTPUT_FILES:
        assert (run.run_dir / name).is_file(), name
    for fig in ("overview", "history"):
        for ext in ("png", "pdf"):
            path = run.run_dir / "figures" / f"{fig}.{ext}"
            assert path.is_file() and path.stat().st_size > 10_000, path
    assert helpers.temp_files_in(run.run_dir) == []
    assert str(run.run_dir) in run.stdout
    assert "ree_heavy (export restriction by CHN): delivered price peaked at JPN" in run.stdout
    assert "coercer export price peaked at" in run.stdout
    ts = _read(run, "timeseries.parquet")
    assert list(ts.columns) == helpers.TIMESERIES_COLUMNS
    assert ts["date"].min() == pd.Timestamp("2009-01-01") and ts["date"].max() == pd.Timestamp("2020-12-01")
    assert {"CHN", "JPN", "USA", "EU27", "AUS", "ROW"} <= set(ts["country"].astype(str))
    assert {"ree_light", "ree_heavy", "all"} <= set(ts["good"].astype(str))
    assert set(helpers.REQUIRED_VARIABLES) <= set(ts["variable"].astype(str))
    flows = _read(run, "flows.parquet")
    assert (flows["quantity"] > 0).all()
    prov = _read(run, "provenance.json")
    assert prov["output_seconds"] > 0.5, "drawing two figures takes time; a smaller number means none were drawn"
    # The PDF backend's font subsetting (fontTools) logs every pruned table at INFO; the job log
    # must not fill up with it.
    (log,) = run.run_dir.glob("*.log")
    assert "fontTools" not in log.read_text()


@pytest.mark.parametrize(
    "value, single, sweep_job",
    [("auto", True, False), (True, True, True), (False, False, False), ("TRUE", True, True), ("false", False, False)],
)
def test_figures_wanted(value, single, sweep_job):
    """``output.figures``: ``auto`` draws for a single run only; booleans, or the words true/false
    (a quoted value in a config file), force it."""
    from sim.cli import figures_wanted

    cfg = OmegaConf.create({"output": {"figures": value}})
    assert figures_wanted(cfg, sweep_job=False) is single
    assert figures_wanted(cfg, sweep_job=True) is sweep_job


def test_figures_wanted_rejects_other_values():
    from sim.cli import figures_wanted

    with pytest.raises(ValueError, match="output.figures: 'yes' is invalid"):
        figures_wanted(OmegaConf.create({"output": {"figures": "yes"}}), sweep_job=False)


def test_same_seed_gives_identical_outputs(cli_runs):
    """Same seed: the tables, the resolved configuration and the metrics are identical files, byte
    for byte (only the metrics' solver wall time and provenance's times may differ)."""
    a, b = _ok(cli_runs["a"]), _ok(cli_runs["b"])
    for name in ("timeseries.parquet", "flows.parquet", "config.yaml"):
        assert (a.run_dir / name).read_bytes() == (b.run_dir / name).read_bytes(), name
    for name in ("timeseries.parquet", "flows.parquet"):
        pd.testing.assert_frame_equal(_read(a, name), _read(b, name), check_exact=True)
    ma, mb = _read(a, "metrics.json"), _read(b, "metrics.json")
    assert helpers.metrics_without_wall_time(ma) == helpers.metrics_without_wall_time(mb)


def test_different_seeds_give_different_outputs(cli_runs):
    a, c = _ok(cli_runs["a"]), _ok(cli_runs["c"])
    ma, mc = _read(a, "metrics.json"), _read(c, "metrics.json")
    assert mc["seed"] == 2
    # Firm heterogeneity (sizes, sourcing shares) is seeded: Japan's baseline import structure differs.
    key = "coercer_import_share_start.ore.JPN"
    assert ma[key] != mc[key]
    ta, tc = _read(a, "timeseries.parquet"), _read(c, "timeseries.parquet")
    pe_a = ta[ta["variable"] == "price_export"].reset_index(drop=True)
    pe_c = tc[tc["variable"] == "price_export"].reset_index(drop=True)
    assert not pe_a["value"].equals(pe_c["value"])


def test_output_variables_selects_the_recorded_variables(cli_runs):
    ts = _read(_ok(cli_runs["c"]), "timeseries.parquet")
    assert set(ts["variable"].astype(str)) == {"price_export", "capacity"}
    assert list(ts.columns) == helpers.TIMESERIES_COLUMNS


def test_output_flows_false_writes_no_flows(cli_runs):
    assert not (_ok(cli_runs["c"]).run_dir / "flows.parquet").exists()


@pytest.mark.slow
def test_figures_are_written(tmp_path):
    pytest.importorskip("sim.reporting.figures", reason="sim/reporting/figures.py is not there yet")
    helpers.warm_numba_cache()
    run = _ok(helpers.run_cli(["scenario=minimal", "seed=1"], tmp_path / "fig"))
    figdir = run.run_dir / "figures"
    assert figdir.is_dir()
    pngs, pdfs = sorted(figdir.glob("*.png")), sorted(figdir.glob("*.pdf"))
    assert [p.stem for p in pngs] == [p.stem for p in pdfs], "each figure as PNG and PDF"
    assert "overview" in [p.stem for p in pngs]
    for p in pngs + pdfs:
        assert p.stat().st_size > 1000, p
    assert helpers.temp_files_in(run.run_dir) == []
    for name in OUTPUT_FILES:
        assert (run.run_dir / name).is_file(), name
    (log,) = run.run_dir.glob("*.log")  # Hydra's job log
    assert "fontTools" not in log.read_text(), "fontTools' font-subsetting log lines"


# ------------------------------------------------------------------------------------------------
# Bad input: non-zero exit, one clear message naming the field and the value, no outputs
# ------------------------------------------------------------------------------------------------
#: name -> (extra args, expected exit code, substrings the message must contain). The cases the
#: brief lists run in the fast suite; the others (one process start each) are marked slow.
_SCENARIO_CASES = {
    name: ([f"scenario={name}"], 2, [path, value]) for name, (_, path, value) in helpers.BAD_SCENARIOS.items()
}


def _drop(*path):
    """A mutation of minimal.yaml's data that removes the key at ``path``."""

    def mutate(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


#: Scenario files that are not scenarios: file name -> (a writer of the file at a path, substrings
#: of the message besides the file's path).
_RAW_FILES = {
    "empty": (lambda p: p.write_text(""), ["the file is empty"]),
    "only_comments": (lambda p: p.write_text("# a scenario, one day\n"), ["the file is empty"]),
    "binary": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 8), ["binary content"]),
    "latin1": (lambda p: p.write_bytes("name: s\xe9rie\n".encode("latin-1")), ["not UTF-8 text", "0xe9"]),
    "huge": (
        lambda p: p.write_text("name: huge\n" + "# padding\n" * (MAX_SCENARIO_FILE_BYTES // 10 + 1)),
        ["too large", "MiB"],
    ),
    "bad_yaml": (lambda p: p.write_text("name: bad_yaml\ngoods: [\n  - id: ore\n"), ["invalid YAML at line"]),
    "a_list": (lambda p: p.write_text("- name: a_list\n"), ["list", "at the top level is invalid"]),
}
#: minimal.yaml with a required field left out: file name -> (the key's path in the file, substrings
#: of the message besides the file's path).
_MISSING_FIELDS = {
    "no_name": (("name",), ["scenario.name: missing"]),
    "no_start": (("start",), ["scenario.start: missing", "YYYY-MM"]),
    "no_coercer": (("coercer",), ["scenario.coercer: missing", "country code"]),
    "no_producer_good": (("producers", 0, "good"), ["scenario.producers[0].good: missing", "good id"]),
}
_FILE_CASES = {name: needles for name, (_, needles) in {**_RAW_FILES, **_MISSING_FIELDS}.items()}


def _drop(path):
    """A mutation of minimal.yaml's data that removes the key at ``path``."""

    def mutate(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _write_file_cases(config_dir):
    """Write the scenario files of :data:`_RAW_FILES` and :data:`_MISSING_FIELDS` into ``config_dir``."""
    (config_dir / "scenario").mkdir(parents=True, exist_ok=True)
    for name, (write, _) in _RAW_FILES.items():
        write(config_dir / "scenario" / f"{name}.yaml")
    for name, (path, _) in _MISSING_FIELDS.items():
        helpers.write_scenario(config_dir, name, _drop(path))


BAD_CLI = {
    "unknown_scenario": (["scenario=nope"], 2, ["scenario: 'nope' is not a scenario", "allowed:", "minimal"]),
    # listed by --help among the scenarios; it is what scenario files extend
    "the_schema_as_a_scenario": (["scenario=schema"], 2, ["scenario: 'schema' is the schema", "minimal"]),
    # command-line overrides Hydra cannot compose: one line with the key and what is allowed (Hydra's
    # own message spans several lines, exits 1 and does not list the keys there are)
    "misspelt_scenario_key": (
        ["scenario=minimal", "scenario.godos=1"],
        2,
        ["error: scenario.godos: unknown key; allowed: ", "goods"],
    ),
    "misspelt_model_key": (
        ["scenario=minimal", "model.risk_avresion=1"],
        2,
        ["error: model.risk_avresion: unknown key; allowed: ", "risk_aversion"],
    ),
    "unknown_config_option": (
        ["scenario=minimal", "model=nope"],
        2,
        ["error: model=nope: no such config; allowed: default"],
    ),
    "malformed_override": (["scenario=minimal", "seed=["], 2, ["error: malformed override"]),
    "misspelt_key_in_scenario_file": (["scenario=typo"], 2, ["typo.yaml: scenario.godos: unknown key"]),
    # a key misspelt inside a list entry of a file: the full path and the allowed keys (Hydra's own
    # message named only 'referense_price')
    "misspelt_nested_key_in_scenario_file": (
        ["scenario=nested_typo"],
        2,
        ["nested_typo.yaml: scenario.goods[0].referense_price", "unknown key", "allowed:", "reference_price"],
    ),
    "wrong_type_in_scenario_file": (
        ["scenario=wrong_type_in_file"],
        2,
        ["wrong_type_in_file.yaml: scenario.producers[0].capacity", "'lots'", "a number"],
    ),
    "wrong_type": (["scenario=minimal", "seed=abc"], 2, ["error: seed: ", "'abc'", "Integer"]),
    "negative_capacity_override": (
        ["scenario=minimal", "scenario.producers.0.capacity=-5"],
        2,
        ["scenario.producers[0].capacity", "-5"],
    ),
    "generated_too_few_countries": (["scenario=generated", "scenario.countries=1"], 2, ["scenario.countries", "1"]),
    "generated_unknown_measure": (
        ["scenario=generated", "scenario.measure=embargo"],
        2,
        ["scenario.measure", "'embargo'"],
    ),
    "misspelt_generator_key": (
        ["scenario=generated", "scenario.contries=3"],
        2,
        ["error: scenario.contries: unknown key; allowed: ", "countries"],
    ),
    "generated_wrong_type": (["scenario=generated", "scenario.goods=many"], 2, ["error: scenario.goods", "many"]),
    # a mistyped history file used to fail only when the figure was drawn, after the run, leaving
    # partial outputs
    "history_not_found": (["scenario=minimal", "scenario.history=nope.csv"], 2, ["scenario.history", "'nope.csv'"]),
    "negative_seed": (["scenario=minimal", "seed=-1"], 2, ["seed", "-1", ">= 0"]),
    **_SCENARIO_CASES,
    **{
        f"file_{name}": ([f"scenario={name}"], 2, [f"{name}.yaml: ", *needles]) for name, needles in _FILE_CASES.items()
    },
}
FAST_BAD_CLI = {
    "unknown_scenario",
    "misspelt_scenario_key",
    "misspelt_model_key",
    "wrong_type",
    "misspelt_nested_key_in_scenario_file",
    "unknown_country_in_measure",
    "negative_capacity",
    "shares_not_summing_to_one",
    "measure_ends_before_start",
    "measure_date_after_scenario_end",
    "generated_too_few_countries",
    "the_schema_as_a_scenario",
    *(f"file_{name}" for name in _FILE_CASES),
}


def _bad_params():
    for name in BAD_CLI:
        marks = () if name in FAST_BAD_CLI else (pytest.mark.slow,)
        yield pytest.param(name, id=name, marks=marks)


def _start_bad_runs(tmp_path_factory, names):
    helpers.warm_numba_cache()
    root = tmp_path_factory.mktemp("cli_bad")
    config_dir = helpers.write_bad_scenarios(root / "my_configs")
    _write_file_cases(config_dir)
    jobs = {}
    for i, name in enumerate(sorted(names)):
        args = BAD_CLI[name][0]
        # Alternate the two ways of adding a config dir: --config-dir and hydra.searchpath.
        extra = ["--config-dir", str(config_dir)] if i % 2 == 0 else [f"hydra.searchpath=[file://{config_dir}]"]
        jobs[name] = ([*extra, *args, "output.figures=false"], root / "runs" / name)
    return helpers.run_cli_many(jobs)


@pytest.fixture(scope="module")
def bad_runs(request, tmp_path_factory):
    """All bad-input runs this session selected, started together on first use."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.originalname == "test_bad_input_fails_cleanly" and hasattr(item, "callspec")
    }
    return _start_bad_runs(tmp_path_factory, selected or set(BAD_CLI))


@pytest.mark.parametrize("name", list(_bad_params()))
def test_bad_input_fails_cleanly(bad_runs, name):
    _, code, needles = BAD_CLI[name]
    run = bad_runs[name]
    assert run.returncode == code, f"exit {run.returncode}, stderr:\n{run.stderr}"
    err = run.stderr
    for needle in needles:
        assert needle in err, f"{needle!r} not in stderr:\n{err}"
    assert "Traceback" not in err
    if code == 2:
        # Our own validation: exactly one line, "error: <field>: <value> ...".
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    # Nothing on stdout (no summary), nothing written.
    assert "coercion-sim:" not in run.stdout
    assert helpers.output_files_in(run.run_dir) == [], f"outputs written: {helpers.output_files_in(run.run_dir)}"


def test_a_failed_run_in_the_default_run_dir_leaves_no_empty_folders(tmp_path):
    """Without ``hydra.run.dir`` Hydra makes ``outputs/<scenario>/<time>/``; a run stopped by bad input
    removes all three levels it left empty (a user's folders that hold anything are kept)."""
    import subprocess

    (tmp_path / "keep").mkdir()
    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "scenario=minimal", "seed=-1"],
        cwd=tmp_path,
        env=helpers.cli_env(),
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 2, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


@pytest.mark.parametrize("where", [["hydra.run.dir=."], ["hydra.job.chdir=true"]])
def test_a_failed_run_never_removes_the_working_directory(tmp_path, where):
    """Bad input with the run folder being the working directory (``hydra.run.dir=.``) or Hydra
    changing into it (``hydra.job.chdir=true``): the error is printed (exit 2) and the user's files,
    even log files, stay."""
    import subprocess

    (tmp_path / "mynotes.log").write_text("mine")
    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "scenario=minimal", "seed=-1", *where],
        cwd=tmp_path,
        env=helpers.cli_env(),
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 2 and "seed: -1 is invalid" in proc.stderr, proc.stderr
    assert (tmp_path / "mynotes.log").read_text() == "mine"


def test_bad_scenarios_cover_the_brief():
    wanted = {
        "unknown_scenario",
        "misspelt_scenario_key",
        "unknown_country_in_measure",
        "negative_capacity",
        "shares_not_summing_to_one",
        "measure_ends_before_start",
        "measure_date_after_scenario_end",
    }
    assert wanted <= FAST_BAD_CLI <= set(BAD_CLI)


def test_a_scenario_file_mistake_in_the_default_run_dir_leaves_nothing(tmp_path):
    """A scenario file without ``start:``, run without ``hydra.run.dir``: one line naming the file
    and the field, exit 2, and no ``outputs/<name>/<time>/`` (the check runs before Hydra makes it)."""
    import subprocess

    config_dir = tmp_path / "my_configs"
    helpers.write_scenario(config_dir, "no_start", _drop(("start",)))
    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "--config-dir", "my_configs", "scenario=no_start"],
        cwd=tmp_path,
        env=helpers.cli_env(),
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: my_configs/scenario/no_start.yaml: scenario.start: missing; allowed: {REQUIRED_HINTS['start']}"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_configs"]


def test_a_users_file_with_a_shipped_name_is_named_in_a_warning(tmp_path):
    """Hydra reads the shipped ``minimal.yaml`` before the user's file of the same name: a warning says
    which file is used and which is ignored (``--cfg job`` shows the composed scenario, no run)."""
    import subprocess

    config_dir = helpers.write_scenario(tmp_path / "my_configs", "minimal", lambda d: d.update(description="mine"))
    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "--config-dir", str(config_dir), "scenario=minimal", "--cfg", "job"],
        cwd=tmp_path,
        env=helpers.cli_env(),
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.splitlines()
    shipped = helpers.CONFIG_DIR / "scenario" / "minimal.yaml"
    assert line.startswith(
        f"warning: scenario 'minimal': using {shipped}; your {config_dir / 'scenario' / 'minimal.yaml'}"
    )
    assert "is ignored" in line and "rename your file" in line
    assert OmegaConf.create(proc.stdout).scenario.description != "mine"


# ---------------------------------------------------------------------------------------------
# The summary fits the kind of measure
# ---------------------------------------------------------------------------------------------
SUMMARY_METRICS = {
    "peak_export_price_ratio.graphite": 1.0,
    "peak_export_price_date.graphite": "2024-01",
    "export_domestic_wedge_at_peak.graphite": 1.0,
    "peak_price_paid_ratio.graphite.KOR": 36.0,
    "shortage_months.KOR": 7,
    "peak_export_price_ratio.beef": 1.0,
    "peak_export_price_date.beef": "2020-01",
    "export_domestic_wedge_at_peak.beef": 1.0,
    "export_revenue_lost.beef.AUS": 2.7e9,
    "export_price_received_ratio_12m.beef.AUS": 0.97,
    "redirected_share_12m.beef.AUS": 0.7,
    "export_revenue_lost.AUS": 2.7e9,
    "export_revenue_lost_share.AUS": 0.129,
    "output_loss_share.CHN": 0.0067,
    "output_loss_share.KOR": 0.02,
}


def test_summary_of_an_export_restriction_leads_with_the_prices_targets_paid():
    """A ban on graphite exports to KOR: the line says KOR paid 36x, not only that the coercer's
    export price stayed at 1.0x; shortage months of the target follow."""
    from sim.cli import summary_lines

    lines = summary_lines(
        SUMMARY_METRICS,
        goods=["graphite"],
        coercer="CHN",
        targets=["KOR"],
        measures=[{"type": "export_ban", "imposer": "CHN", "goods": ["graphite"], "targets": ["KOR"]}],
    )
    text = "\n".join(lines)
    assert lines[0].startswith("  graphite (export restriction by CHN): delivered price peaked at KOR 36.0x")
    assert "coercer export price peaked at 1.0x" in lines[0]
    assert "months with shortages" in text and "KOR 7" in text
    assert "export revenue lost" not in text
    assert "output loss (share of each country's baseline value added over the run)" in text


def test_summary_of_an_import_ban_shows_the_targets_lost_exports():
    """A ban on Australian beef: the target's lost revenue, price received and redirection, not the
    coercer's export price (which an import ban leaves at 1.0x)."""
    from sim.cli import summary_lines

    lines = summary_lines(
        SUMMARY_METRICS,
        goods=["beef"],
        coercer="CHN",
        targets=["AUS"],
        measures=[{"type": "import_ban", "imposer": "CHN", "goods": ["beef"], "targets": ["AUS"]}],
    )
    text = "\n".join(lines)
    assert "coercer export price" not in text
    assert lines[0] == (
        "  beef (import measure by CHN): AUS export revenue lost US$2.7bn, price received 0.97x in the first "
        "year, 70% of lost sales to CHN sold elsewhere within a year"
    )
    assert "export revenue lost (share of the targets' baseline export revenue" in text and "AUS 12.9%" in text
    assert "months with shortages" not in text


def test_summary_without_trade_measures_keeps_the_coercer_price_line():
    """Only domestic instruments (or none): the coercer's export price is what there is to say."""
    from sim.cli import summary_lines

    for measures in ([], [{"type": "production_quota", "imposer": "CHN", "goods": ["graphite"]}]):
        lines = summary_lines(SUMMARY_METRICS, goods=["graphite"], coercer="CHN", targets=["KOR"], measures=measures)
        assert lines[0] == (
            "  graphite: coercer export price peaked at 1.0x (2024-01), export/domestic wedge 1.0x at the peak"
        )


def test_figure_worker_wherever_a_core_is_left(monkeypatch):
    """A figure worker draws the figures side by side on a machine with two cores or more, unless the
    load says every core is busy; the environment variable overrides; a bad value is one clear error."""
    from sim.cli import WORKERS_ENV, figure_worker_count

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert figure_worker_count(2, cores=16, load=0.5) == 2
    assert figure_worker_count(3, cores=2, load=0.0) == 2  # as many at once as there are cores
    assert figure_worker_count(1, cores=16, load=0.5) == 0  # one figure: nothing to do side by side
    assert figure_worker_count(2, cores=2, load=1.2) == 2  # the model's core and one idle
    assert figure_worker_count(2, cores=1, load=0.0) == 0
    assert figure_worker_count(2, cores=8, load=8.5) == 0  # every core busy
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert figure_worker_count(2, cores=2, load=6.0) == 2
    assert figure_worker_count(1, cores=2, load=0.0) == 0
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert figure_worker_count(2, cores=16, load=0.0) == 0
    for bad in ("many", "-1"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=f"COERCION_SIM_FIGURE_WORKERS: '{bad}' is invalid"):
            figure_worker_count(2)


def _tiny_run_tables():
    ts = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=6, freq="MS").repeat(2),
            "step": np.repeat(np.arange(6, dtype=np.int32), 2),
            "country": ["CHN", "JPN"] * 6,
            "good": ["ore"] * 12,
            "variable": ["price_export"] * 12,
            "value": np.linspace(1.0, 3.0, 12),
        }
    )
    flows = pd.DataFrame(columns=["date", "step", "good", "origin", "destination", "quantity", "value"])
    scenario = {"coercer": "CHN", "targets": ["JPN"], "goods": [{"id": "ore"}], "measures": []}
    return ts, flows, scenario


def test_figure_worker_draws_the_same_files_as_the_command_itself(tmp_path):
    """The worker (figures side by side: one in the worker, one in a forked child) writes the same
    figures, pixel for pixel, as a run drawing them in its own process; it serves several requests."""
    from PIL import Image, ImageChops

    from sim.reporting import figures as F
    from sim.reporting.figure_worker import FigureWorker

    ts, flows, scenario = _tiny_run_tables()
    scenario_b = {**scenario, "targets": []}
    with FigureWorker(2) as worker:
        paths = worker.draw(["overview", "overview"], ts, flows, scenario, tmp_path / "w")
        again = worker.draw(["overview"], ts, flows, scenario_b, tmp_path / "w2")
    assert [p.name for p in paths] == ["overview.png", "overview.pdf"] * 2
    assert [p.name for p in again] == ["overview.png", "overview.pdf"]
    own = F.draw_run_figure("overview", ts, flows, scenario, tmp_path / "own")
    assert all(p.stat().st_size > 1000 for p in [*paths, *own])
    a, b = Image.open(paths[0]).convert("RGB"), Image.open(own[0]).convert("RGB")
    assert a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def test_figure_worker_reports_a_figure_that_fails_after_the_others_are_drawn(tmp_path):
    """An error in a forked child (an unknown figure) comes back to the command as itself, after the
    worker's own figure is written; the worker then still serves requests."""
    from sim.reporting.figure_worker import FigureWorker

    ts, flows, scenario = _tiny_run_tables()
    with FigureWorker(2) as worker:
        with pytest.raises(ValueError, match="unknown figure 'nope'"):
            worker.draw(["overview", "nope"], ts, flows, scenario, tmp_path / "w")
        assert (tmp_path / "w" / "overview.png").exists()
        with pytest.raises(ValueError, match="unknown figure 'nope'"):
            worker.draw(["nope", "overview"], ts, flows, scenario, tmp_path / "x")
        assert (tmp_path / "x" / "overview.pdf").exists()
        assert [p.name for p in worker.draw(["overview"], ts, flows, scenario, tmp_path / "y")] == [
            "overview.png",
            "overview.pdf",
        ]


def test_a_figure_worker_that_never_drew_is_stopped_at_once_and_a_used_one_ends_cleanly(tmp_path):
    """A command that fails before drawing does not wait for its worker to finish loading Matplotlib:
    the worker is terminated; a worker that drew leaves by itself."""
    import signal

    from sim.reporting.figure_worker import FigureWorker

    unused = FigureWorker(2)
    unused.close()
    assert unused._process.exitcode == -signal.SIGTERM
    ts, flows, scenario = _tiny_run_tables()
    with FigureWorker(2) as used:
        used.draw(["overview"], ts, flows, scenario, tmp_path)
    assert used._process.exitcode == 0


def test_a_figure_worker_that_died_is_one_clear_error(tmp_path):
    from sim.reporting.figure_worker import FigureWorker, FigureWorkerError

    ts, flows, scenario = _tiny_run_tables()
    worker = FigureWorker(2)
    try:
        worker._process.kill()
        worker._process.join()
        with pytest.raises(FigureWorkerError, match="figure worker stopped"):
            worker.draw(["overview"], ts, flows, scenario, tmp_path)
    finally:
        worker.close()


def test_the_command_process_imports_no_matplotlib_unless_it_draws_itself():
    """Without figures, or with the figures drawn in worker processes, the command's own process
    never imports Matplotlib (about 0.6-1 s of CPU): deciding which figures a run draws and how many
    workers to start needs none of it."""
    code = (
        "import sys\n"
        "import sim.cli, sim.api, sim.reporting.files, sim.reporting.recording, sim.reporting.metrics\n"
        "from omegaconf import OmegaConf\n"
        "from sim.cli import figure_worker_count, figures_wanted\n"
        "from sim.reporting.figure_names import run_figure_names\n"
        "cfg = OmegaConf.create({'output': {'figures': 'auto'}, 'scenario': {'history': 'x.csv'}})\n"
        "assert figures_wanted(cfg, sweep_job=False)\n"
        "assert run_figure_names(cfg.scenario) == ['overview', 'history']\n"
        "figure_worker_count(2)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'fontTools', 'PIL')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_bad_figure_worker_setting_is_one_clear_error_before_the_run(tmp_path):
    """``COERCION_SIM_FIGURE_WORKERS=many``: exit 2 with the variable, the value and what is allowed,
    and no run folder left behind."""
    import subprocess

    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [helpers.coercion_sim_exe(), "scenario=minimal", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env={**helpers.cli_env(), "COERCION_SIM_FIGURE_WORKERS": "many"},
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 2, proc.stderr
    assert "COERCION_SIM_FIGURE_WORKERS: 'many' is invalid; allowed: a whole number >= 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()
