"""Time spent inside compiled kernels during a model run (benchmark instrumentation only).

:func:`instrument` replaces every numba function that Python code calls from the model's step (the
public functions of :mod:`sim.model.kernels`, the market kernel's entry points in
:mod:`sim.market.kernel`, the value chains' in :mod:`sim.model.chains` and the domestic instruments'
in :mod:`sim.coercion.measures`) with a thin
wrapper that adds the call's wall time to a counter. "Inside compiled kernels" is then the time
between entering and leaving those compiled calls (argument unboxing and result boxing included);
everything else in a step is "outside": Python-level agent and model code, vectorised NumPy, the
Mesa scheduler, building the market's inputs and result objects, and recording.

The model itself is not changed: its own ``clearing_seconds`` (the whole ``clear_markets`` call,
Python wrapper included) is reported next to this figure. Kernels called from inside other kernels
are counted once, in their caller.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field


@dataclass
class KernelTimer:
    """Accumulated wall time and call counts per compiled function."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.seconds.values()))

    def reset(self) -> None:
        for k in self.seconds:
            self.seconds[k] = 0.0
            self.calls[k] = 0


def instrument() -> KernelTimer:
    """Wrap the compiled functions of ``sim.model.kernels`` and ``sim.market.kernel`` with timers.

    Call before building a model; the wrappers stay in place for the rest of the process.
    """
    from numba.core.registry import CPUDispatcher

    import sim.coercion.measures
    import sim.market.kernel
    import sim.model.chains
    import sim.model.kernels

    timer = KernelTimer()
    # Only entry points that Python calls: a kernel that another kernel calls is resolved by numba
    # at compile time, and must stay a dispatcher.
    entry_points = [(sim.model.kernels, name) for name in sim.model.kernels.__all__]
    entry_points += [(sim.market.kernel, "clear_all_goods"), (sim.market.kernel, "build_structure")]
    chains = (
        "usable_capacity_of",
        "lost_output_of",
        "planned_output_of",
        "use_inputs",
        "input_cost_shift",
        "input_shortage",
    )
    entry_points += [(sim.model.chains, name) for name in chains]
    entry_points += [
        (sim.coercion.measures, name)
        for name in ("_cut_capacity", "_cap_output", "_cap_exports", "_add_tax", "_gathered_sum")
    ]
    for module, name in entry_points:
        obj = getattr(module, name)
        if not isinstance(obj, CPUDispatcher):
            raise TypeError(f"{module.__name__}.{name} is not a compiled (numba) function")
        key = f"{module.__name__}.{name}"
        timer.seconds[key] = 0.0
        timer.calls[key] = 0

        def wrapper(*args, _f=obj, _k=key, **kwargs):
            t = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                timer.seconds[_k] += time.perf_counter() - t
                timer.calls[_k] += 1

        functools.update_wrapper(wrapper, obj)
        setattr(module, name, wrapper)
    return timer
