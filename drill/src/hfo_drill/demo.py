"""`python -m hfo_drill` (`make demo`): the whole system on one machine, no AWS account.

The full drill (docs/demo.md):

- AWS: a moto server; the Terraform example applied to it with the offline provider mirror (or,
  without Terraform, the same resources created directly, and the output says so); the watchdog
  runs on the configuration Terraform gave its functions, read back from the emulator and scaled
  down (one production minute is one drill second);
- the watchdog: the real tick handler every second, the real heartbeat handler behind a real
  HTTPS server that speaks the Lambda Function URL event format;
- the laptop: the real `hfo-site health` behind a TLS proxy standing in for Tailscale Funnel,
  and the real `hfo-site agent` (exec backend) running a stand-in bot that writes a ledger;
- the standby: the real `hfo-site agent`, started when the instance is running in moto.

Story: steady state -> the laptop dies -> failover -> the laptop comes back -> handback -> a
Funnel-only outage that must not fail over. Prints a timeline and a summary (downtime, overlap,
EC2 starts), exits 0 only if the story played out; 1 otherwise; 130 on Ctrl-C. Everything it
started is stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from hfo_drill.lambda_runtime import LambdaContext

TICK_S = 1.0
BOT_PERIOD_S = 1.0
BOOT_DELAY_S = 1.0  # EC2 start (~20 s) + K3s, Argo CD and the Pod (~40 s), / 60


class DrillFailed(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass
class Options:
    verbose: bool = False
    terraform: bool = True
    out_dir: Path | None = None
    boot_delay_s: float = BOOT_DELAY_S


def _tls(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (trustme) and a server context for 127.0.0.1 signed by it."""
    import trustme

    ca = trustme.CA()
    ca_path = tmp / "drill-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    return ca_path, server


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def run(out: TextIO, opts: Options) -> int:
    import boto3

    from hfo_drill.aws_setup import AwsSide, directly, read_functions, with_terraform
    from hfo_drill.function_url import FunctionUrlServer
    from hfo_drill.funnel import FunnelProxy
    from hfo_drill.inbox import AlertInbox
    from hfo_drill.ledger import LedgerTail, by_instance, moves, read, summarize
    from hfo_drill.moto_server import MotoServer
    from hfo_drill.net import free_port
    from hfo_drill.proc import Child, alive
    from hfo_drill.sites import Site, SiteFiles, SiteTiming, site_command
    from hfo_drill.story import Story, StoryFailed, Timeline, Timings, print_summary
    from hfo_drill.terraform import Terraform, TerraformFailed, TerraformUnavailable
    from hfo_drill.timescale import accelerate

    wall = time.monotonic()
    timeline = Timeline(out)
    spawned: list[Child] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hfo-drill-")))
        logs = tmp / "logs"
        logs.mkdir()
        timeline.say(f"work directory {tmp} (removed at the end)")

        def register(child: Child) -> None:
            """Every child is stopped on the way out, the latest first (the sites before the
            Function URL server they talk to, everything before the emulator)."""
            spawned.append(child)
            stack.callback(child.terminate, 3.0)

        def nothing_left() -> None:
            left = [p for c in spawned for p in c.tree() if alive(p)]
            for child in spawned:
                child.kill()
            if left:
                out.write(f"warning: processes left after shutdown were killed: {left}\n")

        stack.callback(nothing_left)  # runs last

        # --- AWS emulator
        moto = MotoServer(extra_env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
        stack.callback(moto.stop)
        moto.start()
        assert moto.proc is not None
        timeline.say(f"moto server (the AWS emulator) pid {moto.proc.pid} on {moto.endpoint}")
        os.environ.update(moto.env())
        session = boto3.session.Session()

        # --- secrets and TLS the sites and the watchdog share
        keyring_text = secrets.token_urlsafe(36)
        ca_path, server_tls = _tls(tmp)
        files = SiteFiles(
            keyring=_private_file(tmp / "hmac-keyring", keyring_text),
            details_token=_private_file(tmp / "details-token", secrets.token_urlsafe(24)),
            ca_bundle=ca_path,
            ledger=(opts.out_dir / "ledger.txt") if opts.out_dir else tmp / "ledger.txt",
            logs=logs,
            # The state containers' bearer token (docs/state-handoff.md#credentials-in-the-pod): the
            # agents serve the holder's state credentials to the restore and sync they run.
            state_token=_private_file(tmp / "state-token", secrets.token_urlsafe(24)),
        )
        files.ledger.unlink(missing_ok=True)

        # --- the Funnel stand-in, in front of the laptop's health port (chosen now, bound later)
        health_port = free_port()
        funnel = FunnelProxy(server_tls, backend_port=health_port)
        stack.callback(funnel.stop)
        funnel.start()
        timeline.say(f"Funnel stand-in {funnel.url} (TLS, throwaway CA) -> laptop health 127.0.0.1:{health_port}")

        # --- the AWS side
        aws: AwsSide
        why_not = ""
        if opts.terraform:
            tf: Terraform | None = None
            try:
                tf = Terraform.locate(tmp / "terraform")
            except TerraformUnavailable as exc:
                why_not = str(exc)
            if tf is not None:
                timeline.say(
                    f"terraform apply of terraform/examples/complete against moto ({tf.binary}, provider mirror "
                    f"{tf.mirror}): about a minute, the AWS provider polls every 10 s"
                )
                try:
                    aws = with_terraform(session, tf, moto.env(), keyring_text, funnel.url, register)
                except TerraformFailed as exc:
                    why_not = f"terraform failed: {exc}"
                    moto.reset()
        else:
            why_not = "--no-terraform was given"
        if why_not:
            timeline.say(f"NOT USING TERRAFORM: {why_not.splitlines()[0]}")
            for line in why_not.splitlines()[1:]:
                out.write(f"    {line}\n")
            timeline.say("creating the same resources directly with boto3 instead (the fallback path)")
            aws = directly(session, keyring_text, funnel.url, why_not.splitlines()[0])
        timeline.say(f"AWS side ready in {aws.seconds:.0f}s: {aws.note}")
        if aws.detail:
            timeline.say(f"   {aws.detail}")
        if aws.state_note:
            timeline.say(f"   {aws.state_note}")
        timeline.say(
            f"   table {aws.table}, standby {aws.instance_id} (stopped), functions {aws.functions['tick']} and "
            f"{aws.functions['heartbeat']}, Function URL {aws.function_url}"
        )

        # --- the watchdog's configuration: what the functions hold, accelerated
        read_functions(session, aws)
        env = aws.env("tick")
        if env != aws.env("heartbeat"):
            timeline.say("   note: the two functions' environments differ; the drill runs both on the tick's")
        fast, changes = accelerate(env)
        timeline.say(
            f"watchdog configuration read back from moto (lambda GetFunctionConfiguration {aws.functions['tick']}), "
            "timings scaled down (one production minute = one drill second):"
        )
        for c in changes:
            out.write(f"    {c.name:<28} {c.before or '-':>6} -> {c.after:<6} {c.why}\n")
        drill_only = {
            "HFO_PROBE_CA_BUNDLE": str(ca_path),  # Funnel has a public certificate; the stand-in a throwaway CA
            "POWERTOOLS_LOG_LEVEL": "INFO" if opts.verbose else "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "false" if opts.verbose else "true",
        }
        out.write(
            "    added for the drill: HFO_PROBE_CA_BUNDLE (the stand-in's CA); logs "
            f"{drill_only['POWERTOOLS_LOG_LEVEL']}{' (--verbose shows them)' if not opts.verbose else ''}\n"
        )
        os.environ.update(fast)
        os.environ.update(drill_only)
        from hfo_watchdog.config import Settings, SettingsError

        try:
            Settings.from_env(os.environ)
        except SettingsError as exc:
            raise DrillFailed(f"the accelerated configuration is refused by the watchdog: {exc}") from None
        # The drill's own tap on the alert topic (Terraform subscribes only an optional e-mail address).
        inbox = AlertInbox(aws.topic_arn, "hfo-drill-alerts-inbox", session=session)

        from hfo_watchdog.handlers import entry_points
        from hfo_watchdog.runtime import Container
        from hfo_watchdog.store import DynamoStateStore

        handlers = entry_points(Container())  # a fresh container, configured from the environment set above
        url_server = FunctionUrlServer(
            handlers.heartbeat,
            lambda: LambdaContext.for_function(aws.configs["heartbeat"]),
            server_tls,
            url_id=aws.url_id,
            region=session.region_name or "us-east-1",
        )
        stack.callback(url_server.stop)
        url_server.start()
        timeline.say(
            f"Function URL stand-in {url_server.url} -> the real heartbeat handler, in this process "
            "(moto cannot invoke without Docker)"
        )

        # --- the sites
        timing = SiteTiming(
            heartbeat_interval_s=float(fast["HFO_HEARTBEAT_INTERVAL_S"]),
            stop_grace_s=float(fast["HFO_STOP_GRACE_S"]),
            bot_period_s=BOT_PERIOD_S,
        )
        primary = Site(
            "primary", files, timing, url_server.url, with_health=True, health_port=health_port, register=register
        )
        standby = Site("standby", files, timing, url_server.url, with_health=False, register=register)
        children = primary.start()
        try:
            primary.wait_ready(30)
        except RuntimeError as exc:
            raise DrillFailed(f"the laptop's processes did not start: {exc}") from None
        timeline.say(
            f"laptop: {' '.join(site_command('health'))} pid {children[0].pid} on 127.0.0.1:{primary.health_port}, "
            f"agent pid {children[1].pid}, bots `python -m hfo_drill.bot --instance <name>` for "
            f"{', '.join(primary.instances)} (exec workloads; ledger {files.ledger})"
        )

        tick_config = aws.configs["tick"]

        def tick() -> dict[str, Any]:
            event = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "id": str(uuid.uuid4())}
            return handlers.tick(event, LambdaContext.for_function(tick_config))

        store = DynamoStateStore(session.client("dynamodb"), aws.table, writer="cli")
        ledger = LedgerTail(str(files.ledger))
        timings = Timings.from_env(fast, bot_period_s=BOT_PERIOD_S, boot_delay_s=opts.boot_delay_s)
        story = Story(
            timeline,
            tick,
            session,
            aws,
            inbox,
            store,
            primary,
            standby,
            funnel,
            url_server,
            ledger,
            timings,
            instances=primary.instances,
        )
        story.state_sync_s = timing.state_sync_s if aws.state_bucket else None
        try:
            story.wait_for_first_bot(30)
            timeline.header()
            story.run()
        except StoryFailed as exc:
            timeline.say(f"!! DRILL FAILED: {exc}")
            _dump(out, spawned)
            return 1

        # --- the verdict, from the ledger and the watchdog's history
        from hfo_watchdog.cli import main as hfo

        history_json = _capture(lambda f: hfo(["--table", aws.table, "history", "--limit", "100", "--json"], out=f))
        # The transitions; with the state handoff on, `hfo history` also lists which epoch's state
        # each site restored (`"kind": "state_restored"`, docs/state-handoff.md#handover-and-rpo).
        history = [h for h in json.loads(history_json) if h.get("kind") != "state_restored"]
        if aws.state_bucket:
            story.fenced_uploads = fenced_upload_check(aws.state_bucket, primary)
        records = read(str(files.ledger))
        summary = summarize(records, period_s=BOT_PERIOD_S)
        verdict = story.verdict(history, summary, by_instance(records, period_s=BOT_PERIOD_S), moves(records))
        out.write("\nhfo history (what the watchdog recorded, newest first):\n")
        hfo(["--table", aws.table, "history", "--limit", "12"], out=out)
        print_summary(out, verdict, summary, story.marks, str(files.ledger))
        seconds = time.monotonic() - wall
        out.write(f"wall time     {seconds:.0f} s (AWS side {aws.seconds:.0f} s, by {aws.how})\n")
        if opts.out_dir is not None:
            extra = {"marks": asdict(story.marks), "function_env": env, "accelerated_env": fast}
            _write_outputs(opts.out_dir, history_json, {**verdict.to_json(), **extra}, aws, seconds, logs)
        if not verdict.passed:
            out.write("\nDRILL FAILED: " + "; ".join(verdict.failures) + "\n")
            return 1
        out.write(
            "\nDRILL PASSED: failover, handback and a Funnel-only outage played out on the real components; "
            "never two bots at once.\n"
        )
        out.write("shutting down the sites, the stand-ins and the AWS emulator\n")
        out.flush()
        return 0


def fenced_upload_check(bucket: str, laptop: Any) -> dict[str, str]:
    """An upload by the laptop under the lease epoch it held before the failover (1), made by hand
    with the state library the sync uses, for each instance: the bucket must refuse it (Fenced),
    whatever the laptop's directory holds. Returns instance -> what happened."""
    from hfo_site.state import Fenced, S3StateStore, publish

    store = S3StateStore(bucket)
    outcome: dict[str, str] = {}
    for name in laptop.instances:
        try:
            publish(store, name, 1, "primary", laptop.state_dir(name))
        except Fenced as exc:
            outcome[name] = f"refused: {exc}"
        except Exception as exc:  # any other answer is a failure the verdict names
            outcome[name] = f"not fenced: {type(exc).__name__}: {exc}"
        else:
            outcome[name] = "ACCEPTED"
    return outcome


def _capture(write: Callable[[Any], int]) -> str:
    import io

    buf = io.StringIO()
    code = write(buf)
    if code != 0:
        raise DrillFailed(f"hfo history failed with exit status {code}")
    return buf.getvalue()


def _dump(out: TextIO, spawned: list[Any]) -> None:
    """On failure: the end of each site process's log, to see why."""
    seen: set[Path] = set()
    for child in spawned:
        if child.log_path is None or child.log_path in seen or not str(child.log_path).endswith(".log"):
            continue
        seen.add(child.log_path)
        out.write(f"\n--- last lines of {child.log_path.name}\n{child.log_tail(12)}\n")
    out.flush()


def _write_outputs(
    out_dir: Path, history_json: str, verdict: dict[str, Any], aws: Any, seconds: float, logs: Path
) -> None:
    (out_dir / "history.json").write_text(history_json)
    doc = {**verdict, "aws": {"how": aws.how, "note": aws.note, "seconds": round(aws.seconds, 1)}, "wall_s": seconds}
    (out_dir / "summary.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    shutil.copytree(logs, out_dir / "logs", dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfo_drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="also print the handlers' JSON logs and metrics")
    parser.add_argument(
        "--no-terraform", action="store_true", help="create the AWS resources directly instead of with Terraform"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="keep the ledger, history.json, summary.json and the logs here"
    )
    args = parser.parse_args(argv)
    if args.out is not None and not args.out.is_dir():
        parser.error(f"--out must be an existing directory, got {str(args.out)!r}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    opts = Options(verbose=args.verbose, terraform=not args.no_terraform, out_dir=args.out)
    try:
        return run(sys.stdout, opts)
    except DrillFailed as exc:
        sys.stdout.write(f"DRILL FAILED: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stdout.write("\ninterrupted: everything the drill started has been stopped\n")
        sys.stdout.flush()
        return 130


if __name__ == "__main__":
    sys.exit(main())
