"""Cost of validating a composed configuration (sim.world.scenario.validate_config), CPU time.

Runs validate_config 20 times on rare_earth_2010 (with the japan_2010_response policy levers) and on
a generated world's expansion, and reports the CPU time per call (time.process_time). To compare two
implementations, run it against each on the same machine at the same time, e.g.
``PYTHONPATH=/path/to/other/checkout python benchmarks/bench_validation.py``; it prints the module it
timed and the load average.
"""

import os
import platform
import time

import sim.world.scenario
from sim.api import compose_config
from sim.world.scenario import prepare_config, validate_config

N = 20


def per_call(cfg) -> float:
    validate_config(cfg)  # warm-up (imports, schema build)
    t0 = time.process_time()
    for _ in range(N):
        validate_config(cfg)
    return (time.process_time() - t0) / N


def main() -> None:
    print(f"module: {sim.world.scenario.__file__}")
    print(f"machine: {platform.machine()} {platform.processor()} python {platform.python_version()}")
    print(f"load average: {os.getloadavg()}")
    cases = {
        "rare_earth_2010": prepare_config(compose_config("rare_earth_2010")),
        "rare_earth_2010+japan_2010_response": prepare_config(
            compose_config("rare_earth_2010", ["policy=japan_2010_response"])
        ),
        "generated (expanded)": prepare_config(compose_config("generated")),
    }
    for name, cfg in cases.items():
        print(f"{name:40s} {per_call(cfg) * 1e3:8.2f} ms CPU per validate_config ({N} calls)")


if __name__ == "__main__":
    main()
