"""The lease rules of docs/protocol.md#lease-answer (hfo_site.lease), on explicit monotonic times."""

from __future__ import annotations

from hfo_protocol.heartbeat import LeaseAnswer
from hfo_protocol.nonce import new_nonce
from hfo_site.lease import LeaseTracker, Outcome


def _answer(site: str, epoch: int, ttl: int = 10) -> LeaseAnswer:
    return LeaseAnswer(new_nonce(), 0.0, site, epoch, ttl, "auto", "healthy", 5)


def test_holds_only_its_own_site_and_only_for_ttl_since_the_send_time() -> None:
    tracker = LeaseTracker("primary")
    assert not tracker.holds(0.0)  # nothing heard: nothing held
    assert tracker.observe(_answer("primary", 3, ttl=10), sent_at_mono=100.0) is Outcome.ACCEPTED
    assert tracker.holds(100.0) and tracker.holds(109.999)
    assert not tracker.holds(110.0)  # exactly ttl after the SEND time, however late the answer came
    assert tracker.expires_at() == 110.0
    assert tracker.remaining(104.0) == 6.0


def test_a_late_answer_does_not_stretch_the_lease() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("primary", 3, ttl=10), sent_at_mono=100.0)  # answer arrived at, say, 112
    assert not tracker.holds(112.0)


def test_each_fresh_answer_extends_from_its_own_send_time() -> None:
    tracker = LeaseTracker("standby")
    tracker.observe(_answer("standby", 4), 100.0)
    tracker.observe(_answer("standby", 4), 105.0)
    assert tracker.expires_at() == 115.0
    tracker.observe(_answer("standby", 4), 103.0)  # an older send time never moves the deadline
    assert tracker.expires_at() == 115.0


def test_another_site_or_none_means_not_held() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("primary", 1), 0.0)
    tracker.observe(_answer("none", 2), 1.0)
    assert not tracker.holds(1.5)
    tracker.observe(_answer("standby", 3), 2.0)
    assert not tracker.holds(2.5) and tracker.expires_at() is None


def test_lower_epochs_are_ignored_and_never_renew() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("none", 5), 0.0)
    assert tracker.observe(_answer("primary", 4), 1.0) is Outcome.LOWER_EPOCH
    assert not tracker.holds(1.5)
    assert tracker.highest_epoch == 5
    tracker.observe(_answer("primary", 6), 2.0)
    assert tracker.observe(_answer("primary", 5), 20.0) is Outcome.LOWER_EPOCH
    assert tracker.expires_at() == 12.0  # the ignored answer did not renew


def test_two_sites_for_one_epoch_are_distrusted_until_a_higher_epoch() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("primary", 7), 0.0)
    assert tracker.observe(_answer("standby", 7), 1.0) is Outcome.CONFLICT
    assert not tracker.holds(1.5)
    assert tracker.observe(_answer("primary", 7), 2.0) is Outcome.CONFLICT  # still distrusted
    assert not tracker.holds(2.5)
    assert tracker.observe(_answer("primary", 8), 3.0) is Outcome.ACCEPTED
    assert tracker.holds(3.5)


# --- renewal grants over the probe path (docs/protocol.md#renewal) -----------------------------


def test_a_renewal_grant_extends_the_lease_of_its_epoch_to_its_own_end() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("primary", 7, ttl=30), 100.0)  # heartbeat: until 130
    assert tracker.grant("primary", 7, ends_at=190.0, ttl_s=90) is Outcome.ACCEPTED
    assert tracker.expires_at() == 190.0 and tracker.holds(189.9) and not tracker.holds(190.0)
    # A heartbeat answer of the same epoch never shortens what a renewal granted, and vice versa.
    tracker.observe(_answer("primary", 7, ttl=30), 120.0)
    assert tracker.expires_at() == 190.0
    assert tracker.grant("primary", 7, ends_at=150.0, ttl_s=90) is Outcome.ACCEPTED
    assert tracker.expires_at() == 190.0
    tracker.observe(_answer("primary", 7, ttl=30), 170.0)
    assert tracker.expires_at() == 200.0


def test_a_grant_of_a_lower_epoch_changes_nothing_one_for_another_site_holds_nothing_here() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("primary", 8), 100.0)
    assert tracker.grant("primary", 7, ends_at=500.0, ttl_s=90) is Outcome.LOWER_EPOCH
    assert tracker.expires_at() == 110.0
    assert tracker.grant("standby", 9, ends_at=500.0, ttl_s=90) is Outcome.FOREIGN
    assert not tracker.holds(101.0) and tracker.highest_epoch == 9  # the lease moved on: not ours


def test_a_grant_of_a_higher_epoch_is_held_until_its_end() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("none", 8), 100.0)
    assert tracker.grant("primary", 9, ends_at=180.0, ttl_s=90) is Outcome.ACCEPTED
    assert tracker.highest_epoch == 9 and tracker.holds(179.0) and not tracker.holds(180.0)
    assert tracker.view is not None and tracker.view.ttl_s == 90  # heartbeat pacing sees the TTL


def test_a_grant_never_revives_a_distrusted_epoch() -> None:
    tracker = LeaseTracker("primary")
    tracker.observe(_answer("standby", 7), 0.0)
    assert tracker.grant("primary", 7, ends_at=90.0, ttl_s=90) is Outcome.CONFLICT
    assert not tracker.holds(1.0)
    tracker.observe(_answer("primary", 7), 2.0)
    assert not tracker.holds(3.0)  # still distrusted
    tracker.observe(_answer("primary", 8), 4.0)
    assert tracker.holds(5.0)
