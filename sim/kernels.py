"""Compiled per-row kernels of the model's step (numba; pure functions over arrays, no Mesa).

Purchase rows are one user firm buying one good, with ``K`` sourcing slots each (origin ``-1`` for
an empty slot). These loops run every month over every row and slot, so they are compiled rather
than written as chains of NumPy expressions that each allocate a ``[R, K]`` temporary.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["price_index_rows", "demand_scale_rows", "adapt_sourcing"]


@njit(cache=True)
def price_index_rows(weights, prices, slot_origin, sigma):
    """CES delivered-price index of every row: ``(sum_k w_k p_k^(1-sigma))^(1/(1-sigma))``.

    NaN for a row with no open slot (positive weight and price).
    """
    n_rows, k_max = weights.shape
    out = np.empty(n_rows)
    for r in range(n_rows):
        s = sigma[r]
        a = 0.0
        for k in range(k_max):
            if slot_origin[r, k] >= 0 and weights[r, k] > 0.0 and prices[r, k] > 0.0:
                a += weights[r, k] * np.exp((1.0 - s) * np.log(prices[r, k]))
        out[r] = np.exp(np.log(a) / (1.0 - s)) if a > 0.0 else np.nan
    return out


@njit(cache=True)
def demand_scale_rows(weights, price_pow_1ms, price_pow_ms, slot_origin, sigma, reference_price, elasticity):
    """Factor turning a row's planned tonnes into the kernel's demand input.

    ``price_pow_1ms`` and ``price_pow_ms`` are the slots' reference delivered prices raised to
    ``1 - sigma`` and ``-sigma`` (constant over a run, so computed once). With CES sourcing the
    kernel delivers ``sum_k w_k p_k^-sigma P^sigma X`` tonnes for composite demand
    ``X = q (P / reference)^-elasticity``; the factor is the ``q`` per planned tonne.
    """
    n_rows, k_max = weights.shape
    out = np.empty(n_rows)
    for r in range(n_rows):
        s = sigma[r]
        a = 0.0
        tonnes = 0.0
        for k in range(k_max):
            if slot_origin[r, k] >= 0 and weights[r, k] > 0.0:
                a += weights[r, k] * price_pow_1ms[r, k]
                tonnes += weights[r, k] * price_pow_ms[r, k]
        if a <= 0.0:
            out[r] = 0.0
            continue
        log_p = np.log(a) / (1.0 - s)
        tonnes *= np.exp(s * log_p)
        out[r] = np.exp(elasticity[r] * (log_p - np.log(reference_price[r]))) / tonnes
    return out


@njit(cache=True)
def adapt_sourcing(
    weights,
    risk,
    affinity,
    contracted,
    slot_origin,
    row_good,
    row_destination,
    ban_intensity,
    rent_share,
    capacity,
    risk_decay,
    risk_aversion,
    rate,
):
    """One month of sourcing adaptation, in place.

    This month's hit on a slot is the share of its edge that is blocked (``ban_intensity``) or, for
    a foreign origin, the quota rent's share of the origin's export price (``rent_share [G, C]``);
    perceived risk becomes ``max(hit, risk * risk_decay)``. The target weight of a slot is
    ``affinity x capacity of the origin x exp(-risk_aversion x risk)``, normalised, scaled to leave
    room for the weights reserved by offtake contracts (``contracted``), which are added on top.
    Weights move a share ``rate`` of the way to the target and are renormalised over the row's
    slots; a row whose origins all lack capacity keeps its weights.
    """
    n_rows, k_max = weights.shape
    target = np.empty(k_max)
    for r in range(n_rows):
        g = row_good[r]
        d = row_destination[r]
        total = 0.0
        reserved = 0.0
        for k in range(k_max):
            o = slot_origin[r, k]
            if o < 0:
                risk[r, k] = 0.0
                target[k] = 0.0
                continue
            hit = ban_intensity[g, o, d]
            if o != d and rent_share[g, o] > hit:
                hit = rent_share[g, o]
            v = risk[r, k] * risk_decay
            risk[r, k] = hit if hit > v else v
            target[k] = affinity[r, k] * capacity[g, o] * np.exp(-risk_aversion * risk[r, k])
            total += target[k]
            reserved += contracted[r, k]
        if total <= 0.0:
            continue
        free = 1.0 - reserved
        if free < 0.0:
            free = 0.0
        norm = 0.0
        for k in range(k_max):
            if slot_origin[r, k] < 0:
                weights[r, k] = 0.0
                continue
            t = target[k] / total * free + contracted[r, k]
            weights[r, k] = (1.0 - rate) * weights[r, k] + rate * t
            norm += weights[r, k]
        if norm > 0.0:
            for k in range(k_max):
                weights[r, k] /= norm
