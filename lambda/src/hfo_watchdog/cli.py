"""`hfo`: the operator's command line.

    hfo status | history | pin primary|standby | pause | resume | drill --minutes N | probe URL | doctor

It talks to the real AWS APIs through boto3's standard environment (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL, ...), so it works against the moto server too. The table and the instance come
from --table / --instance-id or HFO_TABLE_NAME / HFO_INSTANCE_ID. Mode changes are conditional
writes of the control item, like every other writer's; the next tick acts on them.

Exit status: 0 done; 1 AWS or state problem (`doctor`: a check failed); 2 bad arguments (nothing
was changed); 3 the probe ran and the primary is not healthy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from hfo_protocol.timefmt import format_ts

from hfo_watchdog.core.model import ControlState, Mode, ProbeResult, SiteRecord, Transition

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNHEALTHY = 0, 1, 2, 3
DEFAULT_SECRET_ENV = "HFO_HMAC_SECRET"  # noqa: S105 - the name of a variable, not a secret
MAX_DRILL_MINUTES = 24 * 60
MAX_HISTORY = 500
_MODE_ATTEMPTS = 5


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be an integer from {low} to {high}, got {value}")
        return value

    return parse


def _bounded_float(low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{what} must be a number from {low} to {high}, got {text}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--secret x` must never be read as --secret-file
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hfo",
        description="Operate the hybrid-failover watchdog: see and steer where the bot runs.",
        epilog="AWS access comes from the standard environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).",
    )
    parser.add_argument("--table", help="state table name (default: $HFO_TABLE_NAME)")
    parser.add_argument("--instance-id", help="standby EC2 instance id (default: $HFO_INSTANCE_ID)")
    parser.add_argument("--region", help="AWS region (default: the standard AWS environment)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    status = sub.add_parser("status", help="mode, lease, phase, last signals, EC2 state")
    status.add_argument("--json", action="store_true", help="print JSON")
    history = sub.add_parser("history", help="recent transitions, newest first")
    history.add_argument(
        "--limit", type=_bounded_int(1, MAX_HISTORY, "--limit"), default=20, help="how many (1-500, default 20)"
    )
    history.add_argument("--json", action="store_true", help="print JSON")
    pin = sub.add_parser("pin", help="keep (or move) the bot on one site; never fail over or back on signals")
    pin.add_argument("site", choices=("primary", "standby"), help="where the bot must run")
    sub.add_parser("pause", help="observe and record, never move the lease or touch EC2")
    sub.add_parser("resume", help="back to automatic failover and handback")
    drill = sub.add_parser("drill", help="a timed failover to the standby that hands back by itself")
    drill.add_argument(
        "--minutes",
        type=_bounded_int(1, MAX_DRILL_MINUTES, "--minutes"),
        required=True,
        help=f"how long the standby holds the lease (1-{MAX_DRILL_MINUTES})",
    )
    probe = sub.add_parser(
        "probe",
        help="probe a health URL once and print the verdict and failure class",
        description=(
            "Probe URL once, exactly as the watchdog does. The shared secret is read from a file "
            f"(--secret-file) or an environment variable (--secret-env, default {DEFAULT_SECRET_ENV}); "
            "never from the command line."
        ),
    )
    probe.add_argument("url", help="https:// URL of the health endpoint, e.g. https://laptop.tailnet.ts.net/healthz")
    probe.add_argument(
        "--ca-bundle",
        help="CA bundle file to verify the endpoint with, instead of the default trust store "
        "(private or test CAs; not for a Funnel URL, whose certificate the default store verifies)",
    )
    group = probe.add_mutually_exclusive_group()
    group.add_argument("--secret-file", help="file holding the shared secret (plain or JSON keyring)")
    group.add_argument("--secret-env", help=f"environment variable holding the secret (default {DEFAULT_SECRET_ENV})")
    probe.add_argument("--connect-timeout", type=_bounded_float(0.1, 30, "--connect-timeout"), default=3.0)
    probe.add_argument("--read-timeout", type=_bounded_float(0.1, 30, "--read-timeout"), default=5.0)
    probe.add_argument("--max-skew", type=_bounded_int(1, 300, "--max-skew"), default=30)
    probe.add_argument("--json", action="store_true", help="print JSON")
    doctor = sub.add_parser(
        "doctor",
        help="check the live deployment for the hazards that break a failover (docs/doctor.md)",
        description=(
            "Compare what Terraform deployed (the root's outputs) with the live AWS account, and probe the "
            "health URL once with the real keyring. One line per check: PASS, WARN, FAIL (with the fix) or "
            "SKIP. Exit status 0 when nothing FAILs, 1 otherwise, 2 on bad arguments. Never prints a secret. "
            "The region is the stack's (from its outputs) unless --region is given."
        ),
    )
    source = doctor.add_mutually_exclusive_group(required=True)
    source.add_argument("--terraform-dir", help="your Terraform root: runs `terraform output -json` there")
    source.add_argument("--outputs", help="a file saved with `terraform output -json > FILE`")
    doctor.add_argument("--terraform", default="terraform", help="the terraform binary (default: terraform on PATH)")
    doctor.add_argument("--no-probe", action="store_true", help="do not probe the health URL")
    doctor.add_argument(
        "--no-registry", action="store_true", help="do not read the images' platforms from their registry"
    )
    doctor.add_argument("--ca-bundle", help="CA bundle to verify the health URL with (private or test CAs only)")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    return parser


# ----------------------------------------------------------------------------- AWS plumbing


def _session(args: argparse.Namespace) -> Any:
    import boto3

    # boto3 reads AWS_DEFAULT_REGION and the profile; AWS_REGION (which the AWS SDKs for other
    # languages and the Lambda runtime use) is honoured too, so either variable works.
    region = args.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if not session.region_name:
        raise CliError(
            "no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)",
            EXIT_USAGE,
        )
    return session


def _table(args: argparse.Namespace) -> str:
    from hfo_watchdog.config import TABLE_NAME_RE

    name = args.table or os.environ.get("HFO_TABLE_NAME", "")
    if not name:
        raise CliError("no state table: pass --table or set HFO_TABLE_NAME", EXIT_USAGE)
    if not TABLE_NAME_RE.match(name):
        raise CliError(f"--table must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got {name!r}", EXIT_USAGE)
    return name


def _instance_id(args: argparse.Namespace) -> str | None:
    from hfo_watchdog.config import INSTANCE_ID_RE

    value = args.instance_id or os.environ.get("HFO_INSTANCE_ID", "")
    if not value:
        return None
    if not INSTANCE_ID_RE.match(value):
        raise CliError(f"--instance-id must be i- followed by 8 or 17 hex digits, got {value!r}", EXIT_USAGE)
    return value


def _store(args: argparse.Namespace, session: Any) -> Any:
    from hfo_watchdog.store import DynamoStateStore

    return DynamoStateStore(session.client("dynamodb"), _table(args), writer="cli")


def _instance_state(args: argparse.Namespace, session: Any) -> str | None:
    instance_id = _instance_id(args)
    if instance_id is None:
        return None
    from hfo_watchdog.ec2 import Ec2StandbyInstance, ec2_client

    client = ec2_client(3, region=session.region_name)
    return Ec2StandbyInstance(client, instance_id, ()).state().value


# ----------------------------------------------------------------------------- formatting


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    delta = now - at
    sign = "ago" if delta >= 0 else "from now"
    delta = abs(delta)
    if delta < 120:
        text = f"{delta:.0f}s"
    elif delta < 7200:
        text = f"{delta / 60:.0f}m"
    elif delta < 172800:
        text = f"{delta / 3600:.1f}h"
    else:
        text = f"{delta / 86400:.1f}d"
    return f"{format_ts(at)} ({text} {sign})"


def _probe_line(p: ProbeResult | None, now: float) -> str:
    if p is None:
        return "no probe yet"
    head = "ok" if p.ok else f"FAILED {p.failure.value if p.failure else 'unknown'}"
    parts = [head]
    if p.http_status is not None:
        parts.append(f"HTTP {p.http_status}")
    if p.latency_ms is not None:
        parts.append(f"{p.latency_ms:.0f} ms")
    if p.detail:
        parts.append(p.detail)
    return f"{', '.join(parts)}; {_ago(p.at, now)}"


def _site_line(r: SiteRecord | None, now: float) -> str:
    if r is None:
        return "no heartbeat yet"
    return (
        f"last heartbeat {_ago(r.received_at, now)}, workload {r.workload}, "
        f"{'ready' if r.ready else 'not ready'}, epoch seen {r.epoch_seen}, "
        f"steady since {_ago(r.steady_since, now)}, {r.count} heartbeats" + _restored_text(r)
    )


def _restored_text(r: SiteRecord) -> str:
    """Which epoch's state each workload of the site restored (docs/state-handoff.md)."""
    if not r.state_restored:
        return ""
    return "; state restored: " + ", ".join(f"{w} from epoch {e}" for w, e in r.state_restored)


def _prewarm_line(state: ControlState, now: float) -> str:
    starts = f"{len(state.prewarm_starts)} start(s) in the last hour"
    if state.warm_until is not None and state.warm_until > now:
        return f"{starts}; kept warm until {_ago(state.warm_until, now)}"
    return starts


def _status_doc(
    state: ControlState, primary: SiteRecord | None, standby: SiteRecord | None, ec2: str | None, now: float
) -> dict[str, Any]:
    def site(r: SiteRecord | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {
            "received_at": format_ts(r.received_at),
            "age_s": round(now - r.received_at, 3),
            "workload": r.workload,
            "ready": r.ready,
            "epoch_seen": r.epoch_seen,
            "steady_since": format_ts(r.steady_since),
            "count": r.count,
            "state_restored": dict(r.state_restored),
        }

    p = state.last_probe
    return {
        "mode": state.mode.value,
        "mode_until": None if state.mode_until is None else format_ts(state.mode_until),
        "phase": state.phase.value,
        "phase_since": format_ts(state.phase_since),
        "lease": {"site": state.lease.site.value, "epoch": state.lease.epoch},
        "lease_changed_at": format_ts(state.lease.changed_at),
        "probe": None
        if p is None
        else {
            "ok": p.ok,
            "failure": None if p.failure is None else p.failure.value,
            "detail": p.detail,
            "http_status": p.http_status,
            "at": format_ts(p.at),
        },
        "probe_ok_streak": state.probe_ok_streak,
        "probe_fail_streak": state.probe_fail_streak,
        "primary": site(primary),
        "standby": site(standby),
        "ec2": ec2,
        "start_count": state.start_count,
        "last_start_at": None if state.last_start_at is None else format_ts(state.last_start_at),
        "armed_at": None if state.armed_at is None else format_ts(state.armed_at),
        "prewarm_starts": [format_ts(at) for at in state.prewarm_starts],
        "warm_until": None if state.warm_until is None else format_ts(state.warm_until),
        "renewed_until": None if state.renewed_until is None else format_ts(state.renewed_until),
        "open_alerts": sorted(state.open_alerts),
        "version": state.version,
        "last_tick_at": None if state.last_tick_at is None else format_ts(state.last_tick_at),
    }


# ----------------------------------------------------------------------------- commands


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    session = _session(args)
    store = _store(args, session)
    instance_id = _instance_id(args)
    state, primary, standby = store.load()
    ec2 = _instance_state(args, session)
    now = time.time()
    if args.json:
        doc = _status_doc(state, primary, standby, ec2, now)
        doc["instance_id"] = instance_id
        doc["initialised"] = state.version > 0
        json.dump(doc, out, indent=2, sort_keys=True)
        out.write("\n")
        return EXIT_OK
    rows = [
        ("mode", state.mode.value + ("" if state.mode_until is None else f" until {_ago(state.mode_until, now)}")),
        ("phase", f"{state.phase.value} since {_ago(state.phase_since, now)}"),
        ("lease", f"{state.lease.site.value} epoch {state.lease.epoch}, changed {_ago(state.lease.changed_at, now)}"),
        ("probe", _probe_line(state.last_probe, now)),
        ("streaks", f"{state.probe_ok_streak} good / {state.probe_fail_streak} failed probes in a row"),
        ("primary", _site_line(primary, now)),
        ("standby", _site_line(standby, now)),
        ("ec2", f"{instance_id} {ec2}" if instance_id else "unknown (pass --instance-id or set HFO_INSTANCE_ID)"),
        (
            "armed",
            "no: waits for the primary's first heartbeat" if state.armed_at is None else _ago(state.armed_at, now),
        ),
        ("starts", f"{state.start_count} by failovers, last {_ago(state.last_start_at, now)}"),
        ("prewarm", _prewarm_line(state, now)),
        (
            "renewal",
            "none"
            if state.renewed_until is None
            else f"primary's lease renewed until {_ago(state.renewed_until, now)}",
        ),
        ("alerts", ", ".join(sorted(state.open_alerts)) or "none open"),
        ("version", f"{state.version}, last tick {_ago(state.last_tick_at, now)}"),
    ]
    if state.version == 0:
        out.write("(no state stored yet: the watchdog has not ticked; showing defaults)\n")
    for name, value in rows:
        out.write(f"{name:<8} {value}\n")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args, _session(args))
    entries = store.history(args.limit)
    restored = store.restored_history(args.limit)
    if args.json:
        doc = [
            {
                "kind": "transition",
                "at": format_ts(e.at),
                "from": e.from_phase,
                "to": e.to_phase,
                "lease_from": {"site": e.from_lease.site.value, "epoch": e.from_lease.epoch},
                "lease_to": {"site": e.to_lease.site.value, "epoch": e.to_lease.epoch},
                "reasons": list(e.reasons),
                "mode": e.mode,
                "ec2": e.instance,
                "by": e.writer,
            }
            for e in entries
        ]
        doc += [
            {
                "kind": "state_restored",
                "at": format_ts(r.at),
                "site": r.site,
                "workload": r.workload,
                "restored_epoch": r.restored_epoch,
                "previous_epoch": r.previous_epoch,
                "lease_epoch": r.lease_epoch,
            }
            for r in restored
        ]
        doc.sort(key=lambda d: str(d["at"]), reverse=True)
        json.dump(doc[: args.limit], out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not entries:
        out.write("no transitions recorded\n")
    if restored:
        out.write("state restored (newest first):\n")
    for r in restored:
        before = "" if r.previous_epoch is None else f" (before: epoch {r.previous_epoch})"
        out.write(
            f"{format_ts(r.at)}  {r.site} restored {r.workload} from epoch {r.restored_epoch}{before}"
            f"  lease epoch {r.lease_epoch}\n"
        )
    if restored and entries:
        out.write("transitions (newest first):\n")
    for e in entries:
        out.write(
            f"{format_ts(e.at)}  {e.from_phase} -> {e.to_phase}  lease {e.from_lease.site.value}#{e.from_lease.epoch}"
            f" -> {e.to_lease.site.value}#{e.to_lease.epoch}  mode {e.mode}  ec2 {e.instance or '-'}  by {e.writer}\n"
        )
        for reason in e.reasons:
            out.write(f"    - {reason}\n")
    return EXIT_OK


def change_mode(
    store: Any, mode: Mode, until: float | None, clock: Callable[[], float] = time.time
) -> tuple[ControlState, bool]:
    """Conditional write of a mode change, retried on a lost race with a fresh read. Returns the
    state and whether it was written (False: the mode already was `mode`, nothing to do)."""
    from hfo_watchdog.core import engine

    for _ in range(_MODE_ATTEMPTS):
        state = store.load_control()
        if state.mode == mode and until is None:
            return state, False
        now = clock()
        try:
            changed = engine.set_mode(state, mode, now, until=until)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        new_state = replace(changed, version=state.version + 1)
        what = f"mode {state.mode.value} -> {mode.value}"
        if until is not None:
            what += f" until {format_ts(until)}"
        transition = Transition(
            from_phase=state.phase,
            to_phase=new_state.phase,
            from_lease=state.lease,
            to_lease=new_state.lease,
            reasons=(f"operator: {what}",),
            at=now,
        )
        if store.save(state.version, new_state, transition):
            return new_state, True
    raise CliError(f"the state kept changing under {_MODE_ATTEMPTS} attempts to write; nothing changed, retry")


def _mode_command(mode: Mode, until_minutes: int | None = None) -> Callable[[argparse.Namespace, TextIO], int]:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        store = _store(args, _session(args))
        until = None if until_minutes is None else time.time() + until_minutes * 60
        state, written = change_mode(store, mode, until)
        if not written:
            out.write(f"mode is already {state.mode.value}; nothing changed\n")
            return EXIT_OK
        line = f"mode is now {state.mode.value}"
        if state.mode_until is not None:
            line += f" until {format_ts(state.mode_until)}"
        out.write(f"{line}; lease {state.lease.site.value} epoch {state.lease.epoch}, phase {state.phase.value}\n")
        out.write("the next tick acts on it\n")
        return EXIT_OK

    return run


def _read_secret(args: argparse.Namespace) -> str:
    if args.secret_file:
        path = Path(args.secret_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--secret-file: cannot read {str(path)!r}: {exc.strerror}", EXIT_USAGE) from None
        source = f"--secret-file {str(path)!r}"
    else:
        name = args.secret_env or DEFAULT_SECRET_ENV
        text = os.environ.get(name, "")
        source = f"environment variable {name}"
        if not text:
            raise CliError(
                f"no shared secret: set {name} or pass --secret-file (secrets are never taken from the command line)",
                EXIT_USAGE,
            )
    if not text.strip():
        raise CliError(f"{source} is empty", EXIT_USAGE)
    return text


def cmd_probe(args: argparse.Namespace, out: TextIO) -> int:
    from hfo_protocol.keys import Keyring

    from hfo_watchdog.config import SettingsError, check_https_url

    try:
        url = check_https_url("URL", args.url)
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise CliError(f"--ca-bundle: {args.ca_bundle!r} is not a readable file", EXIT_USAGE)
    secret = _read_secret(args)
    try:
        keyring = Keyring.from_secret_string(secret)
    except ValueError as exc:
        raise CliError(f"shared secret: {exc}", EXIT_USAGE) from None
    from hfo_watchdog.probe import HttpsProber

    prober = HttpsProber(
        url,
        keyring,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        max_body_bytes=65536,
        ca_bundle=args.ca_bundle,
        max_skew_s=args.max_skew,
    )
    result = prober.probe()
    failure = None if result.failure is None else result.failure.value
    if args.json:
        doc = {
            "url": url,
            "healthy": result.ok,
            "failure": failure,
            "detail": result.detail,
            "http_status": result.http_status,
            "latency_ms": result.latency_ms,
        }
        json.dump(doc, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write(f"url      {url}\n")
        out.write(f"verdict  {'HEALTHY' if result.ok else 'UNHEALTHY'}\n")
        out.write(f"class    {failure or '-'}\n")
        out.write(f"http     {result.http_status if result.http_status is not None else '-'}\n")
        latency = "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"
        out.write(f"latency  {latency}\n")
        out.write(f"detail   {result.detail or '-'}\n")
    return EXIT_OK if result.ok else EXIT_UNHEALTHY


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from hfo_watchdog import doctor

    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise CliError(f"--ca-bundle: {args.ca_bundle!r} is not a readable file", EXIT_USAGE)
    try:
        if args.outputs:
            outputs = doctor.read_outputs_file(Path(args.outputs))
        else:
            outputs = doctor.read_terraform_outputs(Path(args.terraform_dir), args.terraform)
    except doctor.DoctorInputError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    stack_region = outputs["watchdog"].get("region")
    region = args.region or stack_region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if not session.region_name:
        raise CliError("no AWS region: the outputs name none; pass --region", EXIT_USAGE)
    findings = doctor.Doctor(
        outputs, session, probe=not args.no_probe, registry=not args.no_registry, ca_bundle=args.ca_bundle
    ).run()
    out.write(doctor.render_json(findings) if args.json else doctor.render_text(findings))
    return doctor.exit_code(findings)


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "status": cmd_status,
    "history": cmd_history,
    "pause": _mode_command(Mode.PAUSED),
    "resume": _mode_command(Mode.AUTO),
    "probe": cmd_probe,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    if args.command == "pin":
        command = _mode_command(Mode.PIN_PRIMARY if args.site == "primary" else Mode.PIN_STANDBY)
    elif args.command == "drill":
        command = _mode_command(Mode.DRILL, args.minutes)
    else:
        command = COMMANDS[args.command]
    try:
        return command(args, out)
    except CliError as exc:
        sys.stderr.write(f"hfo: error: {exc}\n")
        return exc.code
    except Exception as exc:
        from hfo_watchdog.store import StoreError

        if isinstance(exc, StoreError):
            sys.stderr.write(f"hfo: error: {exc}\n")
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
