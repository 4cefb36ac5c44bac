"""``python -m sim.dashboard [--port N] [--host H]``: serve the dashboard locally (``make app``).

It first runs the ``minimal`` scenario once, so numba compiles the market kernels into its on-disk
cache (a minute or two the very first time, a second afterwards) before the page is served, then
hands over to ``solara run`` in production mode with Solara's usage statistics and version check
off: the page and its assets come from this machine, nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels a run needs, by running ``minimal``."""
    from sim.api import run

    run("minimal", ["scenario.end=2021-03", "output.variables=[price_export]"], progress="never")


def main(argv: list[str] | None = None) -> None:
    """Parse ``--port``/``--host``, warm the kernels and serve the page until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.dashboard", description="Serve the coercion-sim dashboard on this machine (make app)."
    )
    parser.add_argument("--port", type=int, default=8765, help="port to serve on (default 8765; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine)")
    args = parser.parse_args(argv)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")  # offline: no usage statistics
    # Served to this machine over plain http, Solara falls back to SameSite=Lax cookies, as it should,
    # but warns about it on every page load.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https", category=UserWarning)
    print("coercion-sim dashboard: loading the market kernels ...", file=sys.stderr, flush=True)
    warm_up()
    print(f"coercion-sim dashboard: serving on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    from solara.__main__ import cli

    cli.main(
        # --no-check-version: no query to PyPI (offline; the version is pinned on purpose).
        ["run", "sim.dashboard.app", "--host", args.host, "--port", str(args.port)]
        + ["--production", "--no-open", "--no-check-version"],
        prog_name="solara",
    )


if __name__ == "__main__":
    main()
