"""`--trace-file FILE`: a user's own outage history, in a small CSV format.

One outage per line, `channel,start,seconds,how` (a header line with these names, blank lines and
`#` comments are allowed):

- channel: `laptop` (the laptop itself), `net` (its internet), `funnel` (the probe's Funnel path)
  or `aws` (its path to the watchdog's Function URL, i.e. its heartbeats);
- start: seconds from the start of the history (a number), or an RFC 3339 time such as
  `2026-11-02T08:14:00Z` (all lines alike; the history then starts 15 minutes before the earliest);
- seconds: how long it lasted (> 0);
- how: for `laptop`, `dead` (power cut, crash, reboot) or `asleep` (suspended, lid closed); for
  the other channels `down`.

The history ends 40 minutes after its last outage. docs/benchmarks.md#your-own-history shows how
an uptime monitor's export converts to it.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from failover.traces import LEAD_S, Outage, Trace, TraceError, build

HEADER = ["channel", "start", "seconds", "how"]
MAX_LINES = 100_000
MAX_SPAN_S = 366 * 86400


def _start(text: str, where: str) -> tuple[float, bool]:
    """(value, is_time): seconds as given, or a timestamp's epoch seconds."""
    try:
        return float(text), False
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(f"{where}: start {text!r} is neither seconds nor an RFC 3339 time") from None
    if stamp.tzinfo is None:
        raise TraceError(f"{where}: start {text!r} needs a time zone (Z or +hh:mm)")
    return stamp.timestamp(), True


def parse(text: str, name: str) -> Trace:
    rows: list[tuple[str, float, float, bool, str]] = []
    kinds: set[bool] = set()
    for n, fields in enumerate(csv.reader(text.splitlines()), 1):
        if n > MAX_LINES:
            raise TraceError(f"{name}: more than {MAX_LINES} lines")
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in fields]
        if [f.lower() for f in fields] == HEADER:
            continue
        where = f"{name}, line {n}"
        if len(fields) != 4:
            raise TraceError(f"{where}: expected 4 fields ({','.join(HEADER)}), got {len(fields)}")
        channel, start_text, seconds_text, how = fields
        if channel not in ("laptop", "net", "funnel", "aws"):
            raise TraceError(f"{where}: channel {channel!r} must be laptop, net, funnel or aws")
        start, is_time = _start(start_text, where)
        kinds.add(is_time)
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise TraceError(f"{where}: seconds {seconds_text!r} is not a number") from None
        if not 0 < seconds <= MAX_SPAN_S:
            raise TraceError(f"{where}: seconds {seconds_text} must be above 0 and at most a year")
        allowed = ("dead", "asleep") if channel == "laptop" else ("down",)
        if how not in allowed:
            raise TraceError(f"{where}: how {how!r} must be {' or '.join(allowed)} for {channel}")
        rows.append((channel, start, seconds, how == "asleep", where))
    if not rows:
        raise TraceError(f"{name}: no outage in the file")
    if len(kinds) > 1:
        raise TraceError(f"{name}: starts mix seconds and times; use one or the other")
    origin = min(r[1] for r in rows) - LEAD_S if kinds == {True} else 0.0
    outages = []
    for channel, start, seconds, asleep, where in rows:
        if start - origin < 0:
            raise TraceError(f"{where}: start must not be negative")
        outages.append(Outage(channel, start - origin, seconds, asleep))
    if max(o.end for o in outages) - min(o.start for o in outages) > MAX_SPAN_S:
        raise TraceError(f"{name}: the history spans more than a year")
    return build(name, f"from {name}: {len(outages)} outage(s)", outages)


def load(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read the trace file {path}: {exc}") from None
    return parse(text, path.name)
