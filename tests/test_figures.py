"""Figures: each function returns a populated Figure, and save_figure writes PNG and PDF atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.reporting import figures as F

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Data: a small real run of the `minimal` scenario, and a synthetic multi-good, multi-target one
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minimal_run():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sim.model.model import CoercionModel
    from sim.world.config import register_configs

    register_configs()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["scenario=minimal"])
    model = CoercionModel(cfg)
    model.run()
    return {
        "timeseries": model.recorder.timeseries(),
        "flows": model.recorder.flows_table(),
        "coercer": str(cfg.scenario.coercer),
        "targets": [str(t) for t in cfg.scenario.targets],
        "goods": [str(g.id) for g in cfg.scenario.goods],
        "measures": cfg.scenario.measures,
    }


def synthetic_run():
    """Two goods, CHN coercing JPN, USA and KOR; KOR imports nothing and has no user firms."""
    dates = pd.date_range("2010-01-01", periods=36, freq="MS")
    countries = ["CHN", "JPN", "USA", "KOR", "AUS"]
    goods = ["ree_light", "ree_heavy"]
    t = np.arange(len(dates))
    pulse = np.where((t >= 9) & (t < 24), 1.0, 0.0)
    rows = []

    def add(country, good, variable, values):
        for d, s, v in zip(dates, t, values, strict=True):
            rows.append((d, s, country, good, variable, float(v)))

    for k, g in enumerate(goods):
        export = 10.0 * (1 + (8 + 10 * k) * pulse * np.exp(-(t - 9).clip(0) / 6))
        domestic = 10.0 * (1 - 0.2 * pulse)
        add("CHN", g, "price_export", export)
        add("CHN", g, "price_domestic", domestic)
        add("AUS", g, "price_domestic", 12.0 + 0 * t)
        add("JPN", g, "price_paid", export * 1.1)
        add("USA", g, "price_paid", export * 1.05)
    for c, va, loss in (
        ("CHN", 5e9, 0.001),
        ("JPN", 3e9, 0.03),
        ("USA", 8e9, 0.005),
        ("KOR", 0.0, 0.0),
        ("AUS", 0.0, 0.0),
    ):
        lost = va * loss * pulse
        add(c, "all", "output_loss", lost)
        add(c, "all", "value_added", va - lost)
    ts = pd.DataFrame(rows, columns=["date", "step", "country", "good", "variable", "value"])
    ts = ts.astype(
        {
            "country": pd.CategoricalDtype(countries),
            "good": pd.CategoricalDtype(goods + ["all"]),
            "variable": "category",
            "step": np.int32,
        }
    )
    ts["date"] = ts["date"].astype("datetime64[ms]")

    frows = []
    for d, s in zip(dates, t, strict=True):
        for g in goods:
            for dest, q_chn, q_aus in (("JPN", 900 * (1 - 0.5 * pulse[s]), 100 + 300 * pulse[s]), ("USA", 500, 50)):
                frows.append((d, s, g, "CHN", dest, q_chn, q_chn * 10))
                frows.append((d, s, g, "AUS", dest, q_aus, q_aus * 12))
            frows.append((d, s, g, "CHN", "CHN", 2000.0, 20000.0))
    flows = pd.DataFrame(frows, columns=["date", "step", "good", "origin", "destination", "quantity", "value"])
    flows = flows.astype(
        {
            "good": pd.CategoricalDtype(goods),
            "origin": pd.CategoricalDtype(countries),
            "destination": pd.CategoricalDtype(countries),
            "step": np.int32,
        }
    )
    flows["date"] = flows["date"].astype("datetime64[ms]")
    return ts, flows


def write_fake_history(path: Path, goods=("ore",), start="2020-01") -> Path:
    """A small history file in the format of sim/world/data/rare_earth_2010_history.csv."""
    base = pd.Timestamp(start)
    rows = []
    for g in goods:
        for i, (months, ratio, element, quality) in enumerate(
            [
                (0, 1.0, "X oxide", "ok"),
                (14, 12.0, "X oxide", "ok"),
                (15, 20.0, "Y metal", "derived"),
                (20, 6.0, "X oxide", "low"),
                (30, 1.5, "Y metal", "ok"),
                (-30, 1.0, "X oxide", "ok"),
            ]
        ):
            d = (base + pd.DateOffset(months=months)).strftime("%Y-%m-%d")
            rows.append(("export_price", g, element, d, 100 * ratio, ratio, f"point {i}", "test source", quality))
    rows.append(
        (
            "export_price_index",
            "",
            "all REE",
            (base + pd.DateOffset(months=16)).strftime("%Y-%m-%d"),
            9.0,
            9.0,
            "index",
            "test",
            "ok",
        )
    )
    for months, share, quality in ((2, 0.8, "ok"), (14, 0.6, "ok"), (26, 0.65, "low")):
        d = (base + pd.DateOffset(months=months)).strftime("%Y-%m-%d")
        rows.append(("china_share_of_japan_imports", "", "all rare earths", d, share, "", "share", "test", quality))
    rows.append(("domestic_price", goods[0], "X oxide", base.strftime("%Y-%m-%d"), 50.0, "", "no ratio", "test", "ok"))
    cols = ["series", "good", "element", "date", "value", "ratio_to_baseline", "basis", "source", "quality"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return path


def shaded_spans(ax):
    """The shaded rectangles of measure periods on an axes."""
    return [
        p
        for p in ax.patches
        if isinstance(p, mpl.patches.Rectangle | mpl.patches.Polygon)
        and mpl.colors.to_hex(p.get_facecolor()) == F._SHADE
    ]


def data_lines(ax):
    """Lines of an axes that carry data (not reference lines or legend proxies)."""
    return [
        ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2 and np.isfinite(np.asarray(ln.get_ydata(), float)).any()
    ]


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(mpl.text.Text))


# ---------------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------------
def test_overview_figure_real_run(minimal_run):
    r = minimal_run
    fig = F.overview_figure(
        r["timeseries"], r["flows"], coercer=r["coercer"], targets=r["targets"], periods=r["measures"]
    )
    assert isinstance(fig, Figure)
    assert fig.canvas.manager is None  # not registered with pyplot
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert data_lines(ax), F.panel_title(ax)
    ax_a, ax_b, ax_c, ax_d = fig.axes
    assert ax_a.get_yscale() == "log"
    assert len(data_lines(ax_a)) == 2  # export and domestic price of the one good
    # The quota drives the price the target pays far above its first month.
    paid = np.asarray(data_lines(ax_b)[0].get_ydata(), float)
    assert np.nanmax(paid) > 2 and np.isclose(paid[0], 1.0)
    assert "pay" in F.panel_title(ax_b)
    share = np.asarray(data_lines(ax_c)[0].get_ydata(), float)
    assert 0 <= np.nanmin(share) <= np.nanmax(share) <= 1
    assert {"JPN", "CHN (coercer)"} <= {ln.get_label() for ln in data_lines(ax_d)}
    # The quota's months are shaded in every panel.
    assert all(shaded_spans(ax) for ax in fig.axes)
    # Each panel: its letter in bold as the left title, then its title in regular weight, both plain
    # text (no mathtext to parse), the title following the letter on the same line.
    assert [ax.get_title(loc="left") for ax in fig.axes] == list("abcd")
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    for ax in fig.axes:
        letter = ax._left_title
        (title,) = [t for t in ax.texts if t.get_gid() == "panel-title"]
        assert "$" not in letter.get_text() + title.get_text()
        assert letter.get_fontweight() in ("bold", 700) and title.get_fontweight() in ("normal", 400)
        box_l, box_t = letter.get_window_extent(renderer), title.get_window_extent(renderer)
        assert box_l.x1 < box_t.x0 < box_l.x1 + 20  # after the letter, a few points apart
        assert box_t.y0 == pytest.approx(box_l.y0, abs=1.0)  # on the same line
    assert F.panel_title(ax_b) == "b   Prices the targets pay"


def test_a_panel_title_holding_a_dollar_sign_is_text_not_mathematics():
    fig = Figure()
    ax = fig.subplots()
    F._panel_title(ax, "a", "Lost revenue (US$ m) and price (US$/t)")
    assert F.panel_title(ax) == "a   Lost revenue (US$ m) and price (US$/t)"
    (title,) = [t for t in ax.texts if t.get_gid() == "panel-title"]
    assert not title._preprocess_math(title.get_text())[1]  # not parsed as mathtext


def test_overview_figure_many_goods_and_a_target_without_imports():
    ts, flows = synthetic_run()
    fig = F.overview_figure(ts, flows, coercer="CHN", targets=["JPN", "USA", "KOR"])
    assert len(fig.axes) == 4
    ax_a, ax_b, ax_c, ax_d = fig.axes
    assert len(data_lines(ax_a)) == 4  # 2 goods x (export, domestic)
    assert len(data_lines(ax_b)) == 4  # prices paid: JPN and USA x 2 goods; KOR buys nothing
    assert len(data_lines(ax_c)) == 4  # JPN and USA x 2 goods; KOR imports nothing
    assert len(data_lines(ax_d)) == 3  # JPN, USA, CHN; KOR and AUS have no user firms
    text = texts(fig)
    assert "no imports: KOR" in text and "no user firms: KOR, AUS" in text
    # JPN's loss peaks at 3% of its baseline value added.
    jpn = next(ln for ln in data_lines(ax_d) if ln.get_label() == "JPN")
    assert np.nanmax(np.asarray(jpn.get_ydata(), float)) == pytest.approx(3.0)
    # goods=... picks a subset; an unknown target and no flows at all still draw.
    fig1 = F.overview_figure(ts, flows.iloc[:0], coercer="CHN", targets=["ZZZ"], goods=["ree_heavy"])
    assert len(fig1.axes) == 4 and len(data_lines(fig1.axes[0])) == 2
    assert not data_lines(fig1.axes[2])


def test_coercer_import_shares_trailing_window():
    ts, flows = synthetic_run()
    dates = F._dates(ts)
    monthly = F.coercer_import_shares(
        flows, coercer="CHN", importers=["JPN", "KOR"], goods=["ree_light"], dates=dates, window=1, aggregate=True
    )
    assert set(monthly) == {("JPN", "ree_light"), ("JPN", "all")}
    s = monthly[("JPN", "ree_light")]
    assert s.iloc[0] == pytest.approx(0.9) and s.iloc[12] == pytest.approx(450 / 850)
    yearly = F.coercer_import_shares(
        flows, coercer="CHN", importers=["JPN"], goods=["ree_light"], dates=dates, window=12
    )
    y = yearly[("JPN", "ree_light")]
    assert y.iloc[8] == pytest.approx(0.9)
    assert y.iloc[12] == pytest.approx((8 * 900 + 4 * 450) / (8 * 1000 + 4 * 850))


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------
def test_history_figure_with_fake_history(minimal_run, tmp_path):
    r = minimal_run
    path = write_fake_history(tmp_path / "fake_history.csv", goods=r["goods"])
    history = F.load_history(path)
    assert history.attrs["source_file"] == "fake_history.csv"
    fig = F.history_figure(
        r["timeseries"], history, coercer=r["coercer"], goods=r["goods"], flows=r["flows"], targets=r["targets"]
    )
    assert isinstance(fig, Figure) and fig.canvas.manager is None
    assert len(fig.axes) == len(r["goods"]) + 1
    price_ax, share_ax = fig.axes[0], fig.axes[-1]
    assert price_ax.get_yscale() == "log"
    assert data_lines(price_ax) and data_lines(share_ax)
    points = [ln for ln in price_ax.get_lines() if ln.get_linestyle() == "None"]
    assert points
    # Hollow markers for low / derived observations, filled for the rest.
    assert {mpl.colors.to_hex(ln.get_markerfacecolor()) == "#ffffff" for ln in points} == {True, False}
    shown = sum(len(ln.get_xdata()) for ln in points)
    assert shown == 6  # 5 in the simulated period per good + the good-less index; the one before is counted
    share_points = [ln for ln in share_ax.get_lines() if ln.get_linestyle() == "None"]
    assert sum(len(ln.get_xdata()) for ln in share_points) == 3
    text = texts(fig)
    assert "1 more outside period" in text
    assert "fake_history.csv" not in text  # a file name is no legend title
    assert all(leg.get_title().get_text() == "" for leg in fig.legends)

    # A path works too; "all" widens the axis to every observation; no flows leaves only the points.
    fig2 = F.history_figure(r["timeseries"], str(path), coercer=r["coercer"], goods=r["goods"], xlim="all")
    assert len(fig2.axes) == 2
    lo, _ = fig2.axes[0].get_xlim()
    assert lo < mpl.dates.date2num(pd.Timestamp("2018-01-01"))
    assert "model shares need flows" in texts(fig2)


def test_history_figure_many_goods_real_history_file():
    ts, flows = synthetic_run()
    name = "rare_earth_2010_history.csv"
    if not (F.DATA_DIR / name).exists():
        pytest.skip("sim/world/data/rare_earth_2010_history.csv not written yet")
    history = F.load_history(name)
    fig = F.history_figure(ts, history, coercer="CHN", goods=["ree_light", "ree_heavy"], flows=flows)
    assert len(fig.axes) == 3
    assert all(data_lines(ax) for ax in fig.axes)
    assert any(ln.get_linestyle() == "None" for ln in fig.axes[0].get_lines())
    assert name not in texts(fig)


def test_load_history_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        F.load_history(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------
# Saving and style
# ---------------------------------------------------------------------------------------------
def test_save_figure_writes_png_and_pdf_atomically(minimal_run, tmp_path):
    r = minimal_run
    fig = F.overview_figure(r["timeseries"], r["flows"], coercer=r["coercer"], targets=r["targets"])
    out = tmp_path / "figures" / "overview"
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "overview.png").write_bytes(b"old")  # overwritten in place
    paths = F.save_figure(fig, out)
    assert paths == [out.with_name("overview.png"), out.with_name("overview.pdf")]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000
    assert paths[1].read_bytes()[:5] == b"%PDF-" and paths[1].stat().st_size > 5_000
    assert sorted(os.listdir(tmp_path / "figures")) == ["overview.pdf", "overview.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in paths)
    assert not fig.axes  # closed (cleared)
    # A suffix is dropped; a missing directory is created.
    small = Figure(figsize=(2, 1.5))
    small.subplots().plot([0, 1], [1, 2])
    paths2 = F.save_figure(small, tmp_path / "new" / "history.png")
    assert [p.name for p in paths2] == ["history.png", "history.pdf"]
    assert sorted(os.listdir(tmp_path / "new")) == ["history.pdf", "history.png"]


def test_save_figure_failure_keeps_old_file_and_no_temp(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    target = tmp_path / "f.png"
    target.write_bytes(b"previous")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    fig.savefig = boom
    with pytest.raises(RuntimeError, match="disk full"):
        F.save_figure(fig, tmp_path / "f")
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["f.png"]


def test_style_is_scoped_and_pyplot_untouched():
    before = dict(mpl.rcParams)
    ts, flows = synthetic_run()
    F.overview_figure(ts, flows, coercer="CHN", targets=["JPN"])
    assert dict(mpl.rcParams) == before
    with F.style():
        assert mpl.rcParams["savefig.dpi"] == 300
        assert mpl.rcParams["font.size"] == 8
    assert F.STYLE_PATH.exists()


def test_save_figure_closes_a_pyplot_figure(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    F.save_figure(fig, tmp_path / "p", formats=("png",))
    assert fig.number not in plt.get_fignums()
    assert os.listdir(tmp_path) == ["p.png"]


# ---------------------------------------------------------------------------------------------
# Panels, shading, colours and labels that fit the case
# ---------------------------------------------------------------------------------------------
def import_ban_run():
    """AUS sells two goods to CHN and ROW; CHN bans its imports of both from month 6 on: AUS's
    sales to CHN stop, half of them go to ROW, and its producer price falls by a fifth."""
    dates = pd.date_range("2020-01-01", periods=24, freq="MS")
    countries, goods = ["CHN", "AUS", "ROW"], ["beef", "wine"]
    t = np.arange(len(dates))
    ban = t >= 6
    rows, frows = [], []
    for g in goods:
        for d, s in zip(dates, t, strict=True):
            to_chn, to_row = (0.0, 150.0) if ban[s] else (100.0, 100.0)
            price = 8.0 if ban[s] else 10.0
            rows += [
                (d, s, "AUS", g, "exports", to_chn + to_row),
                (d, s, "AUS", g, "price_export", price),
                (d, s, "AUS", g, "price_domestic", price),
                (d, s, "CHN", g, "price_export", 5.0),
                (d, s, "CHN", g, "price_domestic", 5.0),
            ]
            frows += [(d, s, g, "AUS", "CHN", to_chn, to_chn * price), (d, s, g, "AUS", "ROW", to_row, to_row * price)]
    for d, s in zip(dates, t, strict=True):
        for c, va in (("CHN", 100.0), ("AUS", 50.0), ("ROW", 80.0)):
            rows += [(d, s, c, "all", "output_loss", 0.0), (d, s, c, "all", "value_added", va)]
    ts = pd.DataFrame(rows, columns=["date", "step", "country", "good", "variable", "value"])
    ts = ts.astype({"country": pd.CategoricalDtype(countries), "good": pd.CategoricalDtype([*goods, "all"])})
    flows = pd.DataFrame(frows, columns=["date", "step", "good", "origin", "destination", "quantity", "value"])
    measures = [
        {"type": "import_ban", "imposer": "CHN", "goods": goods, "targets": ["AUS"], "start": "2020-07-01", "end": None}
    ]
    return ts, flows, measures


def test_overview_of_an_import_ban_shows_the_targets_lost_exports_prices_received_and_redirection():
    ts, flows, measures = import_ban_run()
    fig = F.overview_figure(ts, flows, coercer="CHN", targets=["AUS"], periods=measures)
    ax_a, ax_b, ax_c, ax_d = fig.axes
    titles = [F.panel_title(ax) for ax in fig.axes]
    assert "export revenue" in titles[0] and "receive" in titles[1] and "Redirection" in titles[2]
    # a: revenue falls to 150 x 8 / (200 x 10) = 60% of the first month for both goods.
    revenue = [np.asarray(ln.get_ydata(), float) for ln in data_lines(ax_a)]
    assert len(revenue) == 2 and all(r[0] == pytest.approx(100) and r[-1] == pytest.approx(60) for r in revenue)
    # b: the producer price received falls to 0.8 of the first month.
    assert np.asarray(data_lines(ax_b)[0].get_ydata(), float)[-1] == pytest.approx(0.8)
    # c: exports to CHN (dashed) go to 0; to everyone else (solid) rise to 75% of the first-month total.
    to_chn = [ln for ln in data_lines(ax_c) if ln.get_linestyle() == "--"]
    to_rest = [ln for ln in data_lines(ax_c) if ln.get_linestyle() == "-"]
    assert np.asarray(to_chn[0].get_ydata(), float)[-1] == pytest.approx(0)
    assert np.asarray(to_rest[0].get_ydata(), float)[-1] == pytest.approx(75)
    # Every good of the run is keyed at the top, not only those the coercer has prices for.
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"beef", "wine"}
    assert all(shaded_spans(ax) for ax in fig.axes)
    # kind= overrides what the measures say.
    export_fig = F.overview_figure(ts, flows, coercer="CHN", targets=["AUS"], periods=measures, kind="export")
    assert "CHN prices" in F.panel_title(export_fig.axes[0])


def test_measure_periods_are_trade_measures_merged():
    dates = pd.date_range("2010-01-01", periods=36, freq="MS")
    measures = [
        {"type": "export_quota", "start": "2010-03-01", "end": "2010-06-30"},
        {"type": "export_duty", "start": "2010-06-01", "end": "2010-12-31"},  # overlaps: merged
        {"type": "production_tax", "start": "2010-01-01", "end": None},  # domestic: not shaded
        {"type": "import_ban", "start": "2011-06-01", "end": None},  # to the end of the run
    ]
    spans = F._periods(measures, dates)
    assert spans == [
        (pd.Timestamp("2010-03-01"), pd.Timestamp("2010-12-31")),
        (pd.Timestamp("2011-06-01"), pd.Timestamp("2013-01-01")),
    ]
    assert F._periods([("2009-01-01", "2010-02-01")], dates) == [(dates[0], pd.Timestamp("2010-02-01"))]


def test_measure_sides_match_the_instruments_classifiers():
    from sim.coercion.measures import MEASURE_TYPES
    from sim.coercion.sides import EXPORT_MEASURES, IMPORT_MEASURES, measure_kind

    assert EXPORT_MEASURES == {k for k, v in MEASURE_TYPES.items() if v.classifier["side"] == "export"}
    assert IMPORT_MEASURES == {k for k, v in MEASURE_TYPES.items() if v.classifier["side"] == "import"}
    assert measure_kind([{"type": "import_ban"}, {"type": "import_tariff"}]) == "import"
    assert measure_kind([{"type": "export_quota"}, {"type": "production_quota"}]) == "export"
    assert measure_kind([{"type": "export_ban"}, {"type": "import_ban"}]) == "both"
    assert measure_kind([{"type": "crackdown"}]) == "none" and measure_kind(None) == "none"


@pytest.mark.parametrize("n", [3, 8, 12, 20, 30])
def test_distinct_colours_for_many_goods(n):
    colours = F.distinct_colors(n)
    assert len(colours) == n and len(set(colours)) == n


def test_overview_with_twelve_goods_gives_each_its_own_colour():
    ts, flows = synthetic_run()
    goods = [f"good_{i}" for i in range(12)]
    extra = []
    for g in goods:
        part = ts[(ts["good"] == "ree_light") & (ts["country"] == "CHN")].copy()
        extra.append(part.assign(good=g))
    many = pd.concat([ts.astype({"good": str}), *[e.astype({"good": str}) for e in extra]], ignore_index=True)
    fig = F.overview_figure(many, flows, coercer="CHN", targets=["JPN"], goods=goods)
    key = fig.legends[0]
    colours = [mpl.colors.to_hex(h.get_color()) for h in key.legend_handles]
    assert len(colours) == 12 and len(set(colours)) == 12


def test_output_loss_panel_shows_every_country_with_user_firms_and_says_what_percent_of():
    """USA is no target but has user firms: it is drawn; AUS and KOR have none: named."""
    ts, flows = synthetic_run()
    fig = F.overview_figure(ts, flows, coercer="CHN", targets=["JPN"])
    ax_d = fig.axes[3]
    assert {ln.get_label() for ln in data_lines(ax_d)} == {"JPN", "USA", "CHN (coercer)"}
    assert "no user firms: KOR, AUS" in texts(fig)
    assert "baseline monthly" in ax_d.get_ylabel() and "value added" in ax_d.get_ylabel()
    colours = [mpl.colors.to_hex(ln.get_color()) for ln in data_lines(ax_d)]
    assert len(set(colours)) == len(colours)


def test_draw_run_figure_writes_the_named_figure(minimal_run, tmp_path):
    r = minimal_run
    scenario = {"coercer": r["coercer"], "targets": r["targets"], "goods": [{"id": g} for g in r["goods"]]}
    assert F.run_figure_names(scenario) == ["overview"]
    assert F.run_figure_names({**scenario, "history": "x.csv"}) == ["overview", "history"]
    paths = F.draw_run_figure("overview", r["timeseries"], r["flows"], scenario, tmp_path)
    assert [p.name for p in paths] == ["overview.png", "overview.pdf"]
    with pytest.raises(ValueError, match="unknown figure 'map'"):
        F.draw_run_figure("map", r["timeseries"], r["flows"], scenario, tmp_path)


def test_save_figure_keeps_long_tick_labels_inside_the_png(tmp_path):
    """The tight box is measured at the PNG's resolution: small text hinted at 100 dpi is narrower
    than at 300, and a box measured there cut the first letters off long tick labels."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from sim.reporting.figures import save_figure, style

    with style():
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        ax.plot([1, 2, 3], [0, 1, 2], "o")
        ax.set_yticks([0, 1, 2], ["short", "historical_substitution (10% first)", "x"])
        ax.tick_params(axis="y", labelsize=6)
        (png,) = save_figure(fig, tmp_path / "labels", formats=("png",))
    grey = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert grey[:, :3].min() > 200, "ink in the leftmost columns: a tick label is clipped"
    assert grey[:, :60].min() < 128, "the long label is drawn near the left edge"


def test_pdf_fonts_are_editable_truetype_subsets_without_layout_tables(minimal_run, tmp_path):
    """The PDF embeds its text as Type 42 (TrueType, CIDFontType2 with a ToUnicode map: editable and
    searchable); the subsets leave out the layout tables no PDF viewer reads (ligatures, kerning,
    mark positioning), which were most of a PDF's saving time; Matplotlib's own subsetting is back in
    place after the save."""
    from fontTools.ttLib import TTFont
    from matplotlib.backends import _backend_pdf_ps
    from matplotlib.font_manager import findfont

    original = _backend_pdf_ps.get_glyphs_subset
    r = minimal_run
    fig = F.overview_figure(r["timeseries"], r["flows"], coercer=r["coercer"], targets=r["targets"])
    pdf = F.save_figure(fig, tmp_path / "overview", formats=("pdf",))[0].read_bytes()
    assert _backend_pdf_ps.get_glyphs_subset is original
    assert b"/CIDFontType2" in pdf and b"/FontFile2" in pdf and b"/ToUnicode" in pdf
    assert b"/FontFile3" not in pdf and b"/Type3" not in pdf  # no Type 3 or CFF fonts

    with F.style():
        path = findfont("sans")
    font = TTFont(path)
    gids = {font.getGlyphID(n) for n in ("A", "a", "zero", "percent")}
    with F._subset_without_layout(path, gids) as sub:
        tables = set(sub.font.keys())
        assert {"glyf", "hmtx", "cmap"} <= tables
        assert not tables & set(F._PDF_FONT_DROP_TABLES)
        assert gids <= set(sub.glyph_index_map)  # every glyph asked for keeps a place in the subset
