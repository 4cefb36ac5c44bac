"""A measure's month-by-month reading (``sim.coercion.measures._Timeline``, derived once per coverage
array) gives what the coverage array itself gives: the share in force, the months left to count for
paced quotas and purchases, the first covered month; and the domestic instruments a model acts on in a
month are exactly those whose dates cover some of it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.api import compose_config
from sim.coercion.measures import ExportQuota, ProductionQuota, ProductionTax, StatePurchase
from sim.model.model import CoercionModel

_coverage = arrays(np.float64, st.integers(1, 40), elements=st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0]))


def _quota(cls, coverage, **kwargs):
    return cls(
        imposer=0,
        goods=np.array([0]),
        targets=np.zeros(0, dtype=np.int64),
        coverage=coverage,
        start=dt.date(2010, 1, 1),
        **kwargs,
    )


@given(_coverage, st.data())
def test_paced_measures_count_the_months_left_as_the_coverage_does(coverage, data):
    q = _quota(ProductionQuota, coverage, quantity=120.0, producers=np.array([0]), cost=np.zeros(coverage.size))
    x = _quota(
        ExportQuota, coverage, quantity=120.0, allocation=np.ones(1), carried_in=np.zeros(1), shipped=np.zeros(1)
    )
    sp = _quota(
        StatePurchase, coverage, quantity=60.0, producers=np.zeros(0, dtype=np.int64), cost=np.zeros(coverage.size)
    )
    for step in range(coverage.size):
        left = int(np.count_nonzero(coverage[step:] >= 0.5))
        counted = coverage[step] >= 0.5
        assert q.in_force(step) == float(coverage[step])
        assert q.monthly_cap(step) == (120.0 / max(left, 1) if counted else None)
        want_x = 120.0 / max(left, 1) if counted else None
        got_x = x.monthly_cap(step)
        assert (got_x is None) if want_x is None else np.allclose(got_x, want_x, rtol=0, atol=0)
        assert sp.order(step) == (60.0 / max(int(np.count_nonzero(coverage >= 0.5)), 1) if counted else 0.0)
    months = x.months()
    assert x._timeline().last_counted == (int(months.max()) if months.size else -1)
    assert x._timeline().first_covered == (int(np.argmax(coverage > 0)) if coverage.size else 0)
    ended = data.draw(st.integers(0, coverage.size))
    q.ended_at = ended
    assert all(q.in_force(s) == 0.0 and q.monthly_cap(s) is None for s in range(ended, coverage.size))


def test_a_new_coverage_array_is_read_anew():
    q = _quota(ProductionQuota, np.ones(4), quantity=4.0, producers=np.array([0]), cost=np.zeros(4))
    assert q.monthly_cap(0) == 1.0
    q.coverage = np.array([0.0, 1.0, 1.0, 0.0])
    assert q.monthly_cap(0) is None and q.monthly_cap(1) == 2.0


def test_the_model_acts_each_month_on_the_domestic_instruments_dated_in_it():
    model = CoercionModel(compose_config("rare_earth_2010", ["output.progress=never"]))
    assert model.domestic, "rare_earth_2010 has domestic instruments"
    for t in range(model.n_steps):
        dated = [id(m) for m in model._domestic_dated(t)]
        assert [id(m) for m in model.domestic if m.coverage[t] > 0] == dated
        # their positions in model.domestic (the recorder's costs by imposer), as an index array
        at = model.domestic_dated_positions(t)
        assert at.dtype == np.int64 and [id(model.domestic[i]) for i in at] == dated
        # and those that book output, tax revenue and purchases after clearing, by kind
        booking = model._domestic_booking(t)
        for kind, listed in zip((ProductionQuota, ProductionTax, StatePurchase), booking, strict=True):
            assert [id(m) for m in listed] == [id(m) for m in model._domestic_dated(t) if isinstance(m, kind)]
        # an instrument not dated in a month changes nothing in it (no share in force, cap or order)
        for m in model.domestic:
            if id(m) not in dated:
                assert m.in_force(t) == 0.0
    model.run()
    for t in range(model.n_steps):
        dated = {id(m) for m in model._domestic_dated(t)}
        assert all(m.cost[t] == 0.0 for m in model.domestic if id(m) not in dated)


def test_the_model_caps_and_books_each_month_the_export_quotas_counting_it():
    """Export quotas are looked up by month (CoercionModel._quotas_counting): a month's list is every
    quota whose period counts it, in list order (the others would neither cap nor book exports), and
    it is drawn up again when a measure is added during the run."""
    model = CoercionModel(compose_config("rare_earth_2010", ["output.progress=never"]))
    quotas = model._measure_kinds()[0]
    assert len(quotas) > 1, "rare_earth_2010 has export quota periods"
    for t in range(model.n_steps):
        assert [id(q) for q in model._quotas_counting(t)] == [id(q) for q in quotas if q.monthly_cap(t) is not None]
    late = _quota(
        ExportQuota,
        np.ones(model.n_steps),
        quantity=1.0,
        allocation=np.ones(1),
        carried_in=np.zeros(1),
        shipped=np.zeros(1),
    )
    model.measures.append(late)
    assert all(model._quotas_counting(t)[-1] is late for t in range(model.n_steps))


def test_a_quota_period_passes_what_it_left_unused_to_the_next_period_of_its_year():
    """CoercionModel._close_quota_periods: once a period has counted its last month, its unused
    licences carry into the next period of the same year (2010 and 2014 came in two batches)."""
    model = CoercionModel(compose_config("rare_earth_2010", ["output.progress=never"]))
    chains = [c for c in model.world.quota_chains if len(c) > 1]
    assert chains, "rare_earth_2010 has quota years in two batches"
    model.run()
    for chain in chains:
        assert chain[0].carried_in.sum() == 0.0
        for earlier, later in zip(chain[:-1], chain[1:], strict=True):
            # nothing is booked to a period after its last month, so what it left then is what it leaves now
            assert earlier.remaining().sum() > 0
            np.testing.assert_allclose(later.carried_in, earlier.remaining(), rtol=1e-12)
