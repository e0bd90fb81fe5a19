"""The benchmark's traces and `--trace-file`: what each outage takes down, sleeps, determinism,
and a user's own history in CSV (refused clearly when wrong)."""

from __future__ import annotations

import random

import pytest
from failover import tracefile, traces
from failover.traces import LEAD_S, TAIL_S, TraceError

ISSUE_TRACES = [
    "outage-2m", "outage-10m", "outage-1h", "return-mid-failover", "sleep-10m", "offline-10m", "flap-5", "flap-20",
    "flap-50", "blips-10", "funnel-only-30m", "heartbeat-only-30m", "repeated-90s", "repeated-4m",
]  # fmt: skip


def test_the_issue_traces_are_all_there_with_sleep_and_wake_cases():
    assert set(ISSUE_TRACES) <= set(traces.CATALOGUE)
    sleeps = [n for n in traces.CATALOGUE if n.startswith("sleep")]
    assert len(sleeps) >= 4
    for name in sleeps:
        tr = traces.make(name, random.Random(0))
        assert tr.outages and all(o.channel == "laptop" and o.asleep for o in tr.outages)


def test_a_laptop_outage_takes_the_laptop_down_and_nothing_else():
    tr = traces.make("outage-10m", random.Random(0))
    assert tr.incident_at == LEAD_S and tr.duration == LEAD_S + 600 + TAIL_S
    assert tr.down_spans("laptop") == [(LEAD_S, LEAD_S + 600, False)]
    assert tr.down_spans("net") == tr.down_spans("funnel") == tr.down_spans("aws") == []
    assert not tr.laptop_fine(LEAD_S) and tr.laptop_fine(LEAD_S + 600)


def test_path_outages_leave_the_laptop_fine():
    for name, channel in (("funnel-only-30m", "funnel"), ("heartbeat-only-30m", "aws")):
        tr = traces.make(name, random.Random(0))
        assert [o.channel for o in tr.outages] == [channel] and tr.laptop_fine(LEAD_S + 10)


@pytest.mark.parametrize(("name", "rate"), [("flap-5", 0.05), ("flap-20", 0.2), ("flap-50", 0.5), ("blips-10", 0.1)])
def test_random_traces_cover_about_their_share_and_repeat_from_their_seed(name, rate):
    a, b = traces.make(name, random.Random(3)), traces.make(name, random.Random(3))
    assert a == b and a != traces.make(name, random.Random(4))
    channel = a.outages[0].channel
    down = sum(e - s for s, e, _ in a.down_spans(channel))
    assert abs(down / (6 * 3600) - rate) < 0.1


def test_an_unknown_trace_names_the_known_ones():
    with pytest.raises(TraceError, match="unknown trace 'nope'; one of: outage-2m"):
        traces.make("nope", random.Random(0))


def test_a_trace_file_in_seconds():
    tr = tracefile.parse("channel,start,seconds,how\n# a comment\nlaptop,1000,600,asleep\n\nnet,3000,90,down\n", "mine")
    assert [(o.channel, o.start, o.seconds, o.asleep) for o in tr.outages] == [
        ("laptop", 1000, 600, True),
        ("net", 3000, 90, False),
    ]
    assert tr.duration == 3090 + TAIL_S and tr.name == "mine"


def test_a_trace_file_in_times_starts_fifteen_minutes_before_the_first_outage():
    tr = tracefile.parse("aws,2026-11-02T09:00:00Z,60,down\nlaptop,2026-11-02T08:00:00+00:00,30,dead\n", "t")
    assert [(o.channel, o.start) for o in tr.outages] == [("laptop", LEAD_S), ("aws", LEAD_S + 3600)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wifi,0,10,down", "line 1: channel 'wifi' must be laptop, net, funnel or aws"),
        ("laptop,0,10,down", "line 1: how 'down' must be dead or asleep for laptop"),
        ("net,0,10,asleep", "line 1: how 'asleep' must be down for net"),
        ("net,soon,10,down", "start 'soon' is neither seconds nor an RFC 3339 time"),
        ("net,2026-11-02T08:00:00,10,down", "needs a time zone"),
        ("net,0,0,down", "seconds 0 must be above 0"),
        ("net,0,10", "expected 4 fields"),
        ("net,0,10,down\naws,2026-11-02T08:00:00Z,5,down", "mix seconds and times"),
        ("# nothing\n", "no outage in the file"),
        ("laptop,0,100,dead\nlaptop,50,100,asleep", "mix asleep and dead"),
    ],
)
def test_a_bad_trace_file_is_refused_naming_the_line(text, message):
    with pytest.raises(TraceError) as exc:
        tracefile.parse(text, "mine.csv")
    assert message in str(exc.value)


def test_an_unreadable_trace_file_says_so(tmp_path):
    with pytest.raises(TraceError, match="cannot read the trace file"):
        tracefile.load(tmp_path / "missing.csv")
