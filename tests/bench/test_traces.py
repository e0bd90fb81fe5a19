"""Health traces: the channels each outage takes down, the random ones' share and determinism."""

from __future__ import annotations

import random

import pytest
from failover import traces
from failover.traces import LEAD_S, TAIL_S, Outage, TraceError


def test_a_laptop_outage_takes_the_laptop_down_and_nothing_else():
    tr = traces.make("outage-10m", random.Random(0))
    assert tr.incident_at == LEAD_S and tr.duration == LEAD_S + 600 + TAIL_S
    assert tr.down_seconds("laptop") == 600
    assert tr.down_seconds("net") == tr.down_seconds("funnel") == tr.down_seconds("aws") == 0
    assert tr.laptop[LEAD_S - 1] == 1 and tr.laptop[LEAD_S] == 0 and tr.laptop[LEAD_S + 600] == 1
    # Neither signal can reach a dead laptop, and it cannot answer on Discord.
    assert not tr.probe_path(LEAD_S) and not tr.heartbeat_path(LEAD_S) and not tr.laptop_fine(LEAD_S)
    assert not any(tr.asleep)


def test_a_sleep_is_a_laptop_outage_marked_asleep():
    tr = traces.make("sleep-10m", random.Random(0))
    assert tr.down_seconds("laptop") == 600 and sum(tr.asleep) == 600
    assert all(tr.asleep[t] == (not tr.laptop[t]) for t in range(tr.duration))


def test_path_outages_leave_the_laptop_fine():
    funnel = traces.make("funnel-only-30m", random.Random(0))
    t = LEAD_S + 10
    assert not funnel.probe_path(t) and funnel.heartbeat_path(t) and funnel.laptop_fine(t)
    aws = traces.make("heartbeat-only-30m", random.Random(0))
    assert aws.probe_path(t) and not aws.heartbeat_path(t) and aws.laptop_fine(t)


def test_losing_the_internet_takes_both_paths_and_discord():
    tr = traces.make("offline-10m", random.Random(0))
    t = LEAD_S + 10
    assert tr.laptop[t] == 1
    assert not tr.probe_path(t) and not tr.heartbeat_path(t) and not tr.laptop_fine(t)


def test_repeated_outages_are_evenly_spaced():
    tr = traces.make("repeated-90s", random.Random(0))
    assert [(o.start - LEAD_S, o.seconds) for o in tr.outages] == [(i * 900, 90) for i in range(8)]
    assert tr.down_seconds("laptop") == 8 * 90


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_flapping_covers_about_its_rate_and_touches_only_the_funnel(rate):
    span = 6 * 3600
    shares = []
    for seed in range(5):
        tr = traces.flapping("f", random.Random(seed), rate, span)
        assert tr.down_seconds("laptop") == tr.down_seconds("aws") == tr.down_seconds("net") == 0
        assert all(20 <= o.seconds <= 120 for o in tr.outages[:-1])
        shares.append(tr.down_seconds("funnel") / span)
    assert sum(shares) / len(shares) == pytest.approx(rate, rel=0.35)


def test_blips_take_the_whole_network_for_30_to_150_seconds():
    tr = traces.make("blips-10", random.Random(3))
    assert tr.down_seconds("laptop") == 0 and tr.down_seconds("net") > 0
    assert all(o.channels == ("net",) and 30 <= o.seconds <= 150 for o in tr.outages[:-1])


def test_the_same_seed_gives_the_same_trace_and_another_seed_another():
    a = traces.make("flap-20", random.Random("1:flap-20:0"))
    b = traces.make("flap-20", random.Random("1:flap-20:0"))
    c = traces.make("flap-20", random.Random("2:flap-20:0"))
    assert a == b
    assert a.funnel != c.funnel


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: traces.make("nope", random.Random(0)), "unknown trace 'nope'; one of: outage-2m"),
        (lambda: traces.flapping("f", random.Random(0), 0.0), "failure rate 0.0 is out of range"),
        (lambda: traces.flapping("f", random.Random(0), 1.0), "failure rate 1.0 is out of range"),
        (lambda: traces.build("x", "t", []), "trace 'x' needs at least one outage"),
        (lambda: traces.build("x", "t", [Outage(10, 0, ("laptop",))]), "both must be positive"),
        (lambda: traces.build("x", "t", [Outage(10, 5, ("wifi",))]), "must be among laptop, net, funnel, aws"),
        (
            lambda: traces.build("x", "t", [Outage(10, 5, ("funnel",), sleep=True)]),
            "only a laptop outage can be a sleep",
        ),
        (lambda: traces.repeated("x", 300, 300, 2), "must be further apart"),
        (lambda: traces.path_outage("x", "laptop", 60), "must be funnel or aws"),
    ],
)
def test_bad_trace_parameters_are_refused_by_name(build, message):
    with pytest.raises(TraceError, match=message):
        build()
