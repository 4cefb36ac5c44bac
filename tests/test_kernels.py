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
    special = np.array([np.nan, np.inf, -np.inf, 0.0])

    def prices():
        p = rng.uniform(0.0, 2500.0, (n_goods, n_countries))
        p[rng.random(p.shape) < 0.2] = rng.choice(special)
        at = rng.random(p.shape) < 0.2
        p[at] = np.broadcast_to(level[:, None], p.shape)[at]  # exactly at the level counts
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
