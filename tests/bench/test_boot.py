"""The boot figures: one file, every stage with a source, refused clearly when wrong; prices from
the project's one price file (tools/cost/prices.toml, through `make cost`'s own code)."""

from __future__ import annotations

import tomllib

import pytest
from failover import boot

TEXT = boot.FIGURES.read_text()


def test_the_shipped_figures_load_with_a_source_for_every_stage():
    f = boot.load()
    assert set(f.stages) == {f"{sec}.{name}" for sec, names in boot.REQUIRED.items() for name in names}
    for stage in f.stages.values():
        assert stage.source.strip() and stage.what.strip()
    b = f.boot
    assert (b.k3s_ready_s[0], b.k3s_ready_s[1]) == (30, 60)  # the range, a node restarting its pods
    assert b.image_changed is False and b.argocd_on_path is False


def test_the_price_is_the_cost_tools_own():
    tool = boot.cost_tool()
    settings, prices = tool.read_settings(), tool.load_prices()
    price = boot.load().price
    assert price.usd_per_hour == prices["regions"][settings.region]["ec2_hour"][settings.instance_type]
    assert (price.instance_type, price.region) == (settings.instance_type, settings.region)
    assert price.cost(3600) == pytest.approx(price.usd_per_hour)


def test_the_idle_month_grows_with_faster_heartbeats():
    assert boot.idle_month_usd(5.0, 60.0) > boot.idle_month_usd(10.0, 60.0) > 0


def test_options_reach_the_model():
    f = boot.load(argocd_on_path=True, image_changed=True)
    assert f.boot.argocd_on_path and f.boot.image_changed
    low, high = f.boot.agent_ready_range()
    assert high - low == 30 and low > boot.load().boot.agent_ready_range()[0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["standby"].pop("os_boot"), "standby.os_boot is missing"),
        (lambda d: d["standby"]["k3s_ready"].update(low=70), "low (70) must not be above high (60)"),
        (lambda d: d["standby"]["ec2_start"].update(seconds=-1), "standby.ec2_start.seconds = -1 is out of range"),
        (lambda d: d["bot"]["stop"].update(seconds=2.5), "bot.stop.seconds must be a whole number"),
        (lambda d: d["pod"]["start"].update(source=" "), "pod.start.source must be a non-empty string"),
        (lambda d: d.pop("pod"), "section [pod] is missing"),
    ],
)
def test_a_bad_figure_is_refused_naming_it(edit, message):
    doc = tomllib.loads(TEXT)
    edit(doc)
    with pytest.raises(boot.FiguresError) as exc:
        boot.parse(doc, boot.ec2_price())
    assert message in str(exc.value)


def test_an_unreadable_file_says_so(tmp_path):
    with pytest.raises(boot.FiguresError, match="cannot read the boot figures"):
        boot.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[standby\n")
    with pytest.raises(boot.FiguresError, match="is not valid TOML"):
        boot.load(bad)
