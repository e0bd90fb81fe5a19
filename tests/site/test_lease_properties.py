"""Property: whatever heartbeat answers and renewal grants arrive, in whatever order, the agent never
holds the lease at a time no single accepted-and-current grant allowed (docs/protocol.md#renewal).

Each event is either a heartbeat answer (site, epoch, ttl) with its send time, or a renewal grant
(site, epoch, end). A grant "allows" holding epoch E at time t when it names the agent's site,
epoch E, and t < its end (send time + ttl for an answer). The tracker must never hold at t unless
some event of its current epoch allowed t, never hold an epoch lower than the highest it saw,
and never hold an epoch for which two sites were named."""

from __future__ import annotations

from hfo_protocol.heartbeat import LeaseAnswer
from hfo_site.lease import LeaseTracker
from hypothesis import given, settings
from hypothesis import strategies as st

SITES = ("primary", "standby", "none")

event = st.tuples(
    st.sampled_from(("answer", "grant")),
    st.sampled_from(SITES),
    st.integers(min_value=1, max_value=5),  # epoch
    st.floats(min_value=0.0, max_value=200.0, allow_nan=False),  # send time, or the grant's start
    st.floats(min_value=1.0, max_value=120.0, allow_nan=False),  # ttl
)


@settings(max_examples=400, deadline=None)
@given(st.lists(event, max_size=30), st.sampled_from(("primary", "standby")))
def test_never_holds_past_the_latest_end_a_grant_of_its_epoch_allowed(events, own: str) -> None:  # type: ignore[no-untyped-def]
    tracker = LeaseTracker(own)
    allowed: dict[int, float] = {}  # epoch -> latest end any event naming our site allowed
    sites: dict[int, set[str]] = {}
    highest = 0
    for kind, site, epoch, start, ttl in events:
        if kind == "answer":
            tracker.observe(LeaseAnswer("n" * 16, 0.0, site, epoch, int(ttl), "auto", "healthy", 5), start)
            end = start + int(ttl)
        else:
            if site == "none":
                continue  # the health service only ever passes grants for a site
            tracker.grant(site, epoch, start + ttl, ttl)
            end = start + ttl
        if epoch >= highest:
            sites.setdefault(epoch, set()).add(site)
            if site == own:
                allowed[epoch] = max(allowed.get(epoch, float("-inf")), end)
        highest = max(highest, epoch)
        deadline = tracker.expires_at()
        if deadline is None:
            continue
        assert tracker.view is not None
        held_epoch = tracker.view.epoch
        assert held_epoch == highest, "never a lower epoch than the highest seen"
        assert sites[held_epoch] == {own}, "never an epoch that named another site too"
        assert deadline <= allowed[held_epoch], "never past the latest end a grant of its epoch allowed"
        for t in (deadline - 1e-6, deadline, deadline + 1.0):
            assert tracker.holds(t) == (t < deadline)
