"""The policies compared: ours are the watchdog's own configuration (its defaults, plus overrides
its own rules accept); the seed is the tutorial's 5-minute script."""

from __future__ import annotations

import pytest
from failover import policies
from failover.policies import PolicyError
from hfo_watchdog.core.model import Policy


def test_ours_is_the_shipped_defaults_read_through_the_watchdogs_configuration():
    setup = policies.OURS.setup
    assert setup.policy == Policy()  # the engine's defaults, not a copy
    assert setup.tick_s == 60 and setup.max_skew_s > 0


def test_the_default_run_has_ours_and_the_seed():
    assert policies.DEFAULT_POLICIES[0] == "ours" and policies.DEFAULT_POLICIES[-1] == "seed"
    assert set(policies.DEFAULT_POLICIES) <= set(policies.catalogue())
    assert "ours-hb5" in policies.catalogue()


def test_hb5_changes_only_the_heartbeat_and_the_lease():
    q = policies.HB5.setup.policy
    assert (q.heartbeat_interval_s, q.lease_ttl_s) == (5, 20)
    assert {k: v for k, v in vars(q).items() if k not in ("heartbeat_interval_s", "lease_ttl_s")} == {
        k: v for k, v in vars(Policy()).items() if k not in ("heartbeat_interval_s", "lease_ttl_s")
    }


def test_a_define_makes_a_custom_policy_checked_by_the_watchdogs_rules():
    p = policies.custom(["HFO_DOWN_PROBES=1", "bot.lease_aware=true"])
    assert p.name == "ours-custom" and p.setup.policy.down_probes == 1 and p.setup.lease_aware_bot


@pytest.mark.parametrize(
    ("defines", "message"),
    [
        (["HFO_DOWN_PROBES"], "expected KEY=VALUE"),
        (["HFO_DOWN_PROBES=many"], "HFO_DOWN_PROBES: must be an integer"),
        (["HFO_LEASE_TTL_S=5"], "HFO_LEASE_TTL_S: must be at least 3 x HFO_HEARTBEAT_INTERVAL_S"),
        (["HFO_TABLE_NAME=x"], "not a setting of the watchdog's policy"),
        (["bot.lease_aware=maybe"], "must be true or false"),
        (["speed=11"], "not a setting of the watchdog's policy"),
    ],
)
def test_a_bad_define_says_why(defines, message):
    with pytest.raises(PolicyError) as exc:
        policies.custom(defines)
    assert message in str(exc.value)


def test_descriptions_name_every_setting():
    text = policies.describe(policies.OURS)
    assert all(f"{k}=" in text for k in vars(Policy()))
    assert "5 min" in policies.describe(policies.SEED)
