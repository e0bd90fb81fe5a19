from hfo_watchdog.core.model import Policy, Site, SiteRecord
from hfo_watchdog.core.steady import steady_gap_s, steady_since_after


def _record(received_at: float, steady_since: float) -> SiteRecord:
    return SiteRecord(Site.PRIMARY, sent_at=received_at, received_at=received_at, workload="running",
                      epoch_seen=1, ready=True, steady_since=steady_since)  # fmt: skip


def test_the_gap_is_three_heartbeat_intervals():
    assert steady_gap_s(Policy(heartbeat_interval_s=10.0)) == 30.0


def test_a_first_heartbeat_starts_a_run():
    assert steady_since_after(None, 1000.0, 30.0) == 1000.0


def test_two_missed_heartbeats_keep_the_run_a_longer_silence_breaks_it():
    previous = _record(received_at=1000.0, steady_since=400.0)
    assert steady_since_after(previous, 1030.0, 30.0) == 400.0
    assert steady_since_after(previous, 1030.5, 30.0) == 1030.5
