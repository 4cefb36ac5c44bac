"""The model's compiled per-row kernels (``sim.model.kernels``) reproduce the NumPy formulation they
replaced: outputs of a run must not depend on whether a step's loop is compiled.

The kernels follow NumPy's order of operations, so on the machines we have seen they agree bit for
bit; the tests nevertheless compare to a few units in the last place (``close``), because bitwise
equality between LLVM-compiled loops and NumPy's own (possibly SIMD) loops is not something the code
can promise on every CPU (where a product feeds a sum, the compiler may fuse the two into one
multiply-add that rounds once instead of twice, depending on the CPU it finds). Bitwise determinism is tested where it is real: the same code path with the
same seed (``tests/test_model.py``, ``tests/test_cli.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.model import kernels

_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
#: Relative tolerance: a few units in the last place of float64.
ULPS = 8 * np.finfo(np.float64).eps


def close(got, want, scale=None):
    """``got`` equals ``want`` to a few ulps of ``scale`` (default ``|want|``; pass the sum of absolute
    terms for sums with cancellation). NaNs must be in the same places."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = np.abs(want) if scale is None else np.asarray(scale, dtype=float)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = np.isnan(want) | (np.abs(got - want) <= ULPS * scale + 1e-300)
    assert ok.all(), f"differ beyond {ULPS:.1e} relative: got {got[~ok]}, want {want[~ok]}"


@given(arrays(np.float64, st.integers(0, 700), elements=_finite), st.integers(0, 50))
def test_pairwise_sum_matches_numpy_sum(values, lo):
    lo = min(lo, values.size)
    close(kernels.pairwise_sum(values, lo, values.size - lo), np.sum(values[lo:]), np.sum(np.abs(values[lo:])))


@given(st.integers(0, 700), st.integers(0, 2**32 - 1), st.sampled_from(["normal", "negative zeros", "zeros"]))
def test_pairwise_sum_is_numpys_sum_bit_for_bit(n, seed, kind):
    """NumPy's order and its start from 0.0: the same bits as np.sum, negative zeros included (an
    all-negative-zero sum is 0.0 from 8 terms on, -0.0 below)."""
    rng = np.random.default_rng(seed)
    values = {"normal": rng.normal(0.0, 1e3, n), "negative zeros": np.full(n, -0.0), "zeros": np.zeros(n)}[kind]
    lo = int(rng.integers(0, n + 1))
    got, want = kernels.pairwise_sum(values, lo, n - lo), np.sum(values[lo:])
    assert np.float64(got).tobytes() == np.float64(want).tobytes(), (got, want)


@given(st.integers(1, 40), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_group_sums_match_bincount(n_groups, n, seed):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n)
    a, b = rng.standard_normal(n) * 1e3, rng.exponential(size=n)
    out = kernels.group_sums(group, (a, b), n_groups)
    close(out[0], np.bincount(group, weights=a, minlength=n_groups), np.bincount(group, np.abs(a), n_groups))
    close(out[1], np.bincount(group, weights=b, minlength=n_groups))


@given(st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_produce_rows_matches_numpy(n_firms, seed):
    rng = np.random.default_rng(seed)
    rows_per_firm = rng.integers(1, 4, n_firms)
    row_firm = rng.permutation(np.repeat(np.arange(n_firms), rows_per_firm))
    n_rows = row_firm.size
    price_factor = rng.uniform(0.2, 1.5, n_rows)
    price_factor[rng.random(n_rows) < 0.1] = np.nan
    baseline = rng.uniform(0.0, 10.0, n_firms)
    inventory = rng.uniform(0.0, 2.0, n_rows)
    delivered = rng.uniform(0.0, 2.0, n_rows)
    req = np.where(rng.random(n_rows) < 0.2, 0.0, rng.uniform(0.01, 0.5, n_rows))
    order = np.argsort(row_firm, kind="stable")
    start = np.searchsorted(row_firm[order], np.arange(n_firms))

    planned, output, use, left, shortage = kernels.produce_rows(
        price_factor, baseline, inventory, delivered, req, row_firm, order, start
    )

    # The NumPy formulation the model used before (CoercionModel._produce).
    want_planned = baseline * np.minimum(np.minimum.reduceat(price_factor[order], start), 1.0)
    available = inventory + delivered
    with np.errstate(divide="ignore", invalid="ignore"):
        possible = np.where(req > 0, available / req, np.inf)
    want_output = np.minimum(want_planned, np.minimum.reduceat(possible[order], start))
    want_use = req * want_output[row_firm]
    close(planned, want_planned)
    close(output, want_output)
    close(use, want_use)
    close(left, np.maximum(available - want_use, 0.0), available)
    close(shortage, np.maximum(req * want_planned[row_firm] - available, 0.0), available + req * want_planned[row_firm])


@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_international_totals_and_spread_match_numpy(n_goods, n_countries, seed):
    rng = np.random.default_rng(seed)
    n_edges = 40
    good = rng.integers(0, n_goods, n_edges)
    origin = rng.integers(0, n_countries, n_edges)
    dest = rng.integers(0, n_countries, n_edges)
    flow = rng.exponential(size=n_edges)
    price = np.where(rng.random(n_edges) < 0.2, np.nan, rng.uniform(0.1, 5.0, n_edges))
    qty, val, imports = kernels.international_totals(good, origin, dest, flow, price, n_goods, n_countries)
    intl = origin != dest
    close(qty, np.bincount(good[intl], weights=flow[intl], minlength=n_goods))
    close(val, np.bincount(good[intl], weights=(flow * np.nan_to_num(price))[intl], minlength=n_goods))
    want = np.bincount(good[intl] * n_countries + dest[intl], weights=flow[intl], minlength=n_goods * n_countries)
    close(imports.ravel(), want)

    # Spreading a per-(good, country) quantity over rows by need (CoercionModel._spread).
    n_rows = 25
    row_gc = rng.integers(0, n_goods * n_countries, n_rows)
    need = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    by_gc = rng.exponential(size=n_goods * n_countries)
    total = np.bincount(row_gc, weights=need, minlength=by_gc.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[row_gc] > 0, need / np.where(total[row_gc] > 0, total[row_gc], 1.0), 0.0)
    close(kernels.spread_by_need(by_gc, row_gc, need), by_gc[row_gc] * share)


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(0, 6), st.integers(0, 6)),
        elements=st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_nan_to_num_is_numpys(values):
    want = np.nan_to_num(values)
    for given_values in (values, values.T, values[:, ::2]):  # contiguous or not
        got = kernels.nan_to_num(given_values)
        assert got.shape == given_values.shape
        assert np.array_equal(got, np.nan_to_num(given_values))
    assert np.array_equal(kernels.nan_to_num(values), want)
    assert np.array_equal(np.isnan(values), np.isnan(values))  # the input is left as it was


_price = st.one_of(st.floats(0.0, 3000.0), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 5), st.integers(0, 40))
def test_mark_price_cap_is_the_numpy_rule(seed, n_goods, n_countries, n_edges):
    """The recorder's at-the-cap marks (a destination that bought from an origin priced at or above the
    cap level, NaN counting as 0) equal the NumPy formulation the kernel replaced."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(100.0, 2000.0, n_goods)
    level[rng.random(n_goods) < 0.2] = np.inf  # a good without a cap (the schema allows it)
    special = np.array([np.nan, np.inf, -np.inf, 0.0])

    def prices():
        p = rng.uniform(0.0, 2500.0, (n_goods, n_countries))
        p[rng.random(p.shape) < 0.2] = rng.choice(special)
        at = rng.random(p.shape) < 0.2
        p[at] = np.broadcast_to(level[:, None], p.shape)[at]  # exactly at a (finite) level counts
        return p

    dom, exp = prices(), prices()
    good = rng.integers(0, n_goods, n_edges)
    origin = rng.integers(0, n_countries, n_edges)
    dest = rng.integers(0, n_countries, n_edges)
    flow = np.where(rng.random(n_edges) < 0.3, 0.0, rng.exponential(size=n_edges))
    got = np.zeros((n_goods, n_countries), dtype=bool)
    kernels.mark_price_cap(got, dom, exp, level, good, origin, dest, flow)
    want = np.zeros_like(got)
    capped = (np.nan_to_num(dom) >= level[:, None]) | (np.nan_to_num(exp) >= level[:, None])
    on = flow > 0
    hit = capped[good[on], origin[on]]
    want[good[on][hit], dest[on][hit]] = True
    assert np.array_equal(got, want)


@given(st.integers(0, 2**32 - 1), st.integers(0, 60))
def test_adapt_rows_is_the_numpy_formulation(seed, n_rows):
    """Rows' scarcity, expected price index and requirement multiplier (CoercionModel._adapt) as the
    NumPy expressions the kernel replaced, NaN price indices (rows that got nothing) included."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 2.0, n_rows)
    pidx = base * rng.uniform(0.5, 5.0, n_rows)
    pidx[rng.random(n_rows) < 0.2] = np.nan
    demand = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    rationed = demand * rng.uniform(0.0, 1.0, n_rows)
    scarcity, expectation = rng.uniform(0.0, 2.0, n_rows), base * rng.uniform(0.8, 3.0, n_rows)
    mult = rng.uniform(0.2, 1.0, n_rows)
    a, b, rate, floor = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5), rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.6)

    rise = np.where(np.isfinite(pidx), np.maximum(np.log(pidx / base), 0.0), 1.0)
    share = np.zeros(n_rows)
    np.divide(rationed, demand, out=share, where=demand > 0)
    want_scarcity = scarcity + a * ((rise + share) - scarcity)
    want_expectation = expectation + b * (np.where(np.isfinite(pidx), pidx, expectation) - expectation)
    excess = np.maximum(np.log(want_expectation / base), 0.0)
    want_mult = np.maximum(floor, mult * (1.0 - rate * excess))

    kernels.adapt_rows(pidx, base, rationed, demand, scarcity, a, expectation, b, mult, rate, floor)
    close(scarcity, want_scarcity, np.abs(want_scarcity) + 1.0)
    close(expectation, want_expectation)
    close(mult, want_mult)


@given(st.integers(0, 2**32 - 1), st.integers(0, 12), st.integers(0, 40))
def test_advance_projects_is_the_numpy_formulation(seed, n_producers, step):
    """Capacity projects' starts, signal months, capacity and investment (CoercionModel._adapt) as the
    NumPy expressions the kernel replaced."""
    rng = np.random.default_rng(seed)
    never = np.iinfo(np.int64).max
    P, G, C = n_producers, 2, 3
    is_project = rng.random(P) < 0.7
    start = np.where(is_project & (rng.random(P) < 0.3), rng.integers(0, 30, P), never)
    start = np.where(is_project, start, -1).astype(np.int64)
    signal = np.where(is_project, rng.integers(0, 4, P), 0).astype(np.int64)
    good = rng.integers(0, G, P)
    gc = (good * C + rng.integers(0, C, P)).astype(np.int64)
    expected = rng.uniform(50.0, 150.0, G)
    hurdle = np.where(is_project, rng.uniform(50.0, 150.0, P), 0.0)
    earliest = rng.integers(-5, 30, P).astype(np.int64)
    committed = np.where(rng.random(P) < 0.3, rng.integers(0, 40, P), 10**12).astype(np.int64)
    build_lag = rng.integers(0, 12, P).astype(np.int64)
    lag = np.maximum(build_lag, 1)
    ramp = rng.integers(0, 6, P).astype(np.int64)
    nameplate = rng.uniform(1.0, 100.0, P)
    capacity = np.where(is_project, 0.0, nameplate)
    spend = rng.uniform(0.0, 10.0, P)
    decision = 3

    proj = is_project & (start == never)
    above = expected[good] >= hurdle
    want_signal = np.where(proj & above & (step >= earliest), signal + 1, 0)
    want_start = np.where(proj & (want_signal >= decision), step, start)
    want_start = np.where(proj & (committed <= step), np.minimum(committed, step), want_start)
    started = is_project & (want_start != never)
    want_capacity = capacity.copy()
    kernels.project_capacity(want_capacity, started, want_start, build_lag, nameplate, ramp, step + 1)
    with np.errstate(over="ignore"):
        building = started & (step >= want_start) & (step < want_start + lag)
    want_investment = np.bincount(gc, np.where(building, spend, 0.0), minlength=G * C)

    investment = np.full(G * C, np.nan)
    kernels.advance_projects(
        step, never, is_project, start, signal, expected, good, hurdle, earliest, committed, decision,
        capacity, build_lag, nameplate, ramp, lag, spend, gc, investment,
    )  # fmt: skip
    assert np.array_equal(signal, want_signal)
    assert np.array_equal(start, want_start)
    close(capacity, want_capacity)
    close(investment, want_investment)


@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 20))
def test_plan_rows_is_the_numpy_formulation(seed, n_rows, k_max):
    """Planned purchases (CoercionModel._plan): need plus a share of the gap to a precautionary target
    cover, as the NumPy expressions the kernel replaced."""
    rng = np.random.default_rng(seed)
    need = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    inventory = rng.exponential(3.0, n_rows)
    weights = rng.dirichlet(np.ones(k_max), n_rows) if n_rows else np.zeros((0, k_max))
    risk = rng.uniform(0.0, 1.0, (n_rows, k_max))
    scarcity = rng.uniform(0.0, 2.0, n_rows)
    months = rng.uniform(0.0, 6.0, n_rows)
    extra = np.where(rng.random(n_rows) < 0.5, 0.0, rng.uniform(0.0, 2.0, n_rows))
    precaution, max_multiple, adjustment = rng.uniform(0.0, 4.0), rng.uniform(1.0, 4.0), rng.uniform(1.0, 12.0)

    alarm = np.maximum(scarcity, np.sum(weights * risk, axis=1))
    cover = months * np.minimum(max_multiple, 1.0 + precaution * alarm) + extra
    want = np.maximum(0.0, need + (cover * need - inventory) / adjustment)
    got = kernels.plan_rows(
        need, inventory, weights, risk, scarcity, months, extra, precaution, max_multiple, adjustment
    )
    close(got, want, np.abs(need) + np.abs(cover * need) + np.abs(inventory) + 1e-300)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 5), st.integers(0, 30), st.integers(0, 8))
def test_record_month_is_the_numpy_formulation(seed, n_goods, n_countries, n_rows, n_producers):
    """The recorder's (good, country) variables of a month as the bincounts, ratios and masks they
    replaced: sums in index order, NaN price paid where nothing was delivered, NaN requirement index
    where nothing was needed at baseline, NaN quota rent where a country has no supply."""
    rng = np.random.default_rng(seed)
    G, C, T, t = n_goods, n_countries, 3, 1
    gc = rng.integers(0, G * C, n_rows)
    va = rng.exponential(size=n_rows)
    rows = [np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows)) for _ in range(7)]
    base_need = np.where(rng.random(G * C) < 0.3, 0.0, rng.exponential(size=G * C))
    pgc = rng.integers(0, G * C, n_producers)
    prods = [rng.exponential(size=n_producers) for _ in range(3)]
    pd = np.where(rng.random((G, C)) < 0.3, np.nan, rng.uniform(1.0, 9.0, (G, C)))
    pe, rent = pd * 1.1, rng.uniform(0.0, 1.0, (G, C))
    outs = [np.full((T, G, C), -7.0) for _ in range(13)]
    kernels.record_month(t, gc, va, *rows, base_need, pgc, *prods, pd, pe, rent, *outs)

    delivered, spend, demand, shortage, rationed, inventory, requirement = rows
    sums = [np.bincount(gc, v, G * C).reshape(G, C) for v in (delivered, spend, demand, shortage, rationed, inventory)]
    need = np.bincount(gc, requirement * va, G * C).reshape(G, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        paid = np.where(sums[0] > 0, sums[1] / sums[0], np.nan)
        index = np.where(base_need.reshape(G, C) > 0, need / base_need.reshape(G, C), np.nan)
    made = [np.bincount(pgc, v, G * C).reshape(G, C) for v in prods]
    want = [pd, pe, np.where(np.isfinite(pd), rent, np.nan), paid, sums[2], sums[0], *sums[3:6], *made, index]
    for got, expected in zip(outs, want, strict=True):
        close(got[t], expected, np.abs(np.nan_to_num(expected)) + 1e-12)
        assert (got[[0, 2]] == -7.0).all()  # other months untouched


def _prices(rng, shape, infinite=False):
    """Prices with NaN (no supply) in some places and, with ``infinite``, rarely an infinity."""
    p = np.where(rng.random(shape) < 0.3, np.nan, rng.uniform(0.5, 9.0, shape))
    if infinite:
        p[rng.random(shape) < 0.1] = np.inf
    return p


@given(st.integers(0, 2**32 - 1), st.integers(1, 40))  # eight or more goods: NumPy sums pairwise
def test_coercer_month_is_the_numpy_formulation(seed, n_goods):
    """The coercer's revenue and extra spending (Recorder.record) as the nansums they replaced."""
    rng = np.random.default_rng(seed)
    exports = np.where(rng.random(n_goods) < 0.3, 0.0, rng.exponential(size=n_goods))
    price_export, paid, base = _prices(rng, n_goods), _prices(rng, n_goods), np.nan_to_num(_prices(rng, n_goods))
    delivered = rng.exponential(size=n_goods)
    revenue, extra = kernels.coercer_month(exports, price_export, paid, base, delivered)
    want_revenue = np.nansum(exports * np.nan_to_num(price_export))
    want_extra = np.nansum((np.nan_to_num(paid) - base) * delivered)
    close(revenue, want_revenue, np.nansum(np.abs(exports * np.nan_to_num(price_export))))
    close(extra, want_extra, np.nansum(np.abs((np.nan_to_num(paid) - base) * delivered)))


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 5), st.integers(0, 12), st.integers(0, 20))
def test_record_chain_month_is_the_numpy_formulation(seed, n_goods, n_countries, n_producers, n_rows):
    """The value-chain variables of a month (Recorder.record) as the bincounts and masks they replaced."""
    rng = np.random.default_rng(seed)
    G, C, T, t = n_goods, n_countries, 3, 2
    pgc = rng.integers(0, G * C, n_producers)
    usable, lost = rng.exponential(size=n_producers), rng.exponential(size=n_producers)
    chain, inputs = rng.random(G) < 0.5, rng.random(G) < 0.5
    gc_of_row = rng.integers(0, G * C, n_rows)
    input_rows = np.flatnonzero(rng.random(n_rows) < 0.6)
    use, inventory = rng.exponential(size=n_rows), rng.exponential(size=n_rows)
    outs = [np.full((T, G, C), -7.0) for _ in range(4)]
    kernels.record_chain_month(t, pgc, usable, lost, chain, inputs, input_rows, gc_of_row, use, inventory, *outs)

    gc = gc_of_row[input_rows]
    want = [
        np.where(chain[:, None], np.bincount(pgc, usable, G * C).reshape(G, C), np.nan),
        np.where(chain[:, None], np.bincount(pgc, lost, G * C).reshape(G, C), np.nan),
        np.where(inputs[:, None], np.bincount(gc, use[input_rows], G * C).reshape(G, C), np.nan),
        np.where(inputs[:, None], np.bincount(gc, inventory[input_rows], G * C).reshape(G, C), np.nan),
    ]
    for got, expected in zip(outs, want, strict=True):
        close(got[t], expected)
        assert (got[:t] == -7.0).all()


@given(st.integers(0, 2**32 - 1), st.integers(0, 12), st.integers(1, 4), st.integers(1, 5))
def test_record_domestic_costs_is_the_numpy_formulation(seed, n_measures, n_kinds, n_countries):
    """The domestic instruments' costs by imposer and by kind (Recorder.record) as the bincounts they
    replaced, written into month t of the recorded arrays and nowhere else."""
    rng = np.random.default_rng(seed)
    T, t = 5, int(rng.integers(0, 5))
    imposer, kind_of = rng.integers(0, n_countries, n_measures), rng.integers(0, n_kinds, n_measures)
    at = np.flatnonzero(rng.random(n_measures) < 0.6)
    cost = rng.standard_normal((n_measures, T)) * 1e6
    total = np.full((T, n_countries), -7.0)
    by_kind = np.full((n_kinds, T, n_countries), -7.0)
    kernels.record_domestic_costs(t, cost, at, imposer, kind_of, total, by_kind)
    costs = cost[at, t]
    scale = np.bincount(imposer[at], np.abs(costs), n_countries)
    close(total[t], np.bincount(imposer[at], costs, minlength=n_countries), scale)
    want = np.bincount(kind_of[at] * n_countries + imposer[at], costs, minlength=n_kinds * n_countries)
    close(by_kind[:, t], want.reshape(n_kinds, n_countries), np.broadcast_to(scale, (n_kinds, n_countries)))
    assert (np.delete(total, t, axis=0) == -7.0).all() and (np.delete(by_kind, t, axis=1) == -7.0).all()


@given(st.integers(0, 2**32 - 1), st.integers(0, 15))
def test_domestic_supply_is_the_numpy_formulation(seed, n_producers):
    """The supply curves under capacity shares, output caps and taxes (CoercionModel._set_supply_terms)
    as the NumPy expressions they replaced, with and without a tax."""
    rng = np.random.default_rng(seed)
    P = n_producers
    capacity = np.where(rng.random(P) < 0.2, 0.0, rng.exponential(10.0, P))
    share = np.where(rng.random(P) < 0.5, 1.0, rng.uniform(0.0, 1.0, P))
    output_cap = np.where(rng.random(P) < 0.4, np.inf, rng.uniform(0.0, 12.0, P))
    output_cap[rng.random(P) < 0.1] = 0.0
    unit_cost = rng.uniform(0.0, 5.0, P)
    full0 = unit_cost + rng.uniform(0.1, 5.0, P)
    elasticity = rng.uniform(0.2, 3.0, P)
    taxed = rng.random() < 0.5
    per_unit = np.where(taxed & (rng.random(P) < 0.5), rng.uniform(0.0, 2.0, P), 0.0)
    rate = np.where(taxed & (rng.random(P) < 0.5), rng.uniform(0.0, 0.5, P), 0.0)

    cap = capacity * share
    full = full0.copy()
    cut = np.isfinite(output_cap) & (output_cap < cap)
    if cut.any():
        ratio = np.where(cap[cut] > 0, output_cap[cut] / np.where(cap[cut] > 0, cap[cut], 1.0), 0.0)
        c0 = unit_cost[cut]
        with np.errstate(divide="ignore"):
            full[cut] = c0 + (full[cut] - c0) * ratio ** (1.0 / elasticity[cut])
        cap[cut] = np.where(ratio > 0, output_cap[cut], 0.0)
        full[cut] = np.where(ratio > 0, full[cut], full0[cut])
    if per_unit.any() or rate.any():
        cost, taxed_full = (unit_cost + per_unit) / (1.0 - rate), (full + per_unit) / (1.0 - rate)
    else:
        cost, taxed_full = unit_cost, full
    got = kernels.domestic_supply(capacity, share, output_cap, unit_cost, full0, elasticity, per_unit, rate)
    for g, w in zip(got, (cap, full, cost, taxed_full), strict=True):
        close(g, w)


@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 4))
def test_withheld_costs_are_the_numpy_formulation(seed, n_producers, n_measures):
    """Each capacity measure's lost margin (CoercionModel._book_domestic) as the supply curves,
    bincount and split it replaced."""
    from sim.coercion.measures import supply_curve

    rng = np.random.default_rng(seed)
    P = n_producers
    price = np.where(rng.random(P) < 0.2, 0.0, rng.uniform(0.0, 12.0, P))
    capacity = np.where(rng.random(P) < 0.1, 0.0, rng.exponential(10.0, P))
    cap_now = capacity * rng.uniform(0.0, 1.0, P)
    unit_cost = rng.uniform(0.0, 5.0, P)
    full0 = unit_cost + rng.uniform(0.1, 5.0, P)
    full_now = unit_cost + (full0 - unit_cost) * rng.uniform(0.2, 1.0, P)
    elasticity = rng.uniform(0.2, 3.0, P)
    producers = [rng.choice(P, rng.integers(1, P + 1), replace=False) for _ in range(n_measures)]
    withheld = [np.where(rng.random(p.size) < 0.2, 0.0, rng.exponential(size=p.size)) for p in producers]

    nominal = supply_curve(price, capacity, unit_cost, full0, elasticity)
    after = supply_curve(price, cap_now, unit_cost, full_now, elasticity)
    lost_margin = np.maximum(nominal - after, 0.0) * np.maximum(price - unit_cost, 0.0)
    total = np.bincount(np.concatenate(producers), np.concatenate(withheld), minlength=P)
    per_unit = np.zeros(P)
    np.divide(lost_margin, total, out=per_unit, where=total > 0)
    want = [float((per_unit[p] * h).sum()) for p, h in zip(producers, withheld, strict=True)]
    got = kernels.withheld_costs(
        price, capacity, cap_now, unit_cost, full0, full_now, elasticity,
        np.concatenate(producers), np.concatenate(withheld), np.cumsum([0] + [p.size for p in producers]),
    )  # fmt: skip
    close(got, want)


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_reserve_signals_are_the_numpy_formulation(seed, n_goods):
    """A reserve's release signals (read by kernels.reserve_month) as the NumPy expressions they replaced."""
    rng = np.random.default_rng(seed)
    shortage, rationed = _prices(rng, n_goods), _prices(rng, n_goods)
    p0, p1 = _prices(rng, n_goods, infinite=True), _prices(rng, n_goods, infinite=True)
    p0[rng.random(n_goods) < 0.2] = 0.0
    gap, ratio = kernels.reserve_signals(shortage, rationed, p0, p1)
    want_ratio = np.ones(n_goods)
    np.divide(p1, p0, out=want_ratio, where=np.isfinite(p0) & np.isfinite(p1) & (p0 > 0))
    close(gap, np.nan_to_num(shortage) + np.nan_to_num(rationed))
    close(ratio, want_ratio)


def _reserve_month_reference(
    goods,
    stock,
    release,
    delivery,
    order,
    revenue,
    c,
    base_use,
    target,
    mask,
    ref,
    shortage,
    rationed,
    first,
    last,
    signals,
    rule,
    rpr,
    mrr,
    rb,
    rpr2,
    rr,
):
    """Stockpile.act's release and refill loop as it was written in Python (the kernel replaced it)."""
    if signals:
        gap = np.nan_to_num(shortage) + np.nan_to_num(rationed)
        ratio = np.ones(stock.size)
        np.divide(last, first, out=ratio, where=np.isfinite(first) & np.isfinite(last) & (first > 0))
    else:
        gap, ratio = np.zeros(stock.size), np.ones(stock.size)
    acted = False
    for g in goods.tolist():
        have, use = stock[g], base_use[g]
        short = gap[g] > 1e-9 * max(use, 1e-300)
        pricey = ratio[g] >= rpr
        trigger = short if rule == "shortage" else pricey if rule == "price" else (short or pricey)
        goal = target[g]
        if trigger and have > 0:
            need = gap[g] if (rule == "shortage" or (rule == "either" and short)) else use
            q = min(have, mrr * goal, need)
            if q > 0:
                acted = True
                stock[g] -= q
                release[g] += q
                delivery[g] += q
                price = last[g] if signals else ref[g]
                revenue[c] += q * float(np.nan_to_num(price, nan=ref[g]))
        elif have < rb * goal and ratio[g] <= rpr2:
            buy = min(rr * goal, goal - have)
            if buy > 0:
                acted = True
                order[g] += buy
    return acted, float((stock * mask * ref).sum())


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.sampled_from(["shortage", "price", "either"]), st.booleans())
def test_reserve_month_is_the_python_loop_it_replaced(seed, n_goods, rule, signals):
    """A reserve's month (Stockpile.act): releases on each rule, refills, revenue at last month's price
    (NaN and infinite prices included) and the value held, as the Python loop computed them."""
    rng = np.random.default_rng(seed)
    G, C, c = n_goods, 3, 1
    base_use = np.where(rng.random(G) < 0.2, 0.0, rng.exponential(10.0, G))
    mask = (base_use > 0) & (rng.random(G) < 0.9)
    target = np.where(mask, rng.uniform(1.0, 6.0) * base_use, 0.0)
    stock = np.where(rng.random(G) < 0.2, 0.0, target * rng.uniform(0.0, 1.2, G))
    # Goods short (a gap), goods only pricey (no gap, a price ratio above the release ratio), both, neither.
    shortage = np.where(rng.random(G) < 0.5, 0.0, rng.exponential(2.0, G))
    rationed = np.where(rng.random(G) < 0.5, 0.0, _prices(rng, G))
    first, last = _prices(rng, G, infinite=True), _prices(rng, G, infinite=True)
    last = np.where(rng.random(G) < 0.4, first * rng.uniform(0.5, 4.0, G), last)
    ref = rng.uniform(1.0, 9.0, G)
    goods = np.flatnonzero(mask).astype(np.int64)
    numbers = (
        rng.uniform(1.0, 3.0),
        rng.uniform(0.05, 0.5),
        rng.uniform(0.3, 1.0),
        rng.uniform(0.8, 2.0),
        rng.uniform(0.01, 0.2),
    )
    codes = {
        "shortage": kernels.RESERVE_ON_SHORTAGE,
        "price": kernels.RESERVE_ON_PRICE,
        "either": kernels.RESERVE_ON_EITHER,
    }
    # The model passes columns of its [G, C] arrays (strided views): so does this test.
    columns = np.zeros((4, G, C))
    columns[0, :, c] = stock
    got = [columns[k, :, c] for k in range(4)] + [np.full(C, 0.5)]
    want = [np.array(stock), np.zeros(G), np.zeros(G), np.zeros(G), np.full(C, 0.5)]
    shared = (base_use, target, mask, ref, shortage, rationed, first, last, signals)
    acted, value = kernels.reserve_month(goods, *got[:4], got[4], c, *shared, codes[rule], *numbers)
    with np.errstate(over="ignore"):  # an infinite price paid sells at the largest float: inf revenue
        want_acted, want_value = _reserve_month_reference(goods, *want[:4], want[4], c, *shared, rule, *numbers)
    assert acted == want_acted
    close(value, want_value)
    for a, b in zip(got, want, strict=True):  # stock, release, delivery, order, revenue (may be infinite)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 10))
def test_usable_capacity_is_the_numpy_formulation(seed, n_goods, n_countries, n_producers):
    """The capacity the market sees in a value chain (ValueChains.usable_capacity) as the reduceat,
    bincount and scaling it replaced: producers with inputs limited by their scarcest input stock,
    by-product producers by the host's output times the recovery rate, negligible capacity as none."""
    from sim.model.chains import NEGLIGIBLE_CAPACITY_SHARE, usable_capacity_of

    rng = np.random.default_rng(seed)
    G, C, P = n_goods, n_countries, n_producers
    capacity = np.where(rng.random(P) < 0.1, 0.0, rng.exponential(10.0, P))
    # Producers with inputs: each has 1-3 input rows, grouped by producer.
    with_inputs = np.flatnonzero(rng.random(P) < 0.5)
    rows_per = rng.integers(1, 4, with_inputs.size)
    rows_by_producer = np.arange(rows_per.sum(), dtype=np.int64)
    group_start = np.r_[0, np.cumsum(rows_per)[:-1]].astype(np.int64) if with_inputs.size else np.zeros(0, np.int64)
    n_rows = rows_by_producer.size
    inventory = rng.exponential(5.0, n_rows)
    inventory[rng.random(n_rows) < 0.2] = 1e-14  # leaves a negligible capacity, which counts as none
    requirement = np.where(rng.random(n_rows) < 0.2, 0.0, rng.uniform(0.1, 2.0, n_rows))
    gc = rng.integers(0, G * C, P)
    host = np.where(rng.random(G) < 0.5, rng.integers(0, G, G), -1)
    recovery = np.where(host >= 0, rng.uniform(0.0, 0.5, G), 0.0)
    byproduct = np.flatnonzero((host[gc // C] >= 0) & (rng.random(P) < 0.8))
    host_output = rng.exponential(20.0, (G, C))

    want = capacity.copy()
    if group_start.size:
        req = requirement[rows_by_producer]
        with np.errstate(divide="ignore", invalid="ignore"):
            allowed = np.where(req > 0, inventory[rows_by_producer] / np.where(req > 0, req, 1.0), np.inf)
        want[with_inputs] = np.minimum(capacity[with_inputs], np.minimum.reduceat(allowed, group_start))
    if byproduct.size:
        g = gc[byproduct]
        total = np.bincount(g, weights=want[byproduct], minlength=G * C)
        limit = (recovery[:, None] * host_output[np.maximum(host, 0)]).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(total > limit, limit / np.where(total > 0, total, 1.0), 1.0)
        want[byproduct] = want[byproduct] * scale[g]
    want[want < NEGLIGIBLE_CAPACITY_SHARE * capacity] = 0.0
    got = usable_capacity_of(
        capacity, inventory, requirement, rows_by_producer, group_start, with_inputs.astype(np.int64),
        byproduct.astype(np.int64), gc, recovery, host, host_output, NEGLIGIBLE_CAPACITY_SHARE,
    )  # fmt: skip
    close(got, want)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 10))
def test_lost_output_is_the_numpy_formulation(seed, n_goods, n_countries, n_producers):
    """Output lost for lack of inputs (ValueChains.lost_output) as the price fallback and the two
    supply evaluations it replaced."""
    from sim.model.chains import lost_output_of, supply_at_prices

    rng = np.random.default_rng(seed)
    G, C, P = n_goods, n_countries, n_producers
    price = _prices(rng, (G, C), infinite=True)
    reference_price = rng.uniform(1.0, 5.0, G)
    unit_cost = rng.uniform(0.0, 3.0, P)
    full0 = unit_cost + rng.uniform(0.1, 5.0, P)
    shift = rng.uniform(-0.5, 0.5, P)
    elasticity = rng.uniform(0.2, 3.0, P)
    producers = np.flatnonzero(rng.random(P) < 0.7)
    good, country = rng.integers(0, G, P), rng.integers(0, C, P)
    capacity = rng.exponential(10.0, P)
    share = rng.uniform(0.5, 1.0, (G, C))
    usable = capacity * rng.uniform(0.0, 1.0, P)

    fallback = np.fmax.reduce(price, axis=1)
    fallback = np.where(np.isfinite(fallback), fallback, reference_price)
    prices = np.where(np.isfinite(price), price, fallback[:, None])
    args = (unit_cost + shift, full0 + shift, elasticity, producers, good, country)
    whole = supply_at_prices(prices, capacity * share[good, country], *args)
    part = supply_at_prices(prices, usable, *args)
    want = np.zeros(P)
    want[producers] = np.maximum(whole - part, 0.0)
    got = lost_output_of(
        price, reference_price, unit_cost, full0, shift, elasticity, producers, good, country, capacity, share,
        usable, P,
    )  # fmt: skip
    close(got, want)


@given(st.integers(0, 2**32 - 1), st.integers(0, 40))
def test_thrift_and_purchase_elasticity_are_the_numpy_formulation(seed, n_rows):
    """Long-run thrift (CoercionModel._requirement_factor) and the purchases' short-run elasticity
    (in kernels.market_demand_rows) as the NumPy expressions they replaced."""
    rng = np.random.default_rng(seed)
    multiplier = rng.uniform(0.2, 1.0, n_rows)
    baseline = rng.uniform(0.5, 5.0, n_rows)
    expected = baseline * rng.uniform(0.5, 3.0, n_rows)
    eps = rng.uniform(0.0, 1.0, n_rows)
    theta, floor = rng.uniform(0.01, 1.0), rng.uniform(0.0, 0.6)
    excess = np.maximum(np.log(expected / baseline), 0.0)
    want = np.maximum(floor, multiplier * np.exp(-theta * eps * excess))
    close(kernels.thrift_factor(multiplier, expected, baseline, eps, theta, floor), want)

    need = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    inventory = rng.exponential(3.0, n_rows)
    deferral, max_cover = rng.uniform(0.0, 0.5), rng.uniform(0.5, 12.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(need > 0, inventory / np.where(need > 0, need, 1.0), 0.0)
    want = eps + deferral * np.minimum(cover, max_cover)
    close(kernels.purchase_elasticity_rows(need, inventory, eps, deferral, max_cover), want)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 8), st.integers(0, 12))
def test_input_buyers_kernels_are_the_numpy_formulation(seed, n_goods, n_countries, n_producers, n_rows):
    """Input buyers' planned output, input use and stock, and the input cost pass-through
    (ValueChains.planned_output, .produce, .update_input_costs) as the NumPy expressions they replaced."""
    from sim.model.chains import input_cost_shift, planned_output_of, supply_at_prices, use_inputs

    rng = np.random.default_rng(seed)
    G, C, P = n_goods, n_countries, n_producers
    good, country = rng.integers(0, G, P), rng.integers(0, C, P)
    last_price = _prices(rng, (G, C), infinite=True)
    import_price = np.where(rng.random(G) < 0.2, np.nan, rng.uniform(1.0, 5.0, G))
    capacity = rng.exponential(10.0, P)
    unit_cost = rng.uniform(0.0, 3.0, P)
    full = unit_cost + rng.uniform(0.1, 5.0, P)
    shift = rng.uniform(-0.5, 0.5, P)
    elasticity = rng.uniform(0.2, 3.0, P)
    buyer_producer = rng.integers(0, P, rng.integers(0, 6))
    prices = np.where(np.isfinite(last_price), last_price, import_price[:, None])
    want = supply_at_prices(
        prices, capacity, unit_cost + shift, full + shift, elasticity, buyer_producer, good, country
    )
    got = planned_output_of(
        last_price, import_price, capacity, unit_cost, full, shift, elasticity, buyer_producer, good, country
    )
    close(got, want)

    R = n_rows + 2
    rows = np.sort(rng.choice(R, n_rows, replace=False))
    row_producer = rng.integers(0, P, n_rows)
    output = rng.exponential(size=P)
    requirement = rng.uniform(0.0, 2.0, R)
    start, delivered = rng.exponential(size=R), rng.exponential(size=R)
    use, inventory = np.full(R, -7.0), np.full(R, -7.0)
    use_inputs(rows, row_producer, output, requirement, start, delivered, use, inventory)
    want_use, want_inventory = np.full(R, -7.0), np.full(R, -7.0)
    want_use[rows] = output[row_producer] * requirement[rows]
    want_inventory[rows] = np.maximum(start[rows] + delivered[rows] - want_use[rows], 0.0)
    close(use, want_use)
    close(inventory, want_inventory, np.abs(start) + np.abs(delivered) + np.abs(want_use))

    price_index = np.where(rng.random(R) < 0.2, np.nan, rng.uniform(0.5, 5.0, R))
    baseline = rng.uniform(0.5, 5.0, R)
    change0 = rng.uniform(-1.0, 1.0, n_rows)
    smoothing = rng.uniform(0.0, 1.0)
    now = price_index[rows]
    target = np.where(np.isfinite(now), now - baseline[rows], change0)
    want_change = change0 + smoothing * (target - change0)
    want_shift = np.maximum(np.bincount(row_producer, requirement[rows] * want_change, minlength=P), -unit_cost)
    change, got_shift = input_cost_shift(
        price_index, baseline, requirement, rows, row_producer, change0, smoothing, unit_cost
    )
    close(change, want_change, np.abs(change0) + np.abs(target))
    scale = np.bincount(row_producer, np.abs(requirement[rows] * want_change), minlength=P) + np.abs(unit_cost)
    close(got_shift, want_shift, scale)


def _numpy_fit_margins(m, weight, col, pos, tol, max_iterations):
    """The NumPy loop kernels.fit_margins replaced (sim.world.scenario.match_margins)."""
    for it in range(max_iterations):
        cs = m.sum(axis=0)
        m[:, pos] *= (col[pos] / cs[pos])[None, :]
        rs = m.sum(axis=1)
        m *= np.where(rs > 0, weight / np.where(rs > 0, rs, 1.0), 0.0)[:, None]
        if np.max(np.abs(m.sum(axis=0)[pos] / col[pos] - 1.0)) <= tol:
            return it + 1
    return max_iterations


@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(2, 12), st.sampled_from([1e-13, 1e-6]))
def test_fit_margins_is_the_numpy_formulation(seed, n, k, tol):
    """The firms' sourcing shares fitted to their sector's margins (Sinkhorn), in place, as the NumPy
    loop it replaced: same iterations, same matrix (twelve origins: rows summed pairwise)."""
    rng = np.random.default_rng(seed)
    target = np.where(rng.random(k) < 0.3, 0.0, rng.random(k))
    target[rng.integers(k)] = 1.0
    target /= target.sum()
    pos = target > 0
    weight = np.where(rng.random(n) < 0.1, 0.0, rng.exponential(size=n))
    if weight.sum() <= 0:
        weight[0] = 1.0
    shares = rng.dirichlet(np.ones(k), size=n)
    m = np.where(pos, (1.0 - 1e-6) * shares + 1e-6 * target, 0.0) * weight[:, None]
    col = weight.sum() * target
    want = m.copy()
    want_it = _numpy_fit_margins(want, weight, col, pos, tol, 10_000)
    got_it = kernels.fit_margins(m, weight, col, pos, tol, 10_000)
    assert got_it == want_it
    close(m, want)


@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 6))
def test_market_demand_rows_are_the_two_kernels_and_the_product(seed, n_rows, k_max):
    """The market's demand inputs (CoercionModel._clear) as the elasticity and demand-scale kernels
    and the NumPy product they replaced."""
    rng = np.random.default_rng(seed)
    need = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    inventory = rng.exponential(3.0, n_rows)
    eps = rng.uniform(0.0, 1.0, n_rows)
    deferral, max_cover = rng.uniform(0.0, 0.5), rng.uniform(0.5, 12.0)
    purchase = rng.exponential(5.0, n_rows)
    slot_origin = np.where(rng.random((n_rows, k_max)) < 0.2, -1, rng.integers(0, 5, (n_rows, k_max)))
    weights = np.where(slot_origin >= 0, rng.random((n_rows, k_max)), 0.0)
    weights[rng.random(n_rows) < 0.1] = 0.0  # rows with no open slot
    sigma = rng.uniform(1.2, 5.0, n_rows)
    price0 = rng.uniform(0.5, 50.0, (n_rows, k_max))
    pow_1ms, pow_ms = price0 ** (1.0 - sigma[:, None]), price0 ** -sigma[:, None]
    pref = rng.uniform(1.0, 40.0, n_rows)
    log_pref = kernels.log_of(pref)  # the model passes each row's log reference price, computed once
    elasticity, planned = kernels.market_demand_rows(
        need, inventory, eps, deferral, max_cover, purchase, weights, pow_1ms, pow_ms, slot_origin, sigma, log_pref
    )
    want_e = kernels.purchase_elasticity_rows(need, inventory, eps, deferral, max_cover)
    close(elasticity, want_e)
    close(planned, purchase * kernels.demand_scale_rows(weights, pow_1ms, pow_ms, slot_origin, sigma, log_pref, want_e))
    assert (planned[~(weights > 0).any(axis=1)] == 0.0).all()
    # The scale itself, from the CES formulas: composite price P = (sum w p^(1-s))^(1/(1-s)), tonnes per
    # unit of composite sum w p^-s P^s, and the planned tonnes at the reference price (P / pref)^e.
    open_w = np.where((slot_origin >= 0) & (weights > 0), weights, 0.0)
    a = (open_w * pow_1ms).sum(axis=1)
    has = a > 0
    big_p = np.where(has, a, 1.0) ** (1.0 / (1.0 - sigma))
    tonnes = (open_w * pow_ms).sum(axis=1) * big_p**sigma
    want_scale = np.where(has, (big_p / pref) ** want_e / np.where(has, tonnes, 1.0), 0.0)
    # powers taken another way (pow here, exp of logs there) agree to rounding amplified by sigma and e
    np.testing.assert_allclose(planned, purchase * want_scale, rtol=1e-10, atol=0)


@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(1, 5))
def test_after_clearing_is_the_numpy_formulation(seed, n_goods, n_countries):
    """What the model keeps from a clearing (CoercionModel._clear) as the NumPy expressions it replaced."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(0.1, 100.0, (n_goods, n_countries))
    price[rng.random(price.shape) < 0.2] = np.nan
    price[rng.random(price.shape) < 0.1] = np.inf
    iterations = rng.integers(0, 4, n_goods)
    residual = rng.uniform(0.0, 1e-10, n_goods)
    if n_goods and rng.random() < 0.2:
        residual[rng.integers(n_goods)] = np.nan
    warm, cleared, most, largest = kernels.after_clearing(price, iterations, residual)
    assert np.array_equal(warm, np.where(np.isfinite(price), price, np.nan), equal_nan=True)
    assert np.array_equal(cleared, iterations == 0)
    assert int(most) == int(iterations.max(initial=0))
    want = float(residual.max(initial=0.0))
    assert (np.isnan(largest) and np.isnan(want)) or float(largest) == want


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 5))
def test_rent_share_and_expected_price_are_the_numpy_formulation(seed, n_goods, n_countries):
    """The quota rent's share of the export price and the investors' expected world price
    (CoercionModel._adapt) as the NumPy expressions they replaced: a zero export price gives inf or
    NaN before the clean-up, as in NumPy, not an exception."""
    rng = np.random.default_rng(seed)
    rent = np.where(rng.random((n_goods, n_countries)) < 0.3, 0.0, rng.exponential(2.0, (n_goods, n_countries)))
    price = rng.uniform(0.5, 20.0, (n_goods, n_countries))
    price[rng.random(price.shape) < 0.2] = np.nan
    price[rng.random(price.shape) < 0.2] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.nan_to_num(rent / price)
    close(kernels.rent_share_of_price(rent, price), want)

    quantity = np.where(rng.random(n_goods) < 0.3, 0.0, rng.exponential(10.0, n_goods))
    value = quantity * rng.uniform(1.0, 50.0, n_goods)
    expected = rng.uniform(1.0, 50.0, n_goods)
    b = rng.uniform(0.01, 1.0)
    world = np.where(quantity > 0, value / np.where(quantity > 0, quantity, 1.0), expected)
    want_expected = expected + b * (world - expected)
    got = kernels.update_expected_price(quantity, value, expected, b)
    close(got, world)
    close(expected, want_expected)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(0, 12))
def test_producer_prices_are_the_numpy_formulation(seed, n_goods, n_countries, n_producers):
    """Producers' domestic prices (CoercionModel._book_domestic) as the NumPy expressions they replaced."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(0.1, 100.0, (n_goods, n_countries))
    price[rng.random(price.shape) < 0.3] = np.nan
    price[rng.random(price.shape) < 0.1] = np.inf
    good, country = rng.integers(0, n_goods, n_producers), rng.integers(0, n_countries, n_producers)
    want = price[good, country]
    want = np.where(np.isfinite(want), want, 0.0)
    assert np.array_equal(kernels.producer_prices(price, good, country), want)


@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.integers(0, 30))
def test_requirement_and_output_price_factor_are_the_numpy_formulation(seed, n_firms, n_rows):
    """Rows' requirement and need (CoercionModel._plan) and their output cut for price
    (CoercionModel._produce) as the NumPy expressions they replaced."""
    rng = np.random.default_rng(seed)
    base, factor = rng.exponential(size=n_rows), rng.uniform(0.2, 1.0, n_rows)
    scheduled, policy = rng.uniform(0.5, 1.0, n_rows), rng.uniform(0.5, 1.0, n_rows)
    planned_output = rng.exponential(100.0, n_firms)
    row_firm = rng.integers(0, n_firms, n_rows)
    req, need = kernels.requirement_rows(base, factor, scheduled, policy, planned_output, row_firm)
    want = base * factor * scheduled * policy
    close(req, want)
    close(need, want * planned_output[row_firm])

    pidx = rng.uniform(0.5, 20.0, n_rows)
    pidx[rng.random(n_rows) < 0.2] = np.nan
    pidx[rng.random(n_rows) < 0.1] = np.inf
    pidx[rng.random(n_rows) < 0.1] = 0.0
    baseline, eps = rng.uniform(0.5, 10.0, n_rows), rng.uniform(0.0, 1.0, n_rows)
    baseline[rng.random(n_rows) < 0.1] = 0.0  # a zero baseline index: inf or NaN, as in NumPy, not an error
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        want = np.where(np.isfinite(pidx), (pidx / baseline) ** (-eps), 1.0)
    got = kernels.output_price_factor(pidx, baseline, eps)
    assert np.array_equal(np.isinf(got), np.isinf(want)) and np.array_equal(got[np.isinf(got)], want[np.isinf(want)])
    finite = ~np.isinf(want)
    close(got[finite], want[finite])


@given(st.integers(0, 2**32 - 1), st.integers(0, 30))
def test_split_state_rows_is_the_numpy_formulation(seed, n_rows):
    """The state's share of rows' deliveries (CoercionModel._split_state_purchases) as the NumPy
    expressions it replaced; a row without a purchase gives the state nothing."""
    rng = np.random.default_rng(seed)
    purchase = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(10.0, n_rows))
    orders = np.where(rng.random(n_rows) < 0.5, 0.0, purchase * rng.uniform(0.0, 1.0, n_rows))
    orders[(purchase == 0) & (rng.random(n_rows) < 0.5)] = 1.0  # an order with no purchase: no share
    delivered, spent = purchase * rng.uniform(0.0, 1.0, n_rows), rng.exponential(50.0, n_rows)
    share = np.where(purchase > 0, orders / np.where(purchase > 0, purchase, 1.0), 0.0)
    state, value, firms = kernels.split_state_rows(orders, purchase, delivered, spent)
    close(state, delivered * share)
    close(value, spent * share)
    close(firms, delivered * (1.0 - share))


@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from([np.int16, np.int32]))
def test_positive_flows_are_the_numpy_selection(seed, n_edges, index_dtype):
    """The flows a month records (Recorder.record): the edges with a positive flow, in edge order, with
    indices in the recorder's dtype and value = flow x delivered price, as the NumPy expressions it
    replaced; zero, negative and NaN flows are left out."""
    rng = np.random.default_rng(seed)
    good, origin, destination = (rng.integers(0, 300, n_edges) for _ in range(3))
    flow = rng.choice([0.0, -1.0, np.nan, 1e-300, 2.5], n_edges) * rng.exponential(1.0, n_edges)
    price = np.where(rng.random(n_edges) < 0.2, np.nan, rng.exponential(100.0, n_edges))
    got = kernels.positive_flows(good, origin, destination, flow, price, np.empty(0, dtype=index_dtype))
    keep = flow > 0
    want = (
        good[keep].astype(index_dtype),
        origin[keep].astype(index_dtype),
        destination[keep].astype(index_dtype),
        flow[keep].copy(),
        (flow * price)[keep],
    )
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()  # selection and one multiplication: the same bits


@given(st.integers(0, 2**32 - 1), st.integers(0, 300), st.integers(1, 400))
def test_production_tax_revenue_is_the_numpy_expression(seed, n_taxed, n_producers):
    """A production tax's monthly revenue (CoercionModel._book_domestic) as the NumPy expression it
    replaced, bit for bit: the same products summed in NumPy's order, for any number of producers."""
    rng = np.random.default_rng(seed)
    price = np.where(rng.random(n_producers) < 0.2, 0.0, rng.exponential(100.0, n_producers))
    output = rng.exponential(10.0, n_producers)
    if seed % 4 == 0:  # all products -0.0: the sum starts from 0.0, as NumPy's does
        output = np.full(n_producers, -0.0)
    producers = rng.integers(0, n_producers, n_taxed)
    per_unit, rate, share = float(rng.exponential(5.0)), float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.0, 1.0))
    got = kernels.production_tax_revenue(per_unit, rate, share, price, output, producers)
    want = float(((per_unit + rate * price[producers]) * share * output[producers]).sum())
    assert np.float64(got).tobytes() == np.float64(want).tobytes()


@given(arrays(np.float64, st.integers(0, 50), elements=st.floats(0.0, 1e300)))
def test_log_of_is_the_log_of_each_value(values):
    """Logs computed once for a kernel that used to compute them (CoercionModel's row reference prices)."""
    with np.errstate(divide="ignore"):
        want = np.log(values)
    got = kernels.log_of(values)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    close(got[finite], want[finite], np.maximum(np.abs(want[finite]), 1.0))


@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(1, 4))
def test_stock_bought_and_scale_rows_are_the_fancy_indexed_numpy(seed, n_goods, n_countries):
    """A reserve's refill booked (Stockpile.after_clear) and a programme's rows scaled (Substitution.act)
    as the fancy-indexed NumPy they replaced; eight or more goods are summed pairwise."""
    rng = np.random.default_rng(seed)
    G, C = n_goods, n_countries
    c = int(rng.integers(0, C))
    goods = np.flatnonzero(rng.random(G) < 0.7).astype(np.int64)
    stock = rng.exponential(5.0, (G, C))
    bought = np.where(rng.random((G, C)) < 0.3, 0.0, rng.exponential(2.0, (G, C)))
    cost = bought * rng.uniform(1.0, 9.0, (G, C))
    want_stock = stock.copy()
    want_stock[goods, c] += bought[goods, c]
    want_cost = float(cost[goods, c].sum())
    got_cost = kernels.stock_bought(goods, c, stock, bought, cost)
    close(stock, want_stock)
    close(got_cost, want_cost, np.abs(cost[goods, c]).sum())
    values = rng.uniform(0.1, 2.0, 3 * G)
    rows = np.flatnonzero(rng.random(3 * G) < 0.5).astype(np.int64)
    factor = float(rng.uniform(0.2, 1.0))
    want = values.copy()
    want[rows] *= factor
    kernels.scale_rows(values, rows, factor)
    close(values, want)


@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 6))
def test_input_shortage_is_the_fancy_indexed_numpy(seed, n_rows, n_producers):
    """Producers' input buyers' shortage (ValueChains.produce) as the fancy-indexed NumPy it replaced."""
    from sim.model.chains import input_shortage

    rng = np.random.default_rng(seed)
    total = n_rows + 5
    rows = np.sort(rng.choice(total, size=n_rows, replace=False)).astype(np.int64)
    producer = rng.integers(0, n_producers, n_rows).astype(np.int64)
    lost = np.where(rng.random(n_producers) < 0.4, 0.0, rng.exponential(3.0, n_producers))
    requirement = rng.uniform(0.0, 2.0, total)
    shortage = rng.exponential(1.0, total)
    want = shortage.copy()
    want[rows] = lost[producer] * requirement[rows]
    input_shortage(rows, producer, lost, requirement, shortage)
    close(shortage, want)


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 6))
def test_take_state_purchases_is_the_numpy_it_replaced(seed, n_goods, n_countries):
    """The states' own share of the month's reserve purchases (CoercionModel.step) as the NumPy
    expressions it replaced: nothing ordered, only the states ordering, and zero purchases included."""
    rng = np.random.default_rng(seed)
    shape = (n_goods, n_countries)
    orders = np.where(rng.random(shape) < 0.3, 0.0, rng.exponential(4.0, shape))
    own_orders = orders * np.where(rng.random(shape) < 0.3, 1.0, rng.uniform(0.0, 1.0, shape))
    bought = orders * rng.uniform(0.0, 1.0, shape)
    value = bought * rng.uniform(1.0, 9.0, shape)
    stock = rng.exponential(5.0, shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(orders > 0, own_orders / np.where(orders > 0, orders, 1.0), 0.0)
    want_state, want_value = bought * own, value * own
    want = (bought - want_state, value - want_value, stock + want_state)
    state_bought, state_value = np.full(shape, np.nan), np.full(shape, np.nan)
    kernels.take_state_purchases(own_orders, orders, bought, value, state_bought, state_value, stock)
    for got, expected in zip(
        (state_bought, state_value, bought, value, stock), (want_state, want_value, *want), strict=True
    ):
        close(got, expected)


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 5), st.integers(0, 4))
def test_record_stocks_and_costs_are_the_numpy_copies(seed, n_goods, n_countries, n_levers):
    """The recorder's month of reserves, trade, investment, releases, reserve purchases, policy costs and
    lever costs (Recorder.record) as the NumPy assignments it replaced: month t written, no other."""
    rng = np.random.default_rng(seed)
    T, t, G, C = 4, int(rng.integers(0, 4)), n_goods, n_countries
    sources = [np.where(rng.random((G, C)) < 0.2, np.nan, rng.standard_normal((G, C))) for _ in range(7)]
    stock_out = [np.full((T, G, C), -7.0) for _ in range(6)]
    policy_cost, policy_revenue = rng.standard_normal(C), rng.standard_normal(C)
    lever_cost = rng.standard_normal((6, C))
    lever_index = rng.choice(6, size=n_levers, replace=False).astype(np.int64)
    cost_out, revenue_out = np.full((T, C), -7.0), np.full((T, C), -7.0)
    lever_out = np.full((n_levers, T, C), -7.0)
    kernels.record_stocks_and_costs(
        t,
        *sources,
        *stock_out,
        policy_cost,
        policy_revenue,
        lever_cost,
        lever_index,
        cost_out,
        revenue_out,
        lever_out,
    )
    want = [*sources[:5], sources[5] + sources[6]]
    for got, expected in zip(stock_out, want, strict=True):
        assert np.array_equal(got[t], expected, equal_nan=True)
        assert (np.delete(got, t, axis=0) == -7.0).all()
    assert np.array_equal(cost_out[t], policy_cost) and np.array_equal(revenue_out[t], policy_revenue)
    assert np.array_equal(lever_out[:, t], lever_cost[lever_index])
    for out in (cost_out, revenue_out):
        assert (np.delete(out, t, axis=0) == -7.0).all()
    assert (np.delete(lever_out, t, axis=1) == -7.0).all()


@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 5), st.integers(1, 4), st.booleans())
def test_record_output_loss_is_the_bincounts(seed, n_firms, n_countries, n_sectors, by_sector):
    """The user firms' loss and output by country this month, and the loss by sector added to the run's
    (Recorder.record), as the np.bincount calls they replaced."""
    rng = np.random.default_rng(seed)
    T, t = 3, int(rng.integers(0, 3))
    country = rng.integers(0, n_countries, n_firms)
    sector = rng.integers(0, n_sectors, n_firms)
    loss, output = rng.standard_normal(n_firms) * 1e3, rng.exponential(1e3, n_firms)
    loss_out, value_out = np.full((T, n_countries), -7.0), np.full((T, n_countries), -7.0)
    sector_loss = rng.standard_normal(n_sectors)
    want_sector = (
        sector_loss + np.bincount(sector, weights=loss, minlength=n_sectors) if by_sector else sector_loss.copy()
    )
    kernels.record_output_loss(t, country, sector, loss, output, loss_out, value_out, sector_loss, by_sector)
    close(
        loss_out[t],
        np.bincount(country, weights=loss, minlength=n_countries),
        np.bincount(country, np.abs(loss), n_countries),
    )
    close(value_out[t], np.bincount(country, weights=output, minlength=n_countries))
    close(sector_loss, want_sector, np.abs(sector_loss) + np.bincount(sector, np.abs(loss), n_sectors))
    assert (np.delete(loss_out, t, axis=0) == -7.0).all() and (np.delete(value_out, t, axis=0) == -7.0).all()


@given(st.integers(0, 2**32 - 1), st.integers(0, 20), st.integers(1, 4), st.integers(1, 5))
def test_capacity_by_origin_is_the_bincount(seed, n_producers, n_goods, n_countries):
    """Capacity by (good, country) (CoercionModel._capacity_by_origin) as the np.bincount it replaced."""
    rng = np.random.default_rng(seed)
    gc = rng.integers(0, n_goods * n_countries, n_producers).astype(np.int64)
    capacity = np.where(rng.random(n_producers) < 0.3, 0.0, rng.exponential(1e3, n_producers))
    got = kernels.capacity_by_origin(gc, capacity, n_goods, n_countries)
    close(got, np.bincount(gc, weights=capacity, minlength=n_goods * n_countries).reshape(n_goods, n_countries))


def _numpy_match_margins(shares, use, target, tol=1e-13):
    """The NumPy expressions kernels.match_shares replaced (sim.world.scenario.match_margins)."""
    n, K = shares.shape
    pos = target > 0
    target = np.where(pos, target, 0.0) / max(float(np.sum(np.where(pos, target, 0.0))), 1e-300)
    if n == 0 or pos.sum() <= 1:
        out = np.zeros_like(shares)
        out[:, pos] = 1.0
        return out
    weight = np.where(use > 0, use, 0.0)
    if weight.sum() <= 0:
        weight = np.ones(n)
    m = np.where(pos, (1.0 - 1e-6) * shares + 1e-6 * target, 0.0) * weight[:, None]
    col = weight.sum() * target
    _numpy_fit_margins(m, weight, col, pos, tol, 10_000)
    with np.errstate(invalid="ignore", divide="ignore"):  # a firm without use: 0 / 0
        out = m / weight[:, None]
        return out / out.sum(axis=1, keepdims=True)


@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 6), st.sampled_from([0.0, 0.1, 0.9]))
def test_match_shares_is_the_numpy_formulation(seed, n, k, zero_use):
    """The firms' shares fitted to their sector's margins (build_world) as the NumPy code it replaced: no
    firm, a single positive origin, firms without use and every firm without use included."""
    rng = np.random.default_rng(seed)
    target = np.where(rng.random(k) < 0.4, 0.0, rng.random(k))
    use = np.where(rng.random(n) < zero_use, 0.0, rng.exponential(size=n))
    shares = rng.dirichlet(np.ones(k), size=n) if n else np.zeros((0, k))
    got = kernels.match_shares(shares, use, target, 1e-13, 10_000)
    want = _numpy_match_margins(shares, use, target)
    assert got.shape == want.shape
    close(got, want, np.maximum(np.abs(want), 1e-12))
