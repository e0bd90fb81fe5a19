"""`python -m hfo_watchdog.demo` (`make demo`): a real failover drill on an emulated AWS.

It starts the moto server, creates what Terraform would (state table, stopped standby instance,
alert topic, HMAC secret), starts a stand-in for the laptop (a real HTTPS health server with a
throwaway CA, and a site agent heartbeating to the real heartbeat handler), then runs the real
tick handler every second with the policy scaled down, through the story:

    healthy -> laptop dies -> failover (the instance really starts) -> the standby serves
    -> laptop returns -> handback -> the instance is stopped -> the laptop serves again

It prints a timeline and exits 0 only if every milestone was reached in time and two sites never
ran the workload at once; 1 otherwise; 130 on Ctrl-C. Everything it started is stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from hfo_watchdog.demo_aws import DemoResources, MotoProcess, drain_alerts, instance_state, provision
from hfo_watchdog.demo_laptop import HealthServer, SiteAgent, Transport, WorkloadLedger, free_loopback_port

TICK_S = 1.0

# The production defaults scaled down ~60x, within the documented ranges and cross-field rules.
DEMO_POLICY_ENV = {
    "HFO_TICK_INTERVAL_S": "1",
    "HFO_PROBE_CONNECT_TIMEOUT_S": "0.3",
    "HFO_PROBE_READ_TIMEOUT_S": "0.5",
    "HFO_DOWN_PROBES": "2",
    "HFO_DOWN_HEARTBEAT_S": "10",
    "HFO_RECOVERY_PROBES": "3",
    "HFO_RECOVERY_STEADY_S": "4",
    "HFO_HEARTBEAT_INTERVAL_S": "1",
    "HFO_LEASE_TTL_S": "5",
    "HFO_STOP_GRACE_S": "2",
    "HFO_START_COOLDOWN_S": "60",
    "HFO_MIN_STATE_S": "2",
    "HFO_STANDBY_MAX_RUNTIME_S": "600",
    "HFO_MAX_SKEW_S": "30",
    "HFO_AWS_MAX_ATTEMPTS": "2",
}


class StoryFailed(Exception):
    pass


@dataclass
class DemoLambdaContext:
    """The attributes the Lambda runtime's context object has (Powertools reads them)."""

    function_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/hfo-demo"
    log_stream_name: str = "demo"
    _deadline: float = field(default_factory=lambda: time.monotonic() + 30)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_url_event(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """What AWS hands the heartbeat handler for a POST to its Function URL (payload format 2.0)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def in_process_transport(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Transport:
    def send(body: bytes, headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        answer = handler(function_url_event(body, headers), DemoLambdaContext("hfo-heartbeat"))
        return int(answer["statusCode"]), dict(answer.get("headers") or {}), str(answer["body"]).encode("utf-8")

    return send


class Timeline:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self._last_reasons: tuple[str, ...] = ()

    def _stamp(self) -> str:
        return f"+{time.monotonic() - self.t0:5.1f}s"

    def say(self, text: str) -> None:
        self.out.write(f"{self._stamp()}  {text}\n")
        self.out.flush()

    def header(self) -> None:
        self.out.write(
            f"{'time':>7}  {'probe':<22} {'hb primary':>10} {'hb standby':>10}  {'phase':<13} {'lease':<11} "
            f"{'ec2':<9} decision\n"
        )
        self.out.flush()

    def tick(self, r: Mapping[str, Any]) -> None:
        probe = "ok" if r["probe_ok"] else f"FAIL {r['probe_failure']}"

        def age(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}s"

        reasons = tuple(r["reasons"])
        if r["outcome"] != "saved":
            decision = f"{r['outcome']}: {'; '.join(reasons)}"
        elif r["transition"]:
            decision = f"{r['transition']}: {'; '.join(reasons)}"
        elif reasons != self._last_reasons:
            decision = "; ".join(reasons)
        else:
            decision = "."
        self._last_reasons = reasons
        actions = f"  [{', '.join(r['actions'])}]" if r["actions"] else ""
        self.out.write(
            f"{self._stamp()}  {probe:<22} {age(r['primary_age_s']):>10} {age(r['standby_age_s']):>10}  "
            f"{r['phase']:<13} {r['lease_site'] + '#' + str(r['lease_epoch']):<11} {r['instance']:<9} "
            f"{decision}{actions}\n"
        )
        self.out.flush()


class Story:
    """Drives the tick handler on the demo schedule and checks the milestones."""

    def __init__(
        self,
        timeline: Timeline,
        tick: Callable[[], dict[str, Any]],
        session: Any,
        resources: DemoResources,
        primary: SiteAgent,
        health: HealthServer,
        standby: SiteAgent,
        ledger: WorkloadLedger,
    ) -> None:
        self.timeline = timeline
        self._tick = tick
        self.session = session
        self.res = resources
        self.primary = primary
        self.health = health
        self.standby = standby
        self.ledger = ledger
        self.report: dict[str, Any] = {}
        self.leases_seen: list[str] = []
        self.reached: list[str] = []

    def step(self) -> dict[str, Any]:
        started = time.monotonic()
        self.report = self._tick()
        self.timeline.tick(self.report)
        lease = f"{self.report['lease_site']}#{self.report['lease_epoch']}"
        if not self.leases_seen or self.leases_seen[-1] != lease:
            self.leases_seen.append(lease)
        self._standby_follows_ec2(instance_state(self.session, self.res.instance_id))
        for alert in drain_alerts(self.session, self.res.queue_url):
            self.timeline.say(f"   alert delivered: {alert}")
        if self.ledger.overlaps:
            raise StoryFailed(f"two sites ran the workload at once: {self.ledger.overlaps[0]}")
        time.sleep(max(0.0, TICK_S - (time.monotonic() - started)))
        return self.report

    def _standby_follows_ec2(self, state: str) -> None:
        """The standby's agent runs while its instance runs (cloud-init starts K3s and the agent)."""
        if state == "running" and not self.standby.alive:
            self.timeline.say("== standby instance is running: its agent boots and heartbeats")
            self.standby.start()
        elif state in ("stopping", "stopped") and self.standby.alive:
            self.timeline.say(f"== standby instance is {state}: its agent is gone")
            self.standby.kill()

    def until(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.step()
            if done():
                self.reached.append(what)
                self.timeline.say(f"** milestone: {what}")
                return
        raise StoryFailed(f"milestone not reached within {timeout_s:.0f}s: {what}")

    def run(self) -> None:
        r = lambda: self.report  # noqa: E731 - read at call time
        healthy_in_a_row = [0]

        def steady_healthy() -> bool:
            ok = (
                r()["phase"] == "healthy"
                and r()["lease_site"] == "primary"
                and r()["probe_ok"]
                and self.primary.workload == "running"
            )
            healthy_in_a_row[0] = healthy_in_a_row[0] + 1 if ok else 0
            return healthy_in_a_row[0] >= 3

        self.until("healthy: the laptop holds the lease and serves", steady_healthy, 30)
        first_epoch = r()["lease_epoch"]

        self.timeline.say("== the laptop dies: health server down, heartbeats stop, its bot is gone")
        self.health.stop()
        self.primary.kill()
        self.until(
            "failover: lease on the standby, instance running",
            lambda: (
                r()["lease_site"] == "standby"
                and r()["lease_epoch"] > first_epoch
                and instance_state(self.session, self.res.instance_id) == "running"
            ),
            45,
        )
        standby_epoch = r()["lease_epoch"]
        self.until(
            "on standby: the standby serves the bot",
            lambda: r()["phase"] == "on_standby" and self.standby.workload == "running",
            20,
        )
        self.step()  # one more tick on the standby, for the timeline

        self.timeline.say("== the laptop comes back: health server up, its agent heartbeats (bot kept stopped)")
        self.health.start()
        self.primary.revive()
        self.until(
            "handback: lease home on the primary",
            lambda: r()["lease_site"] == "primary" and r()["lease_epoch"] > standby_epoch,
            60,
        )
        self.until(
            "standby instance stopped",
            lambda: instance_state(self.session, self.res.instance_id) == "stopped",
            30,
        )
        self.until("the laptop serves the bot again", lambda: self.primary.workload == "running", 20)
        if not any(lease.startswith("none#") for lease in self.leases_seen):
            # The heartbeat handler may complete the handover between two ticks; the lease answers
            # the agents got are the proof then.
            self.timeline.say("   (the lease went through none between two ticks)")
        refused = self.primary.refused + self.standby.refused
        if refused:
            raise StoryFailed(f"heartbeats were refused: {refused[:3]}")


def _configure_env(moto: MotoProcess, res: DemoResources, health_url: str, ca_path: Path, verbose: bool) -> None:
    os.environ.update(moto.env())
    os.environ.update(DEMO_POLICY_ENV)
    os.environ.update(
        {
            "HFO_TABLE_NAME": res.table,
            "HFO_INSTANCE_ID": res.instance_id,
            "HFO_HEALTH_URL": health_url,
            "HFO_HMAC_SECRET_ARN": res.secret_arn,
            "HFO_SNS_TOPIC_ARN": res.topic_arn,
            "HFO_PROBE_CA_BUNDLE": str(ca_path),
            "HFO_TRACING": "false",
            "POWERTOOLS_SERVICE_NAME": "hfo-demo",
            "POWERTOOLS_LOG_LEVEL": "INFO" if verbose else "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "false" if verbose else "true",
        }
    )
    os.environ.pop("HFO_DISCORD_WEBHOOK_SECRET_ARN", None)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(out: TextIO, verbose: bool = False) -> int:
    import boto3
    import trustme
    from hfo_protocol.keys import Keyring

    timeline = Timeline(out)
    with ExitStack() as stack:
        moto = MotoProcess()
        stack.callback(moto.stop)
        moto.start()
        assert moto.proc is not None
        timeline.say(f"moto server (the AWS emulator) pid {moto.proc.pid} on {moto.endpoint}")
        os.environ.update(moto.env())
        session = boto3.session.Session()
        res = provision(session)
        timeline.say(
            f"created table {res.table}, stopped standby {res.instance_id}, topic {res.topic_arn.rsplit(':', 1)[-1]}, "
            "HMAC secret"
        )

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hfo-demo-")))
        ca = trustme.CA()
        ca_path = tmp / "demo-ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
        port = free_loopback_port()
        health_url = f"https://127.0.0.1:{port}/healthz"
        _configure_env(moto, res, health_url, ca_path, verbose)

        from hfo_watchdog import handlers

        handlers.reset_runtime()
        stack.callback(handlers.reset_runtime)
        keyring = Keyring.from_secret_string(res.secret_text)
        ledger = WorkloadLedger()
        transport = in_process_transport(handlers.heartbeat)
        primary = SiteAgent("primary", keyring, transport, ledger, interval_s=1.0, on_event=timeline.say)
        standby = SiteAgent("standby", keyring, transport, ledger, interval_s=1.0, on_event=timeline.say)
        health = HealthServer(primary, keyring, server_tls, port)
        stack.callback(standby.kill)
        stack.callback(primary.kill)
        stack.callback(health.stop)
        health.start()
        primary.start()
        timeline.say(f"laptop stand-in: health server {health_url} (throwaway CA), agent heartbeating every 1 s")

        def tick() -> dict[str, Any]:
            return handlers.tick(
                {"source": "hfo.demo", "detail-type": "Scheduled Event"}, DemoLambdaContext("hfo-tick")
            )

        timeline.header()
        story = Story(timeline, tick, session, res, primary, health, standby, ledger)
        started = time.monotonic()
        try:
            story.run()
        except StoryFailed as exc:
            timeline.say(f"!! DEMO FAILED: {exc}")
            return 1
        timeline.say(
            f"story complete in {time.monotonic() - started:.0f}s; lease history {' -> '.join(story.leases_seen)}"
        )
        out.write("\nhfo history (what the watchdog recorded, newest first):\n")
        out.flush()
        from hfo_watchdog.cli import main as hfo

        hfo(["--table", res.table, "history", "--limit", "12"], out=out)
        out.write("\nDEMO PASSED: failover and handback played out; never two bots at once.\n")
        out.write("shutting down the laptop stand-in and the AWS emulator\n")
        out.flush()
        primary.quiet()
        standby.quiet()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfo_watchdog.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="also print the handlers' JSON logs and metrics")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(sys.stdout, verbose=args.verbose)
    except KeyboardInterrupt:
        sys.stdout.write("\ninterrupted: everything the demo started has been stopped\n")
        sys.stdout.flush()
        return 130


if __name__ == "__main__":
    sys.exit(main())
