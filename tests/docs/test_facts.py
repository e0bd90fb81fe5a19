"""Figures the docs derive from the code's defaults stay true: docs/state-machine.md's table of
shipped defaults is `Policy()` (and the handlers' tick interval), and the fencing arithmetic and
the timeline it prints follow from those values. A change of a default fails here, naming the
sentence of the page that has to be rewritten."""

from __future__ import annotations

import re
from dataclasses import fields

from hfo_watchdog.config import Settings
from hfo_watchdog.core.model import Policy
from testsupport.docs import read
from testsupport.tools import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "state-machine.md"
REQUIRED_ENV = {
    "HFO_TABLE_NAME": "hfo-docs",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz",
    "HFO_HMAC_SECRET_ARN": "hfo/hmac",
}
# The thresholds the page's arithmetic and timeline use: each must be in its table.
USED = {
    "heartbeat_interval_s",
    "handover_heartbeat_interval_s",
    "down_probes",
    "down_heartbeat_s",
    "lease_ttl_s",
    "stop_grace_s",
    "prewarm_silence_s",
    "prewarm_hold_s",
    "prewarm_max_per_hour",
    "probe_lease_ttl_s",
    "probe_renew_after_s",
}


def section(text: str, heading: str) -> str:
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"docs/state-machine.md has no heading {heading!r}"
    rest = text[m.end() :]
    nxt = re.search(rf"^#{{1,{len(m.group(1))}}} ", rest, re.M)
    return rest[: nxt.start()] if nxt else rest


def documented_defaults() -> dict[str, float]:
    row = re.compile(r"^\| (`\w+`|tick interval) \| (\d+(?:\.\d+)?)(?: s)? \|$", re.M)
    rows = row.findall(section(read(PAGE), "Shipped defaults"))
    table = {name.strip("`"): float(value) for name, value in rows}
    assert len(table) == len(rows), "a setting is listed twice"
    return table


def shipped() -> tuple[Policy, float]:
    settings = Settings.from_env(REQUIRED_ENV)
    assert settings.policy == Policy(), "the handlers' default policy is Policy()"
    return settings.policy, float(settings.tick_interval_s)


def test_the_table_of_shipped_defaults_is_the_code() -> None:
    table = documented_defaults()
    policy, tick = shipped()
    names = {f.name for f in fields(Policy)}
    assert set(table) >= USED, f"missing from the table: {sorted(USED - set(table))}"
    assert set(table) - {"tick interval"} <= names, f"not Policy fields: {sorted(set(table) - names)}"
    assert table.pop("tick interval") == tick
    wrong = {name: (value, getattr(policy, name)) for name, value in table.items() if getattr(policy, name) != value}
    assert wrong == {}, f"documented vs shipped: {wrong}"


def test_the_fencing_arithmetic_follows_from_the_defaults() -> None:
    p, tick = shipped()
    text = section(read(PAGE), "The fencing arithmetic, with the defaults")
    hb_bound = p.lease_ttl_s + p.stop_grace_s
    assert f"*h* + {hb_bound:g} s" in text
    assert f"*h* + {p.down_heartbeat_s:g} s" in text
    # "this part has passed by at least N s" when DOWN begins
    assert f"has passed by at least {p.down_heartbeat_s - hb_bound:g} s" in text
    renew_bound = p.probe_lease_ttl_s + p.stop_grace_s
    assert f"*T* + {p.probe_lease_ttl_s:g} s; fence deadline *T* + {renew_bound:g} s" in text
    # "the moment the renewal's deadline passes": DOWN after a renewal needs down_probes failed ticks
    assert p.down_probes * tick == renew_bound, "DOWN after a renewal no longer coincides with its deadline"
    assert f"*T* + {p.down_probes * tick:g} s, the moment the renewal's deadline passes" in text


def test_the_death_timeline_follows_from_the_defaults() -> None:
    p, tick = shipped()
    silence = max(p.prewarm_silence_s, 1.5 * p.heartbeat_interval_s)
    text = section(read(PAGE), "The fencing arithmetic, with the defaults")
    # pre-warm: the first failed tick with enough silence; the death comes within one heartbeat of h
    prewarm_row = f"| {silence:g} s to {silence + tick:g} s | the first tick with a failed probe"
    assert f"{prewarm_row} and at least {silence:g} s" in text
    first, last = p.down_heartbeat_s, p.down_heartbeat_s + tick
    assert f"| {first:g} s to {last:g} s | the next tick: two failed probes" in text
    assert p.down_probes == 2
    # "the failover decision comes exactly one tick after a pre-warm start"
    assert silence + tick >= p.down_heartbeat_s and silence + tick < p.down_heartbeat_s + tick
    prewarm = section(read(PAGE), "Pre-warm")
    assert f"({silence:g} s with the defaults" in prewarm
    assert f"at least\n{p.down_heartbeat_s:g} s of silence and two failed probes" in prewarm


def test_the_renewal_coverage_figures_follow_from_the_defaults() -> None:
    settings = Settings.from_env(REQUIRED_ENV)
    p, tick = shipped()
    gap = tick + settings.probe_connect_timeout_s + settings.probe_read_timeout_s
    text = section(read(PAGE), "Renewal on the probe path")
    # "every passing probe renews, and one renewal outlasts the gap to the next tick"
    assert p.probe_renew_after_s == 0, "the page says the default renews at every passing probe"
    assert p.probe_lease_ttl_s > gap
    outlasts = f"`probe_lease_ttl_s` ({p.probe_lease_ttl_s:g} s), which outlasts the gap to the next tick ({tick:g} s"
    assert f"{outlasts} plus the probe's\ntimeouts, {gap:g} s" in text
    # "a renewal at T fences at T + 120 s; DOWN needs two failed probes after T, at T + 120 s at the earliest"
    fence = p.probe_lease_ttl_s + p.stop_grace_s
    assert f"fences the laptop at *T* +\n{fence:g} s" in text
    assert p.down_probes * tick >= fence, "a renewal would delay the failover decision"
    assert f"at *T* + {p.down_probes * tick:g} s at the earliest" in text
