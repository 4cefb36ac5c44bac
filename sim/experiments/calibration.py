"""Calibration with uncertainty: ABC-SMC on the in-sample case, posterior predictive bands, levers with bands.

The method (docs/calibration.md, docs/ODD.md "Calibration with uncertainty"):

1. **Estimate** the shared behavioural parameters of :data:`PARAMETERS` on ``rare_earth_2010`` alone, by
   approximate Bayesian computation with sequential Monte Carlo (pyabc's ``ABCSMC``), against the
   observations of the case's history file (``sim/world/data/rare_earth_2010_history.csv``), turned into
   unit-free statistics by :func:`observations` and compared by :func:`distance`. The result is a
   weighted set of accepted parameter sets (the posterior), with identifiability (:func:`identifiability`).
2. **Predict**: every shipped case run with posterior draws x seeds; paths (:func:`simulate`) and their
   quantiles (:func:`quantiles`). No case-specific tuning: every case takes the same keys.
3. **Levers**: the counterfactual lever variants of ``experiments/counterfactual_levers.py`` re-run over
   posterior draws (:func:`lever_table`, :func:`lever_summary`).

Runs go through :class:`sim.experiments.runner.CaseRunner` (its composed configuration, cached per process), so
speed-ups of that path reach the calibration. Outputs and the report are written by
``experiments/validate.py`` (``make validate``, ``make validate-quick``); :func:`write_report` rebuilds
``report.md`` from the files alone.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyabc.sampler import MappingSampler

__all__ = [
    "Parameter",
    "PARAMETERS",
    "SHIPPED_CASES",
    "CalibrationError",
    "overrides",
    "simulate",
    "observations",
    "simulated_statistics",
    "distance",
    "run_abc",
    "posterior_frame",
    "resample",
    "identifiability",
    "quantiles",
    "lever_table",
    "lever_summary",
    "calibration_table",
    "write_report",
]

#: Cases run for the posterior predictive (every shipped scenario except the test world and the generator).
SHIPPED_CASES = (
    "rare_earth_2010",
    "australia_2020",
    "gallium_germanium_2023",
    "rare_earth_magnets_2025",
    "us_tariffs_2025",
)
#: The in-sample case.
IN_SAMPLE = "rare_earth_2010"


class CalibrationError(ValueError):
    """A calibration setting that cannot be used (named field, bad value, what is allowed)."""


@dataclass(frozen=True)
class Parameter:
    """A calibrated parameter: its uniform prior and the configuration keys it sets in every case.

    Attributes:
        name: Column name in ``posterior.parquet``.
        keys: Dotted configuration keys it sets (the same keys in every case).
        low: Lower end of the uniform prior.
        high: Upper end of the uniform prior.
        default: The shipped value (for the report).
        multiplier: The value multiplies each key's shipped value instead of replacing it.
        reason: Where the prior range comes from.
    """

    name: str
    keys: tuple[str, ...]
    low: float
    high: float
    default: float
    multiplier: bool = False
    reason: str = ""

    @property
    def prior_sd(self) -> float:
        """Standard deviation of the uniform prior."""
        return (self.high - self.low) / math.sqrt(12.0)


#: The estimated parameters (docs/calibration.md says why these six).
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "sourcing_adjustment_rate",
        ("model.sourcing_adjustment_rate",),
        0.01,
        0.09,
        0.03,
        reason="assumption (no source gives a rate): x1/3 to x3 the shipped 0.03 per month",
    ),
    Parameter(
        "risk_aversion",
        ("model.risk_aversion",),
        0.0,
        6.0,
        3.0,
        reason="assumption: 0 (perceived risk ignored) to twice the shipped 3.0",
    ),
    Parameter(
        "precaution",
        ("model.precaution",),
        0.0,
        4.0,
        2.0,
        reason="assumption: 0 (no precautionary stocking) to twice the shipped 2.0",
    ),
    Parameter(
        "long_run_thrift",
        ("model.long_run_thrift",),
        0.0,
        2.0,
        1.0,
        reason="the named range of configs/model/default.yaml (docs/ODD.md 7.3): 0 (off) to 2",
    ),
    Parameter(
        "armington_critical_minerals",
        ("parameters.armington.critical_minerals",),
        1.3,
        5.4,
        3.0,
        reason="docs/sources/parameters.md F3: lowest ESUBD found (1.3) to median ESUBM (~5.4)",
    ),
    Parameter(
        "supply_curvature_multiplier",
        ("parameters.supply_elasticity.commodity", "parameters.supply_elasticity.coproduct"),
        0.5,
        2.0,
        1.0,
        multiplier=True,
        reason="the named assumption ranges of rare_earth_2010 (x0.5-x2 of 0.5 light, 0.3 heavy; F2)",
    ),
)

# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _runner(case: str, overrides_: tuple[str, ...] = (), config_dir: str | None = None):
    from sim.experiments.runner import CaseRunner

    return CaseRunner(case, overrides=overrides_, config_dir=config_dir)


def overrides(values: Mapping[str, float], runner, parameters: Sequence[Parameter] = PARAMETERS) -> dict[str, float]:
    """Configuration key -> value for a parameter set in the runner's case (multipliers applied to
    the case's shipped values).

    Raises:
        CalibrationError: a parameter the set lacks.
    """
    from omegaconf import OmegaConf

    from sim.experiments.runner import _base_config

    out: dict[str, float] = {}
    base = None
    for p in parameters:
        if p.name not in values:
            raise CalibrationError(f"parameters.{p.name}: missing; allowed: a value in [{p.low}, {p.high}]")
        v = float(values[p.name])
        for key in p.keys:
            if p.multiplier:
                if base is None:
                    base = _base_config(runner.case, tuple(runner.policies), tuple(runner.overrides), runner.config_dir)
                out[key] = float(OmegaConf.select(base, key)) * v
            else:
                out[key] = v
    return out


def simulate(runner, values: Mapping[str, float], seed: int, parameters: Sequence[Parameter] = PARAMETERS):
    """One run of ``runner``'s case with a parameter set: its metrics and its monthly paths.

    Returns:
        ``(metrics, paths)``: the run's metrics (keys of ``metrics.json``) and a dict
        ``(variable, country, good) -> monthly array`` with ``"dates"`` the months. Variables:
        ``price_export_ratio`` and ``price_domestic_ratio`` (coercer's prices / first month),
        ``coercer_exports`` (coercer's exports, quantity a month, all goods without inputs: the raw
        materials the observations count), ``coercer_import_share`` (coercer's share of each other
        country's imports, quantity, the same goods; NaN without imports)
        and ``output_loss_share`` (each country's monthly output loss / baseline monthly value added).
    """
    from sim.model.model import CoercionModel
    from sim.reporting.metrics import _FlowCubes, compute_metrics

    cfg = runner.config(overrides(values, runner, parameters), seed=int(seed))
    model = CoercionModel(cfg)
    model.run()
    metrics = compute_metrics(model)
    rec, w = model.recorder, model.world
    T = rec.steps_recorded
    gl, cl = rec.good_level, rec.country_level
    c0 = w.coercer
    paths: dict = {"dates": np.asarray(w.calendar.dates()[:T], dtype="datetime64[M]")}
    with np.errstate(invalid="ignore", divide="ignore"):
        for g, good in enumerate(w.goods):
            for var, name in (("price_export", "price_export_ratio"), ("price_domestic", "price_domestic_ratio")):
                s = np.asarray(gl[var][:T, g, c0], dtype=float)
                paths[(name, w.countries[c0], good)] = s / s[0]
        # Observations count the traded raw materials (rare-earth oxides), not goods made from them
        # (a case's magnet stage): "all" is every good of the scenario that has no inputs.
        made = {str(g.id) for g in cfg.scenario.goods if g.get("inputs")}
        primary = [g for g, good in enumerate(w.goods) if good not in made]
        paths[("coercer_exports", w.countries[c0], "all")] = np.nansum(gl["exports"][:T, primary, c0], axis=1)
        cubes = _FlowCubes(rec, T)
        flows = sum(cubes.cube(g) for g in primary)  # [T, origin, destination]
        for c, code in enumerate(w.countries):
            if c == c0:
                continue
            inflow = flows[:, :, c].copy()
            inflow[:, c] = 0.0
            total = inflow.sum(axis=1)
            paths[("coercer_import_share", code, "all")] = np.where(total > 0, inflow[:, c0] / total, np.nan)
        base_va = rec.baseline_value_added
        for c, code in enumerate(w.countries):
            if base_va[c] > 0:
                paths[("output_loss_share", code, "all")] = np.asarray(cl["output_loss"][:T, c]) / base_va[c]
    del model
    return metrics, paths


# --------------------------------------------------------------------------------------------------
# Observations, statistics, distance
# --------------------------------------------------------------------------------------------------
#: Kind of observation -> (weight, scale, transform). Each kind is split into groups by good
#: (``export_price.ree_light``); every group gets its kind's weight. Log kinds: one unit of distance is a
#: factor of 2; the share: 10 percentage points.
GROUPS: dict[str, tuple[float, float, str]] = {
    "export_price": (1.0, math.log(2.0), "log"),
    "domestic_price": (0.5, math.log(2.0), "log"),
    "japan_china_share": (1.0, 0.10, "linear"),
    "china_exports": (1.0, math.log(2.0), "log"),
}
#: Weight of an observation by its ``quality`` column.
QUALITY_WEIGHT = {"ok": 1.0, "derived": 1.0, "low": 0.5}


def observations(history: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """The observations the distance uses, one row each, unit-free.

    * ``export_price``: the ratio to the element's own pre-crisis price (``ratio_to_baseline``) vs the
      coercer's export price of the good over its first month, in the observation's month.
    * ``domestic_price``: the change of an element's domestic price since its first observation in the
      run's window vs the same change of the modelled domestic price (US$ levels of elements are not
      the model's basket: only changes are compared).
    * ``china_share_of_japan_imports``: monthly observations ("monthly" in ``basis``) vs the month;
      others vs the calendar year (quantities summed over the year).
    * ``china_exports_t_per_year`` / ``_per_month``: ratio to the first annual observation (2009) vs the
      same ratio of the coercer's modelled exports.

    Returns:
        Columns ``group, series, element, date, ref_date, period, observed, quality_weight``
        (``observed`` a ratio or a share; ``ref_date``: the reference observation's month, or NaT;
        ``period``: ``month`` or ``year``).
    """
    h = history.copy()
    h["date"] = pd.to_datetime(h["date"], errors="coerce")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.offsets.MonthEnd(0)
    h = h[(h["date"] >= lo) & (h["date"] <= hi)]
    qw = h["quality"].astype(str).str.lower().map(QUALITY_WEIGHT).fillna(1.0)
    h = h.assign(quality_weight=qw)
    rows = []
    for _, r in h[h.series == "export_price"].dropna(subset=["ratio_to_baseline"]).iterrows():
        if r.ratio_to_baseline == 1.0:
            continue  # the baseline itself carries no information
        rows.append(("export_price." + str(r.good), r.series, r.element, r.date, pd.NaT, "month", r.ratio_to_baseline))
    dom = h[h.series == "domestic_price"].sort_values("date")
    for (good, element), grp in dom.groupby(["good", "element"]):
        ref = grp.iloc[0]
        for _, r in grp.iloc[1:].iterrows():
            rows.append(
                ("domestic_price." + str(good), r.series, element, r.date, ref.date, "month", r.value / ref.value)
            )
    for _, r in h[h.series == "china_share_of_japan_imports"].iterrows():
        period = "month" if "monthly" in str(r.basis) else "year"
        rows.append(("japan_china_share", r.series, r.element, r.date, pd.NaT, period, r.value))
    ex = h[h.series.isin(["china_exports_t_per_year", "china_exports_t_per_month"])].sort_values("date")
    annual = ex[ex.series == "china_exports_t_per_year"]
    if len(annual):
        ref = annual.iloc[0]
        for _, r in ex.iterrows():
            if r.date == ref.date and r.series == ref.series:
                continue
            per_month = r.value if r.series.endswith("per_month") else r.value / 12.0
            period = "month" if r.series.endswith("per_month") else "year"
            rows.append(("china_exports", r.series, r.element, r.date, ref.date, period, per_month / (ref.value / 12)))
    out = pd.DataFrame(rows, columns=["group", "series", "element", "date", "ref_date", "period", "observed"])
    keep = h.set_index(["series", "date"])["quality_weight"]
    out["quality_weight"] = [
        float(np.atleast_1d(keep.get((s, d), 1.0))[0]) for s, d in zip(out.series, out.date, strict=True)
    ]
    return out.reset_index(drop=True)


def _at(paths: dict, key, date, period: str, weights=None) -> float:
    """A path's value in an observation's month, or its mean over the calendar year (``weights``:
    quantities to weight by).
    """
    dates = paths["dates"]
    series = paths.get(key)
    if series is None:
        return float("nan")
    month = np.datetime64(pd.Timestamp(date), "M")
    if period == "month":
        idx = np.flatnonzero(dates == month)
        return float(series[idx[0]]) if idx.size else float("nan")
    year = dates.astype("datetime64[Y]") == month.astype("datetime64[Y]")
    if not year.any():
        return float("nan")
    if weights is not None:
        wgt = weights[year]
        return float(np.nansum(series[year] * wgt) / np.nansum(wgt)) if np.nansum(wgt) > 0 else float("nan")
    return float(np.nanmean(series[year]))


def simulated_statistics(paths: dict, obs: pd.DataFrame, coercer: str = "CHN", target: str = "JPN") -> np.ndarray:
    """The modelled counterpart of every observation row of :func:`observations` (same order)."""
    out = np.empty(len(obs))
    exports = paths.get(("coercer_exports", coercer, "all"))
    for i, r in enumerate(obs.itertuples(index=False)):
        kind, _, good = r.group.partition(".")
        if kind == "export_price":
            v = _at(paths, ("price_export_ratio", coercer, good), r.date, "month")
        elif kind == "domestic_price":
            key = ("price_domestic_ratio", coercer, good)
            v = _at(paths, key, r.date, "month") / _at(paths, key, r.ref_date, "month")
        elif kind == "japan_china_share":
            v = _at(paths, ("coercer_import_share", target, "all"), r.date, r.period)
        elif kind == "china_exports":
            key = ("coercer_exports", coercer, "all")
            v = _at(paths, key, r.date, r.period) / _at(paths, key, r.ref_date, "year")
        else:
            v = float("nan")
        out[i] = v
    del exports
    return out


def distance(simulated: np.ndarray, observed: np.ndarray, groups: Sequence[str], quality: np.ndarray) -> float:
    """The weighted distance between modelled and observed statistics (docs/calibration.md).

    ``D = sqrt(sum_g W_g * mean_q,i in g[((t(s_i) - t(o_i)) / scale_g)^2] / sum_g W_g)`` with ``t`` the log
    for ratio groups and the identity for shares, ``mean_q`` the quality-weighted mean within a group
    and ``W_g, scale_g`` from :data:`GROUPS`. A statistic the run cannot give (NaN) makes the distance
    infinite (the particle is rejected).
    """
    simulated, observed = np.asarray(simulated, float), np.asarray(observed, float)
    groups, quality = np.asarray(groups), np.asarray(quality, float)
    total, weight = 0.0, 0.0
    for g in dict.fromkeys(groups.tolist()):
        kind = str(g).partition(".")[0]
        if kind not in GROUPS:
            raise CalibrationError(f"observations.group: {g!r} is invalid; allowed: {', '.join(GROUPS)} (.<good>)")
        wg, scale, transform = GROUPS[kind]
        sel = groups == g
        s, o, q = simulated[sel], observed[sel], quality[sel]
        if transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                err = (np.log(s) - np.log(o)) / scale
        else:
            err = (s - o) / scale
        if not np.all(np.isfinite(err)):
            return float("inf")
        total += wg * float(np.sum(q * err**2) / np.sum(q))
        weight += wg
    return math.sqrt(total / weight) if weight > 0 else float("inf")


# --------------------------------------------------------------------------------------------------
# ABC-SMC
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    """The ABC model: a parameter set in, the modelled statistics out (picklable for worker processes)."""

    case: str
    obs: pd.DataFrame
    parameters: tuple[Parameter, ...]
    coercer: str
    target: str
    config_dir: str | None = None

    def __call__(self, par) -> dict:
        seed = int(np.random.randint(1, 2**31 - 1))  # seeded by the sampler, one per particle
        values = {p.name: float(par[p.name]) for p in self.parameters}
        try:
            _, paths = simulate(_runner(self.case, (), self.config_dir), values, seed, self.parameters)
            stats = simulated_statistics(paths, self.obs, self.coercer, self.target)
        except Exception as exc:  # noqa: BLE001 - a failed run is a rejected particle, not a failed calibration
            import logging

            logging.getLogger(__name__).warning("run failed for %s: %s", values, exc)
            stats = np.full(len(self.obs), np.nan)
        return {"s": stats}


class _Distance:
    """pyabc's distance callable over the statistics of :class:`_Model`."""

    def __init__(self, obs: pd.DataFrame) -> None:
        self.groups = obs["group"].to_numpy()
        self.quality = obs["quality_weight"].to_numpy(float)

    def __call__(self, x, x0) -> float:
        return distance(x["s"], x0["s"], self.groups, self.quality)


class SeededMappingSampler(MappingSampler):
    """A pyabc mapping sampler whose particles are seeded from the main process's generator, so a run
    with a given seed gives the same posterior whatever the number of worker processes (pyabc's own
    samplers reseed each worker from the operating system).
    """

    def map_function(self, simulate_one, seed):
        """Sample particles with ``seed`` until one is accepted (in a worker)."""
        simulate_one = self.unpickle(simulate_one)
        # In one process this runs in the main process: keep its generator's state, which draws the seeds.
        saved = np.random.get_state(), random.getstate()
        np.random.seed(seed)
        random.seed(seed)
        try:
            n, sample = 0, self._create_empty_sample()
            while True:
                new = simulate_one()
                n += 1
                sample.append(new)
                if new.accepted:
                    return sample, n
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])

    def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False, ana_vars=None):  # noqa: ARG002
        """``n`` accepted particles, one seeded task each, in the order of the seeds."""
        seeds = [int(s) for s in np.random.randint(0, 2**31 - 1, size=n)]
        fn = functools.partial(self.map_function, self.pickle(simulate_one))
        results, evals = zip(*list(self.map_(fn, seeds)), strict=True)
        self.nr_evaluations_ = int(sum(evals))
        sample = self._create_empty_sample()
        for r in results:
            sample += r
        return sample


def run_abc(
    db_path: str,
    *,
    case: str = IN_SAMPLE,
    obs: pd.DataFrame,
    observed: np.ndarray | None = None,
    parameters: Sequence[Parameter] = PARAMETERS,
    population: int = 100,
    generations: int = 5,
    max_simulations: int = 2000,
    seed: int = 1,
    map_: Callable = map,
    resume: bool = False,
    coercer: str = "CHN",
    target: str = "JPN",
    config_dir: str | None = None,
    on_generation: Callable[[int, float, int], None] | None = None,
):
    """ABC-SMC (pyabc) of ``parameters`` on ``case`` against ``obs``; the history in ``db_path`` (SQLite).

    Args:
        db_path: SQLite file of pyabc's history (resumed when ``resume`` and it exists).
        case: Scenario the parameters are estimated on.
        obs: Observations (:func:`observations`).
        observed: The observed statistics (default ``obs.observed``; synthetic data in tests).
        parameters: The parameters and their priors.
        population: Accepted particles per generation.
        generations: Generations at most (counted over a resumed run too).
        max_simulations: Model runs at most (all generations).
        seed: Seed of the sampler's generator (proposals and the particles' run seeds).
        map_: A ``map`` (``multiprocessing.Pool.map`` for worker processes).
        resume: Continue the run stored in ``db_path``.
        coercer: The coercer's country code (the observations' "China").
        target: The target whose imports the share observations are of ("Japan").
        config_dir: Extra directory of config groups (test worlds).
        on_generation: Called after the run with ``(generation, epsilon, simulations)`` per generation.

    Returns:
        pyabc's ``History``.
    """
    import logging
    import os

    import pyabc

    for name in ("ABC", "Epsilon", "Distance", "Sampler", "pyabc"):
        logging.getLogger(f"pyabc.{name}" if name != "pyabc" else name).setLevel(logging.WARNING)
    if population < 2 or generations < 1 or max_simulations < population:
        raise CalibrationError(
            f"calibration budget: population={population}, generations={generations}, max_simulations="
            f"{max_simulations} is invalid; allowed: population >= 2, generations >= 1, max_simulations >= population"
        )
    np.random.seed(seed)
    random.seed(seed)
    params = tuple(parameters)
    prior = pyabc.Distribution(**{p.name: pyabc.RV("uniform", p.low, p.high - p.low) for p in params})
    model = _Model(case, obs.reset_index(drop=True), params, coercer, target, config_dir)
    abc = pyabc.ABCSMC(
        model,
        prior,
        _Distance(obs),
        population_size=population,
        sampler=SeededMappingSampler(map_=map_),
        eps=pyabc.MedianEpsilon(),
    )
    url = "sqlite:///" + os.path.abspath(db_path)
    if resume and os.path.exists(db_path):
        abc.load(url, 1)
        done = abc.history.max_t + 1
        # the sampler's generator continues from a seed that depends on how far the run got
        np.random.seed(seed + 1000 * done)
    else:
        obs_s = obs["observed"].to_numpy(float) if observed is None else np.asarray(observed, float)
        abc.new(url, {"s": obs_s})
        done = 0
    left = generations - done
    if left > 0:
        used = int(abc.history.total_nr_simulations) if done else 0
        abc.run(max_nr_populations=left, max_total_nr_simulations=max(max_simulations - used, population))
    hist = abc.history
    if on_generation is not None:
        pops = hist.get_all_populations()
        for _, r in pops[pops.t >= 0].iterrows():
            on_generation(int(r.t), float(r.epsilon), int(r.samples))
    return hist


def posterior_frame(history, parameters: Sequence[Parameter] = PARAMETERS) -> pd.DataFrame:
    """The last generation of an ABC history: a column per parameter and ``weight`` (sums to 1)."""
    df, w = history.get_distribution(m=0, t=history.max_t)
    out = df[[p.name for p in parameters]].reset_index(drop=True).astype(float)
    w = np.asarray(w, float)
    out["weight"] = w / w.sum()
    return out


def check_weights(posterior: pd.DataFrame) -> None:
    """Raise :class:`CalibrationError` unless the weights are finite, non-negative and sum to 1."""
    w = posterior["weight"].to_numpy(float)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1.0) <= 1e-9):
        raise CalibrationError(f"posterior.weight: sum {w.sum()!r}; allowed: finite, >= 0, summing to 1")


def resample(posterior: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` parameter sets drawn from the weighted posterior (with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(posterior), size=int(n), replace=True, p=posterior["weight"].to_numpy(float))
    return posterior.iloc[idx].drop(columns="weight").reset_index(drop=True)


def _weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    m = float(np.sum(w * x))
    return m, float(math.sqrt(max(np.sum(w * (x - m) ** 2), 0.0)))


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def identifiability(posterior: pd.DataFrame, parameters: Sequence[Parameter] = PARAMETERS):
    """Per parameter: prior and posterior mean, sd, 90 % interval, shrinkage ``1 - sd_post / sd_prior``
    and a verdict (pinned >= 0.5, weakly 0.2-0.5, not identified < 0.2); and the weighted correlations.

    Returns:
        ``(table, correlations)`` DataFrames.
    """
    w = posterior["weight"].to_numpy(float)
    rows = []
    for p in parameters:
        x = posterior[p.name].to_numpy(float)
        m, sd = _weighted_stats(x, w)
        shrink = 1.0 - sd / p.prior_sd
        verdict = "pinned down" if shrink >= 0.5 else ("weakly identified" if shrink >= 0.2 else "not identified")
        rows.append(
            {
                "parameter": p.name,
                "default": p.default,
                "prior_low": p.low,
                "prior_high": p.high,
                "mean": m,
                "sd": sd,
                "q05": _weighted_quantile(x, w, 0.05),
                "q50": _weighted_quantile(x, w, 0.5),
                "q95": _weighted_quantile(x, w, 0.95),
                "prior_sd": p.prior_sd,
                "shrinkage": shrink,
                "verdict": verdict,
            }
        )
    names = [p.name for p in parameters]
    X = posterior[names].to_numpy(float)
    mu = w @ X
    cov = (X - mu).T @ ((X - mu) * w[:, None])
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return pd.DataFrame(rows), pd.DataFrame(corr, index=names, columns=names)


# --------------------------------------------------------------------------------------------------
# Predictive and levers
# --------------------------------------------------------------------------------------------------
def predictive_task(task: tuple) -> tuple:
    """One predictive run (a worker's job): ``(case, draw, seed, values)`` -> ``(case, draw, seed, rows,
    metrics)`` with ``rows`` the tidy path rows.
    """
    case, draw, seed, values = task
    metrics, paths = simulate(_runner(case), values, seed)
    dates = pd.to_datetime(paths.pop("dates"))
    frames = []
    for (variable, country, good), series in paths.items():
        frames.append(
            pd.DataFrame(
                {"date": dates, "country": country, "good": good, "variable": variable, "value": np.asarray(series)}
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return case, draw, seed, rows, scalars


def quantiles(draws: pd.DataFrame, qs: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Quantiles over draws (rows of ``kind == "draw"``) per case, date, country, good and variable."""
    keys = ["case", "date", "country", "good", "variable"]
    grouped = draws.groupby(keys, dropna=False)["value"]
    parts = []
    for q in qs:
        part = grouped.quantile(q).reset_index()
        part["quantile"] = q
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["kind"] = "quantile"
    out["draw"] = -1
    out["seed"] = -1
    return out


def lever_task(task: tuple) -> dict:
    """One lever run (a worker's job): ``(variant, overrides, draw, seed, values)`` -> outcome row."""
    variant, lever_overrides, draw, seed, values = task
    runner = _runner(IN_SAMPLE, tuple(lever_overrides))
    metrics, _ = simulate(runner, values, seed)
    jpn = "JPN"
    cost = sum(v for k, v in metrics.items() if k.startswith("policy_cost.total."))
    return {
        "variant": variant,
        "draw": draw,
        "seed": seed,
        "output_loss": float(metrics[f"output_loss.{jpn}"]),
        "output_loss_share": float(metrics[f"output_loss_share.{jpn}"]),
        "lever_cost": float(cost),
    }


def lever_table(rows: Sequence[dict]) -> pd.DataFrame:
    """Lever rows with ``damage_avoided`` against the ``none`` variant of the same draw and seed, and the
    rank of each lever within its draw (1: most damage avoided; ``none`` and the historical mix excluded
    from the ranking).
    """
    t = pd.DataFrame(list(rows))
    base = t[t.variant == "none"].set_index(["draw", "seed"])["output_loss"]
    if base.empty:
        raise CalibrationError("levers: the variants must include 'none'; allowed: the variants of VARIANTS")
    t["damage_avoided"] = base.reindex(pd.MultiIndex.from_frame(t[["draw", "seed"]])).to_numpy() - t["output_loss"]
    ranked = t[~t.variant.isin(["none", "historical_mix"])].copy()
    ranked["rank"] = ranked.groupby(["draw", "seed"])["damage_avoided"].rank(ascending=False, method="min")
    return t.merge(ranked[["variant", "draw", "seed", "rank"]], on=["variant", "draw", "seed"], how="left")


def lever_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per lever: damage avoided (median, 5-95 % band, US$ and share of Japan's no-lever loss), the share
    of draws where it ranks first, and its median rank; sorted by the median damage avoided.
    """
    t = table.copy()
    base = t[t.variant == "none"].set_index(["draw", "seed"])["output_loss"]
    t["avoided_share"] = t["damage_avoided"] / base.reindex(pd.MultiIndex.from_frame(t[["draw", "seed"]])).to_numpy()
    g = t[t.variant != "none"].groupby("variant")
    out = pd.DataFrame(
        {
            "avoided_q05": g["damage_avoided"].quantile(0.05),
            "avoided_q50": g["damage_avoided"].quantile(0.5),
            "avoided_q95": g["damage_avoided"].quantile(0.95),
            "avoided_share_q50": g["avoided_share"].quantile(0.5),
            "share_ranked_first": g["rank"].apply(lambda r: float((r == 1).mean()) if r.notna().any() else np.nan),
            "median_rank": g["rank"].median(),
            "n": g.size(),
        }
    )
    return out.sort_values("avoided_q50", ascending=False).reset_index()


# --------------------------------------------------------------------------------------------------
# Calibration table and report
# --------------------------------------------------------------------------------------------------
def _paths_of(draw_rows: pd.DataFrame) -> dict:
    """The paths dict of one predictive draw from its tidy rows."""
    d = draw_rows[draw_rows.date.notna()]
    dates = np.asarray(sorted(d.date.unique()), dtype="datetime64[M]")
    out: dict = {"dates": dates}
    for (var, country, good), grp in d.groupby(["variable", "country", "good"]):
        out[(var, country, good)] = grp.sort_values("date")["value"].to_numpy(float)
    return out


def calibration_table(predictive: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Every observation beside the model's posterior predictive median and 5-95 % band, and whether the
    observation falls in the band.
    """
    draws = predictive[(predictive.kind == "draw") & (predictive.case == IN_SAMPLE)]
    sims = []
    for _, rows in draws.groupby(["draw", "seed"]):
        sims.append(simulated_statistics(_paths_of(rows), obs))
    S = np.vstack(sims) if sims else np.full((1, len(obs)), np.nan)
    t = obs[["group", "element", "date", "period", "observed"]].copy()
    t["q05"], t["q50"], t["q95"] = (np.nanquantile(S, q, axis=0) for q in (0.05, 0.5, 0.95))
    t["in_band"] = (t.observed >= t.q05) & (t.observed <= t.q95)
    return t


def _md_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float | np.floating):
                cells.append("" if not np.isfinite(v) else format(float(v), floatfmt))
            elif isinstance(v, pd.Timestamp):
                cells.append(f"{v:%Y-%m}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Scalar outcomes reported per out-of-sample case (those the case has).
CASE_METRICS = ("peak_export_price_ratio.", "output_loss_share.", "coercer_import_share_end.", "months_above_2x.")


def write_report(out_dir, *, history: pd.DataFrame | None = None) -> str:
    """Rebuild ``report.md`` in ``out_dir`` from ``posterior.parquet``, ``predictive.parquet``,
    ``levers.parquet`` and ``provenance.json`` alone (and the in-sample history file); returns its text.
    """
    from pathlib import Path

    from sim.reporting.files import atomic_write_text

    out = Path(out_dir)
    posterior = pd.read_parquet(out / "posterior.parquet")
    check_weights(posterior)
    predictive = pd.read_parquet(out / "predictive.parquet")
    prov = json.loads((out / "provenance.json").read_text()) if (out / "provenance.json").exists() else {}
    names = [c for c in posterior.columns if c != "weight"]
    params = [p for p in PARAMETERS if p.name in names]
    ident, corr = identifiability(posterior, params)
    ess = 1.0 / float(np.sum(posterior["weight"].to_numpy(float) ** 2))
    budget = prov.get("budget", {})
    lines = [
        "# Calibration and validation report",
        "",
        f"Generated from the files in this folder (`{out.name}`); rebuild with "
        "`python experiments/validate.py --report-only DIR`. Method: docs/calibration.md.",
        "",
        "## Method",
        "",
        "ABC-SMC (pyabc "
        + str(prov.get("versions", {}).get("pyabc", "?"))
        + ") on the in-sample case `rare_earth_2010` only, uniform priors, median-quantile epsilon schedule, "
        "weighted distance of unit-free statistics (log ratios of export, domestic and export-volume paths; "
        "China's share of Japan's imports) against `sim/world/data/rare_earth_2010_history.csv`. "
        f"Budget: {json.dumps(budget)}. Seed {prov.get('seed', '?')}. "
        f"Posterior: {len(posterior)} particles, effective sample size {ess:.0f}.",
        "",
        *(
            [
                f"**Caution:** an effective sample size of {ess:.0f} (< 30) means a few particles carry the "
                "weight: shrinkage, correlations and bands from this budget are indicative only (run the "
                "default budget, `make validate`).",
                "",
            ]
            if ess < 30
            else []
        ),
        "## Posterior",
        "",
        _md_table(ident[["parameter", "default", "prior_low", "prior_high", "mean", "sd", "q05", "q50", "q95"]]),
        "",
        "## Identifiability",
        "",
        "Shrinkage = 1 - posterior sd / prior sd (uniform prior). Pinned down >= 0.5, weakly identified 0.2-0.5, "
        "not identified < 0.2.",
        "",
        _md_table(ident[["parameter", "prior_sd", "sd", "shrinkage", "verdict"]]),
        "",
        "Weighted posterior correlations:",
        "",
        _md_table(corr.reset_index().rename(columns={"index": "parameter"}), ".2f"),
        "",
    ]
    if history is not None:
        rare = predictive[predictive.case == IN_SAMPLE]
        if len(rare):
            start, end = rare.date.dropna().min(), rare.date.dropna().max()
            obs = observations(history, f"{start:%Y-%m}", f"{end:%Y-%m}")
            table = calibration_table(predictive, obs)
            lines += [
                "## Calibration table (rare_earth_2010, posterior predictive)",
                "",
                f"{int(table.in_band.sum())} of {len(table)} observations inside the 5-95 % band.",
                "",
                _md_table(table),
                "",
            ]
    scal = predictive[(predictive.kind == "draw") & predictive.date.isna()]
    for case in [c for c in SHIPPED_CASES if c in set(predictive.case)]:
        title = "In-sample case" if case == IN_SAMPLE else "Out-of-sample case"
        sub = scal[(scal.case == case) & scal.variable.str.startswith(CASE_METRICS)]
        lines += [f"## {title}: {case}", ""]
        if case != IN_SAMPLE:
            lines += [
                "Built from the case's inputs alone with the posterior as it comes (no case-specific tuning).",
                "",
            ]
        if sub.empty:
            lines += ["No scalar outcomes.", ""]
            continue
        g = sub.groupby("variable")["value"]
        tab = pd.DataFrame({"q05": g.quantile(0.05), "q50": g.quantile(0.5), "q95": g.quantile(0.95)}).reset_index()
        lines += [f"Bands over {sub.groupby(['draw', 'seed']).ngroups} runs (posterior draws x seeds).", ""]
        lines += [_md_table(tab), ""]
        lines += [f"Fan chart: `figures/fan_{case}.png`.", ""]
    if (out / "levers.parquet").exists():
        levers = pd.read_parquet(out / "levers.parquet")
        summ = lever_summary(levers)
        lines += [
            "## Lever comparison over posterior draws (rare_earth_2010, Japan)",
            "",
            "Damage avoided = Japan's output loss without levers minus with the lever, same draw and seed (US$); "
            "rank among the single levers (the historical mix excluded).",
            "",
            _md_table(summ),
            "",
        ]
    lines += ["## Provenance", "", "```json", json.dumps(prov, indent=1, default=str), "```", ""]
    text = "\n".join(lines)
    atomic_write_text(out / "report.md", text)
    return text
