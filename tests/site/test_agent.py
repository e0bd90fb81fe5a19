"""The site agent as a real ``hfo-site agent`` process (exec backend, a real child) against the
stand-in watchdog over HTTPS (hfo_site.agent)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hfo_site.agent_status import parse_status
from testsupport.kube_apiserver import ControlPlane, apply_site
from testsupport.net import free_port, wait_until
from testsupport.site_helpers import (
    SiteProcess,
    health_ports,
    metric_value,
    pid_alive,
    request,
    runs,
    workload_command,
    write_workload,
)
from testsupport.site_watchdog import StandInWatchdog

pytestmark = pytest.mark.network

INTERVAL = 0.2
TTL = 1  # seconds, the smallest the protocol allows (integer)
GRACE = 0.5


class Agent:
    def __init__(self, proc: SiteProcess, out: Path, metrics_port: int) -> None:
        self.proc = proc
        self.out = out
        self.metrics_port = metrics_port

    def running(self) -> bool:
        current = runs(self.out)
        return bool(current) and not current[-1].terminated and pid_alive(current[-1].pid)

    def metrics(self) -> str:
        return request(self.metrics_port, "/metrics").body.decode()


def agent_env(
    tmp: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path, site: str = "primary", **extra: str
) -> tuple[dict[str, str], Path, int]:
    out = tmp / f"{site}-runs.log"
    metrics_port = free_port()
    env = {
        "HFO_SITE": site,
        "HFO_HMAC_SECRET_FILE": str(secret_file),
        "HFO_HEARTBEAT_URL": watchdog.url,
        "HFO_HEARTBEAT_INTERVAL_S": str(INTERVAL),
        "HFO_HEARTBEAT_TIMEOUT_S": str(INTERVAL),
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": workload_command(write_workload(tmp), out),
        "HFO_STOP_GRACE_S": str(GRACE),
        "HFO_CA_BUNDLE": str(ca_bundle),
        "HFO_AGENT_BIND": "127.0.0.1",
        "HFO_AGENT_METRICS_PORT": str(metrics_port),
        "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{free_port()}/agent-status",  # nobody listens: harmless
        **extra,
    }
    return env, out, metrics_port


@pytest.fixture
def start_agent(tmp_path: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path) -> Iterator[callable]:
    started: list[SiteProcess] = []

    def start(site: str = "primary", **extra: str) -> Agent:
        watchdog.update(ttl_s=TTL, heartbeat_interval_s=1)
        env, out, port = agent_env(tmp_path, watchdog, secret_file, ca_bundle, site, **extra)
        proc = SiteProcess("agent", env, tmp_path / f"agent-{site}.log").start()
        started.append(proc)
        proc.wait_http(port, "/livez")
        return Agent(proc, out, port)

    yield start
    for proc in started:
        proc.terminate()


def test_starts_the_workload_once_it_holds_the_lease_and_reports_it(start_agent, watchdog: StandInWatchdog) -> None:
    agent = start_agent()
    wait_until(agent.running, timeout=5, what="workload running")
    wait_until(lambda: watchdog.accepted("primary")[-1].heartbeat.workload == "running", timeout=3, what="reported")
    last = watchdog.accepted("primary")[-1].heartbeat
    assert last.epoch_seen == 1 and last.ready
    seqs = [r.heartbeat.seq for r in watchdog.accepted("primary")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    text = agent.metrics()
    assert metric_value(text, "hfo_agent_lease_held") == 1
    assert metric_value(text, "hfo_agent_lease_epoch") == 1
    assert metric_value(text, "hfo_agent_lease_info", {"lease_site": "primary"}) == 1
    assert metric_value(text, "hfo_agent_lease_info", {"lease_site": "standby"}) == 0
    assert metric_value(text, "hfo_agent_workload_state", {"state": "running"}) == 1
    assert request(agent.metrics_port, "/readyz").status == 200
    assert len(runs(agent.out)) == 1  # started once, kept running


def test_lease_moving_away_stops_the_workload_and_the_stop_is_reported(start_agent, watchdog: StandInWatchdog) -> None:
    agent = start_agent()
    wait_until(agent.running, timeout=5, what="workload running")
    moved = time.time()
    epoch = watchdog.set_lease("none")
    wait_until(lambda: not agent.running(), timeout=3, what="workload stopped")
    assert runs(agent.out)[-1].terminated  # asked politely with SIGTERM
    assert runs(agent.out)[-1].end - moved < INTERVAL * 3 + GRACE
    wait_until(
        lambda: any(
            r.heartbeat.workload == "stopped" and r.heartbeat.epoch_seen == epoch for r in watchdog.accepted("primary")
        ),
        timeout=3,
        what="stopped reported with the new epoch",
    )
    watchdog.set_lease("primary")
    wait_until(agent.running, timeout=5, what="restarted on the new lease")
    assert len(runs(agent.out)) == 2


def test_refused_heartbeats_self_fence_within_the_ttl(start_agent, watchdog: StandInWatchdog) -> None:
    agent = start_agent()
    wait_until(agent.running, timeout=5, what="workload running")
    watchdog.update(unavailable=True)  # the watchdog refuses every heartbeat from now on
    cut = time.time()
    last_ok = watchdog.accepted("primary")[-1].received_at
    wait_until(lambda: not agent.running(), timeout=TTL + GRACE + 3, what="self-fence")
    run = runs(agent.out)[-1]
    assert run.terminated
    assert run.end - last_ok <= TTL + 0.35  # fenced by the lease deadline, not by luck
    assert run.end - cut >= TTL - 2 * INTERVAL - 0.1  # and not before the lease ran out
    assert metric_value(agent.metrics(), "hfo_agent_self_fences_total") == 1
    assert any(r.get("msg") == "lease expired without a fresh answer: self-fencing" for r in agent.proc.log_records())
    time.sleep(TTL)
    assert not agent.running()  # stays fenced while refused


def test_a_silent_watchdog_gets_the_workload_fenced_within_the_ttl(start_agent, watchdog: StandInWatchdog) -> None:
    agent = start_agent()
    wait_until(agent.running, timeout=5, what="workload running")
    watchdog.update(silent_sites={"primary"})
    wait_until(lambda: not agent.running(), timeout=TTL + GRACE + 3, what="self-fence")
    last_ok = watchdog.accepted("primary")[-1].received_at
    assert runs(agent.out)[-1].end - last_ok <= TTL + 0.35
    watchdog.update(silent_sites=set())  # the watchdog is back: the lease is renewed, the bot restarts
    wait_until(agent.running, timeout=5, what="restarted")


def test_epochs_going_backwards_are_ignored(start_agent, watchdog: StandInWatchdog) -> None:
    watchdog.set_lease("none", epoch=5)
    agent = start_agent()
    wait_until(lambda: len(watchdog.accepted("primary")) >= 2, timeout=3, what="heartbeats")
    watchdog.update(lease_site="primary", epoch_override=3)  # a stale replica of the lease, say
    wait_until(
        lambda: (metric_value(agent.metrics(), "hfo_agent_lease_lower_epoch_ignored_total") or 0) >= 3,
        timeout=3,
        what="lower epochs ignored",
    )
    assert runs(agent.out) == []  # never started on the older epoch
    assert all(r.heartbeat.epoch_seen == 5 for r in watchdog.accepted("primary")[2:])
    watchdog.update(epoch_override=None, epoch=6)  # a real, newer grant
    wait_until(agent.running, timeout=5, what="started on epoch 6")


def test_never_starts_without_an_answer(start_agent, watchdog: StandInWatchdog) -> None:
    watchdog.update(silent_sites={"primary"})
    agent = start_agent()
    time.sleep(1.5)
    assert runs(agent.out) == []
    assert request(agent.metrics_port, "/readyz").status == 200  # the first round did finish (and failed)
    assert metric_value(agent.metrics(), "hfo_agent_heartbeats_total", {"result": "timeout:timeout"}) >= 3


def test_never_starts_on_an_answer_older_than_the_ttl(start_agent, watchdog: StandInWatchdog) -> None:
    watchdog.update(delay_s=TTL + 0.2)  # every answer arrives after its lease already ran out
    agent = start_agent(HFO_HEARTBEAT_INTERVAL_S="2", HFO_HEARTBEAT_TIMEOUT_S="2")
    wait_until(lambda: len(watchdog.accepted("primary")) >= 1, timeout=6, what="an answered heartbeat")
    time.sleep(0.4)  # the answer has arrived (and was refused as already expired)
    assert runs(agent.out) == []


def test_a_forged_answer_grants_nothing(start_agent, watchdog: StandInWatchdog) -> None:
    watchdog.update(tamper="signature")
    agent = start_agent()
    wait_until(lambda: len(watchdog.accepted("primary")) >= 3, timeout=3, what="heartbeats")
    assert runs(agent.out) == []
    assert metric_value(agent.metrics(), "hfo_agent_heartbeats_total", {"result": "bad_answer:mismatch"}) >= 3


def test_sigterm_stops_the_workload_before_exit(start_agent, watchdog: StandInWatchdog) -> None:
    agent = start_agent()
    wait_until(agent.running, timeout=5, what="workload running")
    assert agent.proc.terminate(timeout=10) == 0
    assert runs(agent.out)[-1].terminated and not agent.running()


def test_agent_and_health_service_together_answer_pass(
    tmp_path: Path, watchdog: StandInWatchdog, secret_file: Path, token_file: Path, ca_bundle: Path
) -> None:
    """The two containers of the Pod: the agent reports to the health service over loopback."""
    ports = health_ports()
    health = SiteProcess(
        "health",
        {
            "HFO_SITE": "primary",
            "HFO_HMAC_SECRET_FILE": str(secret_file),
            "HFO_DETAILS_TOKEN_FILE": str(token_file),
            "HFO_BACKEND": "exec",
            "HFO_EXEC_COMMAND": "unused",
            "HFO_CHECK_INTERVAL_S": "0.2",
            "HFO_HEARTBEAT_INTERVAL_S": str(INTERVAL),
            # The test polls /healthz 20 times a second: past the default burst a 429 would end it.
            "HFO_RATE_LIMIT_RPS": "1000",
            "HFO_RATE_LIMIT_BURST": "1000",
            **ports,
        },
        tmp_path / "health.log",
    ).start()
    watchdog.update(ttl_s=TTL)
    env, out, agent_port = agent_env(
        tmp_path,
        watchdog,
        secret_file,
        ca_bundle,
        HFO_AGENT_STATUS_URL=f"http://127.0.0.1:{ports['HFO_STATUS_PORT']}/agent-status",
    )
    agent = SiteProcess("agent", env, tmp_path / "agent.log").start()
    port = int(ports["HFO_HEALTH_PORT"])
    try:
        health.wait_http(port, "/readyz")

        def verdict() -> tuple[str, str]:
            doc = json.loads(request(port, "/healthz").body)
            return doc["status"], doc["hfo"]["basis"]

        wait_until(lambda: verdict() == ("pass", "workload"), timeout=8, what="pass/workload")
        watchdog.set_lease("standby")
        wait_until(lambda: verdict() == ("pass", "ready"), timeout=5, what="pass/ready")
        assert runs(out)[-1].terminated
        watchdog.update(unavailable=True)  # heartbeats stop working: the site must not look healthy
        wait_until(lambda: verdict()[0] == "fail", timeout=3 * INTERVAL + 3, what="fail")
    finally:
        agent.terminate()
        health.terminate()
    assert agent_port


def test_status_report_format_is_what_the_health_service_parses(start_agent, watchdog: StandInWatchdog) -> None:
    """The agent's report body (captured by a listener on the status URL) parses as AgentStatus."""
    import http.server
    import threading

    bodies: list[bytes] = []

    class Capture(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        agent = start_agent(HFO_AGENT_STATUS_URL=f"http://127.0.0.1:{server.server_address[1]}/agent-status")
        wait_until(agent.running, timeout=5, what="running")
        wait_until(lambda: any(parse_status(b).workload == "running" for b in list(bodies)), timeout=3, what="report")
        status = next(parse_status(b) for b in reversed(bodies) if parse_status(b).workload == "running")
        assert (status.site, status.lease_site, status.lease_epoch, status.lease_held) == (
            "primary",
            "primary",
            1,
            True,
        )
        assert status.lease_remaining_s is not None and 0 < status.lease_remaining_s <= TTL
        assert status.heartbeat_age_s is not None and status.heartbeat_age_s < 1
        assert abs(status.reported_at - time.time()) < 5
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.kube
def test_kubernetes_backend_follows_the_lease_through_the_scale_subresource(
    tmp_path: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path, kube_cluster: ControlPlane
) -> None:
    """The agent process, with its ServiceAccount's token and the Role from k8s/, against a real API server."""
    namespace = f"agent-{uuid.uuid4().hex[:8]}"
    apply_site(kube_cluster, namespace)
    apps = kube_cluster.apps()
    apps.patch_namespaced_stateful_set(
        "bot", namespace, {"metadata": {"annotations": {"hfo.dev/desired-replicas": "2"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip

    def replicas() -> int:
        return int(apps.read_namespaced_stateful_set("bot", namespace).spec.replicas)

    kubeconfig = kube_cluster.service_account_kubeconfig(namespace, "hfo-site", tmp_path / "kubeconfig")
    watchdog.update(ttl_s=TTL, heartbeat_interval_s=1)
    env, _, _ = agent_env(
        tmp_path,
        watchdog,
        secret_file,
        ca_bundle,
        HFO_BACKEND="kubernetes",
        HFO_K8S_NAMESPACE=namespace,
        HFO_K8S_WORKLOADS="statefulset/bot",
        KUBECONFIG=str(kubeconfig),
        HFO_STOP_GRACE_S="1",
    )
    env["KUBERNETES_SERVICE_HOST"] = ""
    with kube_cluster.kubelet(namespace, ready_after_s=0.1, terminate_after_s=0.2):
        agent = SiteProcess("agent", env, tmp_path / "agent-k8s.log").start()
        try:
            wait_until(lambda: replicas() == 2, timeout=15, what="scaled up")
            wait_until(lambda: _reported_k8s(watchdog, "running"), timeout=15, what="running reported")
            watchdog.set_lease("standby")
            wait_until(lambda: replicas() == 0, timeout=10, what="scaled down")
            wait_until(lambda: _reported_k8s(watchdog, "stopped"), timeout=10, what="stopped reported")
            annotations = apps.read_namespaced_stateful_set("bot", namespace).metadata.annotations
            assert annotations["hfo.dev/desired-replicas"] == "2"
            watchdog.set_lease("primary")
            wait_until(lambda: replicas() == 2, timeout=10, what="scaled up again")
            assert agent.terminate(timeout=20) == 0  # HFO_FENCE_ON_EXIT defaults to true
            assert replicas() == 0
        finally:
            agent.terminate()
    agent_user = f"system:serviceaccount:{namespace}:hfo-site"
    writes = {
        (v, r) for v, r, _, _ in kube_cluster.requests_by(namespace, agent_user) if v not in ("get", "list", "watch")
    }
    assert writes == {("patch", "statefulsets/scale")}  # the annotation was already there: only the scale


def _reported_k8s(watchdog: StandInWatchdog, state: str) -> bool:
    accepted = watchdog.accepted("primary")
    return bool(accepted) and accepted[-1].heartbeat.workload == state


def test_a_failing_start_backs_off_and_is_reported(start_agent, watchdog: StandInWatchdog, tmp_path: Path) -> None:
    agent = start_agent(HFO_EXEC_COMMAND=str(tmp_path / "no-such-bot"))
    time.sleep(2.0)
    failures = [r for r in agent.proc.log_records() if r.get("msg") == "workload start failed"]
    assert failures and "cannot start" in failures[0]["error"]
    heartbeats = len(watchdog.accepted("primary"))
    assert heartbeats >= 6
    assert len(failures) <= 6 < heartbeats  # 0.2 s doubling: not one attempt per heartbeat
    last = watchdog.accepted("primary")[-1].heartbeat
    assert (last.workload, last.ready) == ("stopped", False)
