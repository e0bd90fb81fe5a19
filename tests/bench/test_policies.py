"""The compared policies are deployable configurations (the watchdog's own cross-field rules)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from failover import policies
from failover.ours import OurPolicy


def test_default_is_the_documented_configuration_and_speed_changes_only_windows():
    d, s = policies.DEFAULT.policy, policies.SPEED.policy
    assert (d.down_probes, d.down_heartbeat_s, d.heartbeat_interval_s, d.lease_ttl_s) == (3, 180, 10, 60)
    changed = {k for k in d.__dataclass_fields__ if getattr(d, k) != getattr(s, k)}
    assert changed == {
        "down_probes",
        "down_heartbeat_s",
        "heartbeat_interval_s",
        "lease_ttl_s",
        "recovery_probes",
        "recovery_steady_s",
    }
    assert policies.DEFAULT.tick_s == policies.SPEED.tick_s == 60
    assert (policies.SEED.tick_s, policies.SEED.name) == (300, "seed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"down_heartbeat_s": 90.0}, r"lease_ttl_s \+ stop_grace_s \+ heartbeat_interval_s \(60 \+ 30 \+ 10\)"),
        ({"lease_ttl_s": 25.0}, r"heartbeat_interval_s \* 3 \(30\) must be at most lease_ttl_s \(25\)"),
        ({"heartbeat_interval_s": 2.5, "lease_ttl_s": 30.0}, "must be whole seconds here"),
    ],
)
def test_a_policy_that_breaks_a_timing_rule_is_refused(change, message):
    bad = OurPolicy("bad", replace(policies.DEFAULT.policy, **change))
    with pytest.raises(ValueError, match=message):
        policies.check_timing(bad)


def test_a_tick_below_the_schedulers_minute_is_refused():
    with pytest.raises(ValueError, match="tick_s 30 is out of range: 60-3600 s"):
        policies.check_timing(replace(policies.DEFAULT, tick_s=30))


def test_descriptions_say_what_each_policy_does():
    assert "down after 1 failed probe(s) AND 60 s without heartbeat" in policies.describe(policies.SPEED)
    assert "no lease" in policies.describe(policies.SEED)
