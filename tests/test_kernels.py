"""The model's compiled per-row kernels (``sim.kernels``) reproduce the NumPy formulation they
replaced: outputs of a run must not depend on whether a step's loop is compiled.

Bit for bit where the two do the same floating-point operations in the same order (sums in the same
order, products, quotients, min and max). Where a product feeds a sum (``a * b - c``), the compiler
may fuse the two into one multiply-add depending on the CPU (STYLE.md, numba), which rounds once
instead of twice: there the results may differ by the rounding of the product, and the tests allow
``FUSED_ULPS`` units in the last place of it, no more.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim import kernels

_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
#: Units in the last place of a product that a fused multiply-add may change a result by.
FUSED_ULPS = 2


def assert_equal_up_to_fused_rounding(actual, expected, product) -> None:
    """Equal, or apart by at most ``FUSED_ULPS`` ulps of ``product`` (where a multiply-add may fuse)."""
    actual, expected, product = np.broadcast_arrays(*map(np.asarray, (actual, expected, product)))
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    slack = FUSED_ULPS * np.spacing(np.abs(product[ok]))
    assert np.all(np.abs(actual[ok] - expected[ok]) <= slack), (actual, expected)


@given(arrays(np.float64, st.integers(0, 700), elements=_finite), st.integers(0, 50))
def test_pairwise_sum_matches_numpy_sum_bit_for_bit(values, lo):
    lo = min(lo, values.size)
    assert kernels.pairwise_sum(values, lo, values.size - lo) == np.sum(values[lo:])


@given(st.integers(1, 40), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_group_sums_match_bincount(n_groups, n, seed):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n)
    a, b = rng.standard_normal(n) * 1e3, rng.exponential(size=n)
    out = kernels.group_sums(group, (a, b), n_groups)
    assert np.array_equal(out[0], np.bincount(group, weights=a, minlength=n_groups))
    assert np.array_equal(out[1], np.bincount(group, weights=b, minlength=n_groups))


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
    np.testing.assert_array_equal(planned, want_planned)
    np.testing.assert_array_equal(output, want_output)
    np.testing.assert_array_equal(use, want_use)
    assert_equal_up_to_fused_rounding(left, np.maximum(available - want_use, 0.0), want_use)
    need = req * want_planned[row_firm]
    assert_equal_up_to_fused_rounding(shortage, np.maximum(need - available, 0.0), need)


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
    assert np.array_equal(qty, np.bincount(good[intl], weights=flow[intl], minlength=n_goods))
    # value is a running sum of flow * price: each step may fuse, and a different rounding of one step
    # carries into the later additions, so allow the rounding of the sum's magnitude once per term
    products = np.abs(flow * np.nan_to_num(price))[intl]
    terms = np.bincount(good[intl], minlength=n_goods)
    assert_equal_up_to_fused_rounding(
        val,
        np.bincount(good[intl], weights=(flow * np.nan_to_num(price))[intl], minlength=n_goods),
        np.bincount(good[intl], weights=products, minlength=n_goods) * np.maximum(terms, 1),
    )
    want = np.bincount(good[intl] * n_countries + dest[intl], weights=flow[intl], minlength=n_goods * n_countries)
    assert np.array_equal(imports.ravel(), want)

    # Spreading a per-(good, country) quantity over rows by need (CoercionModel._spread).
    n_rows = 25
    row_gc = rng.integers(0, n_goods * n_countries, n_rows)
    need = np.where(rng.random(n_rows) < 0.2, 0.0, rng.exponential(size=n_rows))
    by_gc = rng.exponential(size=n_goods * n_countries)
    total = np.bincount(row_gc, weights=need, minlength=by_gc.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[row_gc] > 0, need / np.where(total[row_gc] > 0, total[row_gc], 1.0), 0.0)
    assert np.array_equal(kernels.spread_by_need(by_gc, row_gc, need), by_gc[row_gc] * share)
