"""Reads the drill bots' ledger (`hfo_drill.bot`) back into what a user cares about:
when a bot ran, how long no bot ran (downtime), and whether two ever ran at once (overlap).

A run is one bot process: from its `start` line to its `stop` line. A run with no `stop` line
was killed (or is still running); it is known alive up to its last line, and may have lived up
to one period longer. Each figure takes the side that makes it worse, so both are upper bounds:

- downtime counts a killed run as ending at its last line;
- overlap counts it as ending one period after its last line.

Pure functions over text: the drill and its test read the same file with the same code, and the
test also checks the figures against what it saw itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hfo_drill.bot import EVENTS, INSTANCE_RE, SITES


class LedgerError(ValueError):
    """A line that is not `<time> <site> <event> <pid> [<instance>] [count=<n>]`; names the line and what is wrong."""


@dataclass(frozen=True)
class Record:
    at: float
    site: str
    event: str
    pid: int
    instance: str = ""  # the bot instance (`--instance`), "" for a bot that names none
    count: int | None = None  # the counter in its state directory (`count=<n>`), None for a bot without one


@dataclass(frozen=True)
class Run:
    site: str
    pid: int
    start: float
    last: float  # time of its last line
    stopped: bool  # ended with a `stop` line (an orderly stop), else killed or still running
    instance: str = ""

    def end(self, period_s: float, *, pessimistic_for_overlap: bool) -> float:
        if self.stopped or not pessimistic_for_overlap:
            return self.last
        return self.last + period_s


@dataclass(frozen=True)
class Gap:
    start: float
    end: float
    before: str | None  # the site whose bot ran just before, None at the start
    after: str | None  # the site whose bot ran just after, None when nothing ran again

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Overlap:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Summary:
    runs: tuple[Run, ...]
    window: tuple[float, float]  # first start .. last line of the ledger
    gaps: tuple[Gap, ...]  # every stretch of the window with no bot running
    overlaps: tuple[Overlap, ...]
    period_s: float
    starts: dict[str, int] = field(default_factory=dict)  # runs per site

    @property
    def downtime_s(self) -> float:
        return sum(g.seconds for g in self.gaps)

    @property
    def overlap_s(self) -> float:
        return sum(o.seconds for o in self.overlaps)


def parse(text: str) -> list[Record]:
    """Every line of the ledger, in file order. A partial last line (a bot killed in the middle
    of a write cannot produce one, but a reader racing a writer can see one) is ignored."""
    records: list[Record] = []
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]
    del tail  # no newline yet: being written
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        parts = line.split()
        count: int | None = None
        if len(parts) > 4 and parts[-1].startswith("count="):
            count_text = parts.pop()[len("count=") :]
            if not count_text.isdigit():
                raise LedgerError(f"ledger line {number}: count {count_text!r} is not a non-negative integer")
            count = int(count_text)
        if len(parts) not in (4, 5):
            raise LedgerError(
                f"ledger line {number}: expected '<time> <site> <event> <pid> [<instance>] [count=<n>]', got {line!r}"
            )
        at_text, site, event, pid_text = parts[:4]
        instance = parts[4] if len(parts) == 5 else ""
        if instance and not INSTANCE_RE.match(instance):
            raise LedgerError(f"ledger line {number}: instance {instance!r} is not a lowercase DNS label")
        try:
            at = float(at_text)
        except ValueError:
            raise LedgerError(f"ledger line {number}: time {at_text!r} is not a number of seconds") from None
        if site not in SITES:
            raise LedgerError(f"ledger line {number}: site {site!r} is not one of {', '.join(SITES)}")
        if event not in EVENTS:
            raise LedgerError(f"ledger line {number}: event {event!r} is not one of {', '.join(EVENTS)}")
        if not pid_text.isdigit() or int(pid_text) <= 0:
            raise LedgerError(f"ledger line {number}: pid {pid_text!r} is not a positive integer")
        records.append(Record(at, site, event, int(pid_text), instance, count))
    return records


def runs(records: Iterable[Record]) -> list[Run]:
    """One run per bot process, in start order. A process's lines without a `start` line (the
    ledger was cut) start at its first line."""
    open_runs: dict[int, Run] = {}
    done: list[Run] = []
    for r in sorted(records, key=lambda r: r.at):
        current = open_runs.get(r.pid)
        if r.event == "start" or current is None or current.site != r.site:
            if current is not None:
                done.append(current)  # the pid was reused: the old run ended at its last line
            current = Run(r.site, r.pid, r.at, r.at, False, r.instance)
        current = Run(
            current.site, current.pid, current.start, max(current.last, r.at), r.event == "stop", current.instance
        )
        if current.stopped:
            done.append(current)
            open_runs.pop(r.pid, None)
        else:
            open_runs[r.pid] = current
    done.extend(open_runs.values())
    return sorted(done, key=lambda run: (run.start, run.pid))


def _merge(intervals: Iterable[tuple[float, float, str]]) -> list[tuple[float, float, str, str]]:
    """Union of intervals: (start, end, first site, last site) per connected piece."""
    merged: list[tuple[float, float, str, str]] = []
    for start, end, site in sorted(intervals):
        if merged and start <= merged[-1][1]:
            s, e, first, last = merged[-1]
            merged[-1] = (s, max(e, end), first, site if end >= e else last)
        else:
            merged.append((start, end, site, site))
    return merged


def summarize(records: Sequence[Record], *, period_s: float) -> Summary:
    """Downtime and overlap over the window from the first bot's start to the ledger's last line.
    `period_s` is the bots' `--period` (how much longer a killed bot may have lived)."""
    all_runs = runs(records)
    if not all_runs:
        return Summary((), (0.0, 0.0), (), (), period_s)
    window = (all_runs[0].start, max(r.last for r in all_runs))

    # Downtime: the stretches of the window that no run covers, runs ending at their last line.
    covered = _merge((r.start, r.end(period_s, pessimistic_for_overlap=False), r.site) for r in all_runs)
    gaps = tuple(
        Gap(end, start, last_site, first_site)
        for (_, end, _, last_site), (start, _, first_site, _) in itertools.pairwise(covered)
        if start > end
    )

    # Overlap: any instant covered by runs of both sites, killed runs extended by one period.
    per_site = {
        site: _merge(
            (r.start, r.end(period_s, pessimistic_for_overlap=True), r.site) for r in all_runs if r.site == site
        )
        for site in SITES
    }
    overlaps: list[Overlap] = []
    for a_start, a_end, _, _ in per_site[SITES[0]]:
        for b_start, b_end, _, _ in per_site[SITES[1]]:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if end > start:
                overlaps.append(Overlap(start, end))
    starts = {site: sum(1 for r in all_runs if r.site == site) for site in SITES}
    return Summary(tuple(all_runs), window, gaps, tuple(sorted(overlaps, key=lambda o: o.start)), period_s, starts)


def instances(records: Iterable[Record]) -> list[str]:
    """The bot instances named in the ledger, sorted ("" for bots that name none)."""
    return sorted({r.instance for r in records})


def by_instance(records: Sequence[Record], *, period_s: float) -> dict[str, Summary]:
    """One summary per bot instance: its own downtime, failover and handback gaps, and its own overlap
    (the instance running on both sites at once). `summarize` over all records answers for the site as a
    whole: downtime only when no instance ran, overlap when any two bots ran on the two sites at once."""
    return {
        name: summarize([r for r in records if r.instance == name], period_s=period_s) for name in instances(records)
    }


@dataclass(frozen=True)
class Move:
    """One bot instance's state crossing from one run to the next (a failover, a handback, a restart):
    how many of the old run's counts the new run found, and how much serving time that was.

    ``last`` is the old run's highest count; ``restored`` the count the new run started from (its
    `start` line's count minus one). ``lost`` = last - restored, never below 0 (a bot killed between
    saving a count and writing its line starts one above its last line). ``lost_s``: from the line
    that carried count ``restored`` (the last state that made it over) to the old run's last line,
    0 when nothing was lost; an upper bound of the work lost, like the downtime. ``planned``: the
    old run ended with a `stop` line (an orderly stop: the final upload was due, so RPO 0 is
    promised); else it was killed (the crash bound applies)."""

    instance: str
    before: str  # the old run's site
    after: str  # the new run's site
    at: float  # the new run's start
    last: int
    restored: int
    lost: int
    lost_s: float
    planned: bool


def moves(records: Sequence[Record]) -> list[Move]:
    """Every move of every instance's counter, in time order: consecutive runs of one instance whose
    lines carry counts. Runs without counts (a bot without a state directory) have none."""
    found: list[Move] = []
    for name in instances(records):
        mine = [r for r in records if r.instance == name]
        counted = [r for r in mine if r.count is not None]
        if not counted:
            continue
        by_run: list[tuple[Run, list[Record]]] = []
        for run in runs(mine):
            lines = sorted(
                (r for r in counted if r.pid == run.pid and r.site == run.site and run.start <= r.at <= run.last),
                key=lambda r: r.at,
            )
            if lines:
                by_run.append((run, lines))
        for (old, old_lines), (new, new_lines) in itertools.pairwise(by_run):
            first = new_lines[0]
            assert first.count is not None
            restored = first.count - 1 if first.event == "start" else first.count
            last = max(r.count for r in old_lines if r.count is not None)
            lost = max(0, last - restored)
            lost_s = 0.0
            if lost:
                carried = [r for r in counted if r.count is not None and r.count <= restored and r.at <= old.last]
                since = max((r.at for r in carried), default=old.start)
                lost_s = max(0.0, old.last - since)
            found.append(Move(name, old.site, new.site, new.start, last, restored, lost, lost_s, old.stopped))
    return sorted(found, key=lambda m: (m.at, m.instance))


def read(path: str) -> list[Record]:
    with open(path, encoding="ascii") as f:
        return parse(f.read())


class LedgerTail:
    """Follows the ledger while the bots write it: `poll()` reads the lines added since the last
    call (a line still being written waits for the next call)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: list[Record] = []
        self._offset = 0
        self._partial = ""

    def poll(self) -> list[Record]:
        try:
            with open(self.path, encoding="ascii") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        cut = text.rfind("\n") + 1
        self._partial = text[cut:]
        new = parse(text[:cut])
        self.records.extend(new)
        return new

    def running(self, now: float, period_s: float) -> list[str]:
        """Sites whose bot is running now: a run without a `stop` line whose last line is recent
        (within 1.5 periods, plus half a second for a loaded machine)."""
        fresh = now - 1.5 * period_s - 0.5
        return sorted({r.site for r in runs(self.records) if not r.stopped and r.last >= fresh})

    def running_instances(self, now: float, period_s: float) -> set[tuple[str, str]]:
        """(site, instance) of every bot running now, by the rule of `running`."""
        fresh = now - 1.5 * period_s - 0.5
        return {(r.site, r.instance) for r in runs(self.records) if not r.stopped and r.last >= fresh}

    def poll_all(self) -> list[Record]:
        """Every complete line read so far, after reading what is new."""
        self.poll()
        return list(self.records)
