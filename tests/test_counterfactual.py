"""The counterfactual lever experiment (experiments/counterfactual_levers.py) on a subset of its variants."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "counterfactual_levers.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("counterfactual_levers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counterfactual_table_and_figure(experiment, tmp_path):
    subset = {k: experiment.VARIANTS[k] for k in ("none", "historical_substitution", "stockpile", "historical_mix")}
    table = experiment.run_variants(subset, seed=1)
    assert list(table.variant) == list(subset)
    none = table.set_index("variant").loc["none"]
    assert none.damage_avoided == 0 and none.lever_cost == 0
    mix = table.set_index("variant").loc["historical_mix"]
    # The historical mix costs what its parts cost (Lynas US$250m, substitution 2 x US$100m, recycling, stockpile).
    assert mix.lever_cost > 4.5e8
    assert (table.lever_cost >= 0).all()
    assert table.set_index("variant").loc["historical_substitution"].damage_avoided > 0
    paths = experiment.write(table, tmp_path)
    assert {p.name for p in paths} == {f"counterfactual_levers.{s}" for s in ("csv", "parquet", "png", "pdf")}
    back = pd.read_parquet(tmp_path / "counterfactual_levers.parquet")
    assert list(back.columns) == list(table.columns)


def test_every_variant_composes_and_names_the_none_baseline(experiment):
    import sim

    assert "none" in experiment.VARIANTS and "historical_mix" in experiment.VARIANTS
    for _, overrides in experiment.VARIANTS.values():
        sim.compose_config("rare_earth_2010", overrides)
