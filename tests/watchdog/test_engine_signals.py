"""The two signals (hfo_watchdog.core.signals): streaks, thresholds, and the sentences users read."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hfo_watchdog.core.model import ControlState, ProbeFailure
from hfo_watchdog.core.signals import (
    Signals,
    heartbeat_signal,
    probe_signal,
    read_signals,
    record_probe,
    recovery_check,
)
from testsupport.engine import POLICY, T0, fail, ok, rec


def test_probe_streaks_count_in_a_row_and_reset_on_the_other_outcome():
    st = ControlState()
    for _ in range(3):
        st = record_probe(st, fail())
    assert (st.probe_fail_streak, st.probe_ok_streak) == (3, 0)
    st = record_probe(st, ok())
    assert (st.probe_fail_streak, st.probe_ok_streak) == (0, 1)
    assert st.last_probe is not None and st.last_probe.ok


def test_no_probe_this_tick_leaves_streaks_alone():
    st = record_probe(record_probe(ControlState(), fail()), fail())
    assert record_probe(st, None) is st


@pytest.mark.parametrize(
    ("fails", "expected"),
    [(1, "failing"), (2, "failing"), (3, "down"), (7, "down")],
)
def test_probe_signal_is_down_only_after_down_probes_failures(fails, expected):
    st = ControlState()
    for _ in range(fails):
        st = record_probe(st, fail(failure=ProbeFailure.TLS))
    status, reason = probe_signal(st, POLICY)
    assert status == expected
    assert reason == f"probe failed {fails} {'time' if fails == 1 else 'times'} in a row (tls)"


def test_probe_signal_alive_after_one_good_probe_and_unknown_before_any():
    assert probe_signal(ControlState(), POLICY) == ("unknown", "no probe result yet")
    st = record_probe(record_probe(ControlState(), fail()), ok())
    assert probe_signal(st, POLICY) == ("alive", "probe ok (1 in a row)")


@pytest.mark.parametrize(
    ("age", "expected", "reason"),
    [
        (0.0, "alive", "last heartbeat from primary 0 s ago"),
        (179.9, "alive", "last heartbeat from primary 180 s ago"),
        (180.0, "down", "no heartbeat from primary for 180 s"),
        (212.4, "down", "no heartbeat from primary for 212 s"),
    ],
)
def test_heartbeat_signal_threshold_is_down_heartbeat_s(age, expected, reason):
    assert heartbeat_signal(rec(age=age), T0, POLICY) == (expected, reason)


def test_heartbeat_signal_is_down_when_the_primary_never_heartbeated():
    assert heartbeat_signal(None, T0, POLICY) == ("down", "no heartbeat from primary ever received")


@pytest.mark.parametrize(
    ("probe", "heartbeat", "down", "healthy", "troubled", "life"),
    [
        ("alive", "alive", False, True, False, True),
        ("failing", "alive", False, False, True, True),
        ("down", "alive", False, False, True, True),
        ("alive", "down", False, False, True, True),
        ("failing", "down", False, False, True, False),
        ("down", "down", True, False, True, False),
        ("unknown", "alive", False, False, False, True),
        ("unknown", "down", False, False, True, False),
    ],
)
def test_down_needs_both_signals_and_life_needs_one(probe, heartbeat, down, healthy, troubled, life):
    sig = Signals(probe, heartbeat, "p", "h")
    assert (sig.down, sig.healthy, sig.troubled, sig.life) == (down, healthy, troubled, life)


def test_read_signals_reports_the_heartbeat_age():
    sig = read_signals(ControlState(), rec(age=42), T0, POLICY)
    assert sig.heartbeat_age == pytest.approx(42)
    assert read_signals(ControlState(), None, T0, POLICY).heartbeat_age is None


def _recovering(oks: int) -> ControlState:
    return replace(ControlState(), probe_ok_streak=oks, last_probe=ok())


def test_recovery_window_met_lists_what_was_met():
    met, why = recovery_check(_recovering(3), rec(steady_for=200), T0, POLICY)
    assert met
    assert why == ("3 good probes in a row", "heartbeats steady for 200 s", "primary reports ready")


@pytest.mark.parametrize(
    ("oks", "primary", "missing"),
    [
        (2, rec(steady_for=500), "2 of 3 good probes in a row"),
        (3, rec(steady_for=100), "heartbeats steady for 100 s of 180 s"),
        (3, rec(ready=False), "primary does not report ready"),
        (3, rec(age=181), "no heartbeat from primary for 181 s"),
        (3, None, "no heartbeat from primary ever received"),
    ],
)
def test_recovery_window_not_met_says_what_is_missing(oks, primary, missing):
    met, why = recovery_check(_recovering(oks), primary, T0, POLICY)
    assert not met
    assert missing in why
