"""The drill's stand-in bot: the workload a site agent (exec backend) runs while its site holds
the lease. It does one thing a real bot's users would notice: it is running or it is not, and it
writes that down.

    python -m hfo_drill.bot --site primary --ledger /path/to/ledger [--period 1] [--instance bot-a]

Every line it appends to the ledger is `<unix time, ms> <site> <event> <pid>`, followed by
` <instance>` when `--instance` names the bot instance (the drill runs two, each an exec workload
of its own; docs/demo.md):

- `start` as soon as it runs, `run` every `--period` seconds while it runs,
- `stop` when it is told to stop (SIGTERM or SIGINT), then it exits 0.

With a state directory (`HFO_STATE_DIR`, which the exec backend gives a workload that declares one,
docs/site.md#exec-state) it keeps a counter there, in the file `counter`: it reads it at start (0
when missing), adds one for every `start` and `run` line, saves it (write and rename) *before* the
line, and ends each line with ` count=<n>`; a `stop` line carries the count without adding one. So
the count a bot starts from after a move shows how many of the old site's counts the state handoff
carried over (`hfo_drill.ledger.moves`).

A bot killed outright (SIGKILL, the machine dying) writes nothing more: its last line bounds
when it was last seen alive. Each line is one `write()` on a file opened with O_APPEND, so lines
of the two sites' bots never interleave, and nothing sits in a buffer when the bot dies.
`hfo_drill.ledger` reads the ledger back.

Lease-aware like the reference bot (docs/kubernetes.md#lease-aware-bot), with the same client
(`hfo_bot.lease`) and the same settings (`HFO_BOT_LEASE_URL`, which the exec backend's agent passes
to its child, and `HFO_BOT_LEASE_MARGIN_S`, `_TIMEOUT_S`, `_CHECK_S`, `_PAUSE_S`). A `run` line is
the stand-in's "answer": it writes one only while its site holds a lease in date, and it writes its
first line (`start`) only once the agent granted one fresh for more than the margin. After a pause
(a tick later than the pause threshold: SIGSTOP, a suspend) it asks the agent before it writes
anything. Without a lease it writes nothing: its run ends at its last line, as a frozen bot's did,
and when the lease comes back it writes `start` again (a new run of the same pid). A stop signal that
arrives with a thaw (the agent stopped it while it was frozen) writes no `stop` line either: the bot
was not serving between its last line and the thaw.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from types import FrameType

from hfo_bot.config import ConfigError, LeaseSettings, load_lease
from hfo_bot.lease import LeaseBook, LeaseRefused, PauseDetector, fetch_lease, lease_clock

SITES = ("primary", "standby")
EVENTS = ("start", "run", "stop")
INSTANCE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


COUNTER_FILE = "counter"


def ledger_line(at: float, site: str, event: str, pid: int, instance: str = "", count: int | None = None) -> bytes:
    tail = f" {instance}" if instance else ""
    if count is not None:
        tail += f" count={count}"
    return f"{at:.3f} {site} {event} {pid}{tail}\n".encode("ascii")


class Counter:
    """The counter in the state directory: read once at start, saved before every line that counts."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, COUNTER_FILE)
        try:
            with open(self.path, encoding="ascii") as f:
                text = f.read().strip()
        except FileNotFoundError:
            text = "0"
        if not text.isdigit():
            raise ValueError(f"the counter {self.path!r} holds {text[:20]!r}, not a count")
        self.value = int(text)

    def add(self) -> int:
        self.value += 1
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(str(self.value))
        os.replace(tmp, self.path)
        return self.value


def _instance(text: str) -> str:
    if not INSTANCE_RE.match(text):
        raise argparse.ArgumentTypeError(f"must be a lowercase DNS label (a-z, 0-9, '-', e.g. bot-a), got {text!r}")
    return text


def _period(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0.05 to 60, got {text!r}") from None
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be from 0.05 to 60 seconds, got {value:g}")
    return value


class LeaseCheck:
    """The stand-in's lease rule, on hfo_bot's client: ``may_write`` before every ledger line."""

    def __init__(self, settings: LeaseSettings, site: str, period_s: float) -> None:
        assert settings.url is not None
        self.settings = settings
        self.site = site
        self.book = LeaseBook(site, settings.margin_s)
        self.detector = PauseDetector(period_s, settings.pause_s)
        self.next_check = 0.0
        self.reason = ""

    def _ask(self) -> bool:
        assert self.settings.url is not None
        asked_at = lease_clock()
        try:
            answer = fetch_lease(self.settings.url, self.site, self.settings.timeout_s)
        except LeaseRefused as exc:
            self.book.fail(exc.reason)
            granted = False
        else:
            granted = self.book.record(answer, asked_at) is not None
        self.book.expire()
        self.next_check = asked_at + self.settings.check_every_s
        return granted

    def may_write(self, serving: bool) -> bool:
        """True when a line may be written now. A new run (``serving`` False) needs a fresh grant with more than
        the margin left; a run goes on while the grant is in date; a pause always asks the agent first."""
        pause = self.detector.tick()
        if pause is not None:
            self._say(f"pause detected: {pause.describe()}; asking the agent before writing")
        now = lease_clock()
        due = pause is not None or not serving or now >= self.next_check or not self.book.holds(now)
        granted = self._ask() if due else True
        if due:
            self.detector.tick()  # the request's own time is not a pause
        if not granted:
            self._say(f"no lease: {self.book.reason}")
            return serving and pause is None and self.book.holds()  # an error keeps a grant in date, not a pause
        ok = self.book.may_connect() if not serving else self.book.holds()
        if not ok:
            self._say(f"no lease: {self.book.connect_refusal()}")
        return ok

    def served_until_now(self) -> bool:
        """At a stop: was the stand-in serving right up to now? Not if it did not run for a while (a stop that
        arrives with the thaw) or its grant went stale: then its run ended at its last line, not now."""
        return self.detector.check() is None and self.book.holds()

    def _say(self, text: str) -> None:
        if text != self.reason:
            print(f"drill_bot: {text}", file=sys.stderr, flush=True)
            self.reason = text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfo_drill.bot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", required=True, choices=SITES, help="the site this bot runs on")
    parser.add_argument("--ledger", required=True, help="the file to append to (created if missing)")
    parser.add_argument("--period", type=_period, default=1.0, help="seconds between two `run` lines (default 1)")
    parser.add_argument(
        "--instance", type=_instance, default=None, help="the bot instance's name, written on every line (default none)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_lease(dict(os.environ))
    except ConfigError as exc:
        print(f"drill_bot: {exc}", file=sys.stderr)
        return 2
    counter: Counter | None = None
    if os.environ.get("HFO_STATE_DIR"):
        try:
            counter = Counter(os.environ["HFO_STATE_DIR"])
        except (OSError, ValueError) as exc:
            print(f"drill_bot: cannot read its counter: {exc}", file=sys.stderr)
            return 1
    lease = LeaseCheck(settings, args.site, args.period) if settings.url is not None else None
    if lease is None:
        print(
            "drill_bot: not lease-aware (HFO_BOT_LEASE_URL is not set): runs without asking its agent", file=sys.stderr
        )

    try:
        fd = os.open(args.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        print(f"drill_bot: cannot open the ledger {args.ledger!r}: {exc.strerror}", file=sys.stderr)
        return 1
    pid = os.getpid()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    serving = False
    try:
        next_at = time.monotonic()
        while True:
            if lease is None or lease.may_write(serving):
                count = counter.add() if counter is not None else None
                event = "run" if serving else "start"
                os.write(fd, ledger_line(time.time(), args.site, event, pid, args.instance or "", count))
                serving = True
            else:
                serving = False
            next_at = max(next_at + args.period, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))
    except _Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop line, even if signalled twice
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if serving and (lease is None or lease.served_until_now()):
            count = counter.value if counter is not None else None
            os.write(fd, ledger_line(time.time(), args.site, "stop", pid, args.instance or "", count))
        elif serving:
            print("drill_bot: stopped after a pause: no stop line, the run ended at its last line", file=sys.stderr)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
