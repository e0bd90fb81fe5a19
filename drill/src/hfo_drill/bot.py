"""The drill's stand-in bot: the workload a site agent (exec backend) runs while its site holds
the lease. It does one thing a real bot's users would notice: it is running or it is not, and it
writes that down.

    python -m hfo_drill.bot --site primary --ledger /path/to/ledger [--period 1]

Every line it appends to the ledger is `<unix time, ms> <site> <event> <pid>`:

- `start` as soon as it runs, `run` every `--period` seconds while it runs,
- `stop` when it is told to stop (SIGTERM or SIGINT), then it exits 0.

A bot killed outright (SIGKILL, the machine dying) writes nothing more: its last line bounds
when it was last seen alive. Each line is one `write()` on a file opened with O_APPEND, so lines
of the two sites' bots never interleave, and nothing sits in a buffer when the bot dies.
`hfo_drill.ledger` reads the ledger back.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType

SITES = ("primary", "standby")
EVENTS = ("start", "run", "stop")


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def ledger_line(at: float, site: str, event: str, pid: int) -> bytes:
    return f"{at:.3f} {site} {event} {pid}\n".encode("ascii")


def _period(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0.05 to 60, got {text!r}") from None
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be from 0.05 to 60 seconds, got {value:g}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfo_drill.bot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", required=True, choices=SITES, help="the site this bot runs on")
    parser.add_argument("--ledger", required=True, help="the file to append to (created if missing)")
    parser.add_argument("--period", type=_period, default=1.0, help="seconds between two `run` lines (default 1)")
    args = parser.parse_args(argv)

    try:
        fd = os.open(args.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        print(f"drill_bot: cannot open the ledger {args.ledger!r}: {exc.strerror}", file=sys.stderr)
        return 1
    pid = os.getpid()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        os.write(fd, ledger_line(time.time(), args.site, "start", pid))
        next_at = time.monotonic() + args.period
        while True:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += args.period
            os.write(fd, ledger_line(time.time(), args.site, "run", pid))
    except _Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop line, even if signalled twice
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.write(fd, ledger_line(time.time(), args.site, "stop", pid))
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
