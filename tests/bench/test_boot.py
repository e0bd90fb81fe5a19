"""The boot figures: one file, every stage with a source, refused clearly when wrong."""

from __future__ import annotations

import copy
import re
import tomllib

import pytest
from failover import boot

DOC = tomllib.loads(boot.FIGURES.read_text())


def test_the_shipped_figures_load_with_a_source_for_every_stage():
    model = boot.load()
    assert set(model.stages) == {f"{sec}.{name}" for sec, names in boot.REQUIRED.items() for name in names}
    for stage in model.stages.values():
        assert stage.source.strip() and stage.what.strip()
    assert model.price.usd_per_hour > 0 and model.price.minimum_billed_s == 60


def test_ec2_start_is_about_twenty_seconds_as_documented():
    assert 15 <= boot.load().ec2_start_s <= 25


def test_derived_paths_add_up_the_stages():
    m = boot.load()
    s = m.s
    assert m.agent_ready_s == s("standby.os_boot") + s("standby.k3s_ready") + s("standby.agent_pod")
    assert m.bot_start_s == s("bot.pod_start") + s("bot.gateway_connect")
    assert m.our_critical_path_s == s("standby.ec2_start") + m.agent_ready_s + m.bot_start_s
    # The seed has no agent: K3s restarts its bot itself once the node is up.
    assert m.seed_bot_ready_s == s("standby.os_boot") + s("standby.k3s_ready") + m.bot_start_s


def test_argocd_counts_only_when_put_on_the_path():
    off, on = boot.load(), boot.load(argocd_on_path=True)
    assert off.stages["standby.argocd_sync"].on_path is False
    assert on.our_critical_path_s - off.our_critical_path_s == off.s("standby.argocd_sync")
    assert on.seed_bot_ready_s - off.seed_bot_ready_s == off.s("standby.argocd_sync")


def test_price_is_per_billed_second():
    price = boot.load().price
    assert price.cost(3600) == pytest.approx(price.usd_per_hour)
    assert price.cost(0) == 0


def _broken(mutate) -> dict:
    doc = copy.deepcopy(DOC)
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["standby"].pop("k3s_ready"), "standby.k3s_ready is missing"),
        (lambda d: d["standby"]["k3s_ready"].update(seconds=2.5), "standby.k3s_ready.seconds must be a whole number"),
        (lambda d: d["bot"]["stop"].update(seconds=-1), "bot.stop.seconds = -1 is out of range: 0-3600 seconds"),
        (lambda d: d["bot"]["stop"].update(seconds=True), "bot.stop.seconds must be a whole number"),
        (lambda d: d["bot"]["pod_start"].update(source="  "), "bot.pod_start.source must be a non-empty string"),
        (
            lambda d: d["standby"]["argocd_sync"].update(on_path="no"),
            "standby.argocd_sync.on_path must be true or false",
        ),
        (lambda d: d["price"].update(usd_per_hour=0), "price.usd_per_hour must be a number in (0, 100]"),
        (lambda d: d.pop("price"), "section [price] is missing"),
        (lambda d: d.pop("bot"), "section [bot] is missing"),
    ],
)
def test_a_wrong_figure_is_refused_by_name(mutate, message):
    with pytest.raises(boot.FiguresError, match="^" + re.escape(message)):
        boot.parse(_broken(mutate))


def test_an_unreadable_or_invalid_file_is_named(tmp_path):
    with pytest.raises(boot.FiguresError, match="cannot read the boot figures"):
        boot.load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[standby\n")
    with pytest.raises(boot.FiguresError, match=r"bad\.toml is not valid TOML"):
        boot.load(bad)
    partial = tmp_path / "partial.toml"
    partial.write_text("[standby]\n")
    with pytest.raises(boot.FiguresError, match=r"partial\.toml: standby\.ec2_start is missing"):
        boot.load(partial)
