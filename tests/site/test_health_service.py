"""The health service as a real ``hfo-site health`` process on loopback (hfo_site.health_app)."""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hfo_protocol import SIGNATURE_HEADER, Keyring, SignatureError
from hfo_protocol.health import parse_health_body, verify_health
from hfo_protocol.nonce import new_nonce
from hfo_site.agent_status import AgentStatus, build_status
from testsupport.kube_apiserver import ControlPlane, apply_site
from testsupport.net import wait_until
from testsupport.site_helpers import (
    SECRET,
    TOKEN,
    Answer,
    BotStub,
    SiteProcess,
    health_ports,
    metric_value,
    request,
)

pytestmark = pytest.mark.network

RING = Keyring.from_secret_string(SECRET)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Health:
    proc: SiteProcess
    port: int
    status_port: int
    metrics_port: int

    def get(self, path: str = "/healthz", headers: dict[str, str] | None = None) -> Answer:
        return request(self.port, path, headers=headers)

    def probe(self, headers: dict[str, str] | None = None) -> tuple[str, Answer]:
        nonce = new_nonce()
        return nonce, self.get(f"/healthz?nonce={nonce}", headers)

    def push(self, **changes: object) -> Answer:
        """Report an agent status; defaults: primary holds epoch 7, workload running, heartbeat now."""
        now = time.time()
        fields: dict[str, object] = {
            "site": "primary",
            "backend": "exec",
            "workload": "running",
            "ready": True,
            "lease_site": "primary",
            "lease_epoch": 7,
            "lease_held": True,
            "lease_remaining_s": 60.0,
            "heartbeat_age_s": 0.0,
            "reported_at": now,
        }
        fields.update(changes)
        body = build_status(AgentStatus(**fields))
        return request(self.status_port, "/agent-status", "POST", {"Content-Type": "application/json"}, body)

    def metrics(self) -> str:
        return request(self.metrics_port, "/metrics").body.decode()

    def verdict(self) -> str:
        return json.loads(self.get().body)["status"]

    def wait_verdict(self, status: str, timeout: float = 5.0) -> None:
        wait_until(lambda: self.verdict() == status, timeout=timeout, what=f"verdict {status}")


def _env(tmp: Path, ready_url: str | None, **extra: str) -> dict[str, str]:
    (tmp / "secret").write_text(SECRET)
    (tmp / "token").write_text(TOKEN)
    env = {
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(tmp / "secret"),
        "HFO_DETAILS_TOKEN_FILE": str(tmp / "token"),
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": "bot --serve",
        "HFO_CHECK_INTERVAL_S": "0.2",
        "HFO_CHECK_TIMEOUT_S": "0.2",
        "HFO_HEARTBEAT_INTERVAL_S": "1",
        "HFO_RATE_LIMIT_RPS": "100000",
        "HFO_RATE_LIMIT_BURST": "100000",
        **health_ports(),
        **extra,
    }
    if ready_url:
        env["HFO_WORKLOAD_READY_URL"] = ready_url
    return env


def _start(env: dict[str, str], log: Path) -> tuple[SiteProcess, Health]:
    proc = SiteProcess("health", env, log).start()
    health = Health(proc, int(env["HFO_HEALTH_PORT"]), int(env["HFO_STATUS_PORT"]), int(env["HFO_METRICS_PORT"]))
    proc.wait_http(health.port, "/readyz")
    return proc, health


@pytest.fixture(scope="module")
def module_bot() -> Iterator[BotStub]:
    stub = BotStub()
    yield stub
    stub.close()


@pytest.fixture(scope="module")
def svc(module_bot: BotStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Health]:
    tmp = tmp_path_factory.mktemp("health")
    proc, health = _start(_env(tmp, module_bot.url), tmp / "health.log")
    try:
        yield health
    finally:
        proc.terminate()


@pytest.fixture
def healthy(svc: Health, module_bot: BotStub) -> Health:
    """The shared service in the 'primary holds the lease, bot ready' situation."""
    module_bot.status = 200
    assert svc.push().status == 204
    svc.wait_verdict("pass")
    return svc


# -- the probe answer ------------------------------------------------------------------------------


def test_pass_answer_is_signed_over_the_nonce_and_reveals_only_the_verdict(healthy: Health) -> None:
    nonce, answer = healthy.probe()
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/health+json"
    assert answer.headers["cache-control"] == "no-store"
    assert "aiohttp" not in answer.headers.get("server", "")
    assert verify_health(RING, answer.headers[SIGNATURE_HEADER.lower()], nonce, answer.body) == "default"
    doc = parse_health_body(answer.body)
    assert (doc.status, doc.basis, doc.site, doc.nonce, doc.lease_epoch) == ("pass", "workload", "primary", nonce, 7)
    assert abs(doc.time - time.time()) < 5
    assert set(json.loads(answer.body)) == {"status", "serviceId", "hfo"}  # no checks, no detail


def test_a_signature_cannot_be_replayed_for_another_nonce(healthy: Health) -> None:
    _, answer = healthy.probe()
    other = new_nonce()
    with pytest.raises(SignatureError, match="mismatch"):
        verify_health(RING, answer.headers[SIGNATURE_HEADER.lower()], other, answer.body)
    _, again = healthy.probe()
    assert again.headers[SIGNATURE_HEADER.lower()] != answer.headers[SIGNATURE_HEADER.lower()]


def test_without_a_nonce_the_answer_is_unsigned(healthy: Health) -> None:
    answer = healthy.get()
    assert answer.status == 200
    assert SIGNATURE_HEADER.lower() not in answer.headers
    assert parse_health_body(answer.body).nonce is None


def test_site_without_the_lease_that_is_ready_passes_with_basis_ready(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 503  # the bot is scaled away on this site
    svc.push(lease_site="standby", lease_held=False, lease_remaining_s=None, workload="stopped", lease_epoch=8)
    svc.wait_verdict("pass")
    nonce, answer = svc.probe()
    doc = parse_health_body(answer.body)
    assert (answer.status, doc.basis, doc.lease_epoch) == (200, "ready", 8)
    verify_health(RING, answer.headers[SIGNATURE_HEADER.lower()], nonce, answer.body)


def test_site_without_the_lease_whose_bot_still_answers_is_not_ready(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 200
    svc.push(lease_site="standby", lease_held=False, lease_remaining_s=None, workload="stopped")
    svc.wait_verdict("warn")
    doc = parse_health_body(svc.get().body)
    assert doc.basis == "none"


def test_lease_held_but_bot_not_ready_is_warn(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 503
    svc.push()
    svc.wait_verdict("warn")
    _, answer = svc.probe()
    assert answer.status == 200
    assert parse_health_body(answer.body).basis == "none"


def test_expired_lease_is_not_held_even_if_the_report_says_so(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 200
    svc.push(lease_remaining_s=0.0)
    svc.wait_verdict("warn")


def test_stale_heartbeats_fail_with_a_signed_503(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 200
    svc.push(heartbeat_age_s=30.0)  # stale after 3 x HFO_HEARTBEAT_INTERVAL_S = 3 s
    svc.wait_verdict("fail")
    nonce, answer = svc.probe()
    assert answer.status == 503
    verify_health(RING, answer.headers[SIGNATURE_HEADER.lower()], nonce, answer.body)
    doc = parse_health_body(answer.body)
    assert (doc.status, doc.basis) == ("fail", "none")


def test_heartbeat_success_ages_out_without_a_new_report(svc: Health, module_bot: BotStub) -> None:
    module_bot.status = 200
    svc.push(heartbeat_age_s=2.0)  # fresh now, stale one second later
    svc.wait_verdict("pass")
    svc.wait_verdict("fail", timeout=5)


# -- details ---------------------------------------------------------------------------------------


def test_details_need_the_bearer_token(healthy: Health) -> None:
    nonce, answer = healthy.probe(AUTH)
    assert answer.status == 200
    body = json.loads(answer.body)
    checks = body["checks"]
    assert checks["workload:ready"][0]["status"] == "pass"
    assert checks["workload:ready"][0]["observedValue"] == 200
    assert checks["agent:heartbeat"][0]["status"] == "pass"
    assert checks["agent:lease"][0]["observedValue"] == {"site": "primary", "epoch": 7, "heldHere": True}
    verify_health(RING, answer.headers[SIGNATURE_HEADER.lower()], nonce, answer.body)


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"]
)
def test_a_wrong_token_is_refused_and_reveals_nothing(healthy: Health, header: str) -> None:
    answer = healthy.get("/healthz", {"Authorization": header})
    assert answer.status == 401
    assert "checks" not in answer.body.decode()
    assert json.loads(answer.body)["error"] == "bad_token"


# -- bad requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "nonce=short",
        "nonce=" + "a" * 129,
        "nonce=has%20space0123456789",
        "nonce=",
        "nonce=%2F" + "a" * 20,
        "nonce=" + "a" * 32 + "%0A",  # issue 10, bug 5: a trailing newline was accepted and echoed
        "nonce=" + "a" * 32 + "%0D%0A",
    ],
)
def test_bad_nonce_is_400(healthy: Health, query: str) -> None:
    answer = healthy.get(f"/healthz?{query}")
    assert answer.status == 400
    assert json.loads(answer.body)["error"] == "bad_nonce"
    assert SIGNATURE_HEADER.lower() not in answer.headers


def test_repeated_nonce_parameter_is_400(healthy: Health) -> None:
    answer = healthy.get(f"/healthz?nonce={new_nonce()}&nonce={new_nonce()}")
    assert answer.status == 400


def test_a_body_on_the_probe_is_refused_unread(healthy: Health) -> None:
    answer = request(healthy.port, "/healthz", "GET", {"Content-Length": "100000"}, b"x" * 100_000)
    assert answer.status == 413


def _raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def test_oversized_request_line_and_headers_are_refused(healthy: Health) -> None:
    long_line = b"GET /healthz?nonce=" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert _raw(healthy.port, long_line).split(b" ", 2)[1] in (b"400", b"414", b"431")
    big_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10_000 + b"\r\nConnection: close\r\n\r\n"
    assert _raw(healthy.port, big_header).split(b" ", 2)[1] in (b"400", b"431")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(100))
    too_many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"Connection: close\r\n\r\n"
    assert _raw(healthy.port, too_many).split(b" ", 2)[1] in (b"400", b"431")
    assert healthy.get().status == 200  # and the service still answers


def test_other_methods_and_paths_are_refused(healthy: Health) -> None:
    assert request(healthy.port, "/healthz", "PUT", body=b"").status == 405
    assert request(healthy.port, "/livez", "POST", body=b"").status == 405
    assert request(healthy.port, "/healthz", "POST", body=b"").status == 415  # POST is a renewal: JSON only
    assert healthy.get("/metrics").status == 404  # metrics are not on the public port
    assert healthy.get("/agent-status").status == 404  # nor is the agent's status endpoint


def test_livez_and_readyz(healthy: Health) -> None:
    assert healthy.get("/livez").body == b"ok\n"
    assert healthy.get("/readyz").status == 200


# -- the agent's status endpoint -------------------------------------------------------------------


def test_agent_status_refusals_change_nothing(healthy: Health) -> None:
    before = healthy.verdict()
    assert healthy.push(site="standby").status == 422  # another site's report
    assert (
        request(healthy.status_port, "/agent-status", "POST", {"Content-Type": "application/json"}, b"{}").status == 400
    )
    assert request(healthy.status_port, "/agent-status", "POST", {"Content-Type": "text/plain"}, b"{}").status == 415
    big = b"{" + b" " * 5000 + b"}"
    assert (
        request(healthy.status_port, "/agent-status", "POST", {"Content-Type": "application/json"}, big).status == 413
    )
    assert healthy.verdict() == before == "pass"


def test_status_port_listens_on_loopback_only(healthy: Health) -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    addresses.discard("127.0.0.1")
    for address in addresses:
        with pytest.raises(OSError), socket.create_connection((address, healthy.status_port), timeout=1):
            pass


# -- the cache: checks run on their interval, never per request -----------------------------------


def test_request_flood_does_not_multiply_backend_checks(healthy: Health, module_bot: BotStub) -> None:
    interval = 0.2
    stop = threading.Event()
    served = [0]
    lock = threading.Lock()

    def hammer() -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", healthy.port, timeout=5)
        while not stop.is_set():
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            with lock:
                served[0] += 1
        conn.close()

    rounds_before = metric_value(healthy.metrics(), "hfo_health_check_rounds_total") or 0
    calls_before = module_bot.count()
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    elapsed = time.monotonic() - started
    calls = module_bot.count() - calls_before
    rounds = (metric_value(healthy.metrics(), "hfo_health_check_rounds_total") or 0) - rounds_before
    assert served[0] > 200, served  # a real flood
    # One readiness call per round, one round per interval: the flood adds nothing.
    assert calls <= elapsed / interval + 2, (calls, served[0])
    assert calls >= elapsed / interval / 3, (calls, served[0])  # and the rounds kept going meanwhile
    assert abs(rounds - calls) <= 1


def test_checks_keep_their_interval_when_idle(healthy: Health, module_bot: BotStub) -> None:
    with module_bot.lock:
        module_bot.call_times.clear()
    time.sleep(1.3)
    with module_bot.lock:
        times = list(module_bot.call_times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 4
    assert min(gaps) > 0.1  # never bunched up


# -- own-process configurations --------------------------------------------------------------------


def test_rate_limit_per_client_with_retry_after(tmp_path: Path) -> None:
    env = _env(tmp_path, None, HFO_RATE_LIMIT_RPS="0.5", HFO_RATE_LIMIT_BURST="3")
    proc, health = _start(env, tmp_path / "health.log")
    try:
        # wait_http used one token of the burst already, maybe more: drain the rest.
        answers = [health.get("/healthz").status for _ in range(6)]
        assert answers.count(429) >= 3
        assert answers[-1] == 429
        limited = health.get("/healthz")
        assert limited.status == 429
        assert int(limited.headers["retry-after"]) >= 1
        # X-Forwarded-For is not trusted unless configured: spoofing it buys no new bucket.
        assert health.get("/healthz", {"X-Forwarded-For": "203.0.113.9"}).status == 429
        # Renewals share the probe's bucket: a flood of POSTs is refused before it is read.
        renewal = request(health.port, "/healthz", "POST", {"Content-Type": "application/json"}, b"{}")
        assert renewal.status == 429 and renewal.json()["error"] == "rate_limited"
        text = health.metrics()
        assert (metric_value(text, "hfo_health_rate_limited_total") or 0) >= 5
        assert metric_value(text, "hfo_health_renewals_total", {"result": "rate_limited"}) == 1
    finally:
        proc.terminate()


def test_trusted_proxy_header_gives_each_client_its_own_bucket(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        None,
        HFO_RATE_LIMIT_RPS="0.5",
        HFO_RATE_LIMIT_BURST="2",
        HFO_CLIENT_IP_HEADER="X-Forwarded-For",
        HFO_TRUSTED_PROXIES="127.0.0.1/32",
    )
    proc, health = _start(env, tmp_path / "health.log")
    try:
        alice = {"X-Forwarded-For": "198.51.100.1"}
        bob = {"X-Forwarded-For": "198.51.100.2"}
        assert [health.get("/healthz", alice).status for _ in range(3)] == [503, 503, 429]
        assert health.get("/healthz", bob).status == 503  # bob is not punished for alice
    finally:
        proc.terminate()


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    env = _env(tmp_path, None)
    proc, health = _start(env, tmp_path / "health.log")
    assert health.get("/livez").status == 200
    started = time.monotonic()
    assert proc.terminate(timeout=15) == 0
    assert time.monotonic() - started < 10
    messages = [r.get("msg") for r in proc.log_records()]
    assert "SIGTERM: draining" in messages and "health service stopped" in messages


def test_keyring_rotation_is_picked_up_without_restart(tmp_path: Path) -> None:
    env = _env(tmp_path, None)
    proc, health = _start(env, tmp_path / "health.log")
    try:
        _, before = health.probe()
        assert before.headers[SIGNATURE_HEADER.lower()].startswith("v1;kid=default;")
        rotated = {"active": "k2", "keys": {"k2": "n" * 40, "default": SECRET}}
        Path(env["HFO_HMAC_SECRET_FILE"]).write_text(json.dumps(rotated))
        wait_until(
            lambda: health.probe()[1].headers[SIGNATURE_HEADER.lower()].startswith("v1;kid=k2;"),
            timeout=5,
            what="new active key",
        )
        nonce, answer = health.probe()
        assert (
            verify_health(
                Keyring.from_secret_string(json.dumps(rotated)),
                answer.headers[SIGNATURE_HEADER.lower()],
                nonce,
                answer.body,
            )
            == "k2"
        )
        Path(env["HFO_HMAC_SECRET_FILE"]).write_text("too-short")  # a broken rotation keeps the last good keyring
        time.sleep(0.6)
        assert health.probe()[1].headers[SIGNATURE_HEADER.lower()].startswith("v1;kid=k2;")
        assert any("not usable" in r.get("msg", "") for r in proc.log_records())
        assert "too-short" not in proc.logs()
    finally:
        proc.terminate()


@pytest.mark.kube
def test_kubernetes_replicas_check_reads_with_its_own_read_only_identity_by_interval(
    tmp_path: Path, kube_cluster: ControlPlane
) -> None:
    """The health service against a real API server, with the hfo-site-health identity as k8s/ sets it up:
    the token Secret filled in by the controller-manager, the Role allowing one get. Calls counted from
    the API server's audit log."""
    namespace = f"health-{uuid.uuid4().hex[:8]}"
    apply_site(kube_cluster, namespace)
    core, apps = kube_cluster.core(), kube_cluster.apps()
    wait_until(lambda: bool(core.read_namespaced_secret("hfo-site-health-token", namespace).data), timeout=20,
               what="the token controller filled in hfo-site-health-token")  # fmt: skip
    token = base64.b64decode(core.read_namespaced_secret("hfo-site-health-token", namespace).data["token"]).decode()
    kubeconfig = kube_cluster.kubeconfig(token, namespace, tmp_path / "health.kubeconfig")
    apps.patch_namespaced_stateful_set(
        "bot", namespace, {"metadata": {"annotations": {"hfo.dev/desired-replicas": "2"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    kube_cluster.kubectl("-n", namespace, "scale", "statefulset/bot", "--replicas=2")
    user = f"system:serviceaccount:{namespace}:hfo-site-health"
    env = _env(
        tmp_path,
        None,
        HFO_BACKEND="kubernetes",
        HFO_K8S_NAMESPACE=namespace,
        HFO_K8S_WORKLOADS="statefulset/bot",
        KUBECONFIG=str(kubeconfig),
        HFO_CHECK_INTERVAL_S="0.5",
        HFO_CHECK_TIMEOUT_S="0.5",
        HFO_HEARTBEAT_INTERVAL_S="10",  # the pushed agent report stays fresh while the API server is slow
    )
    env.pop("KUBERNETES_SERVICE_HOST", None)
    with kube_cluster.kubelet(namespace, ready_after_s=0.0, terminate_after_s=0.0):
        proc, health = _start(env, tmp_path / "health.log")
        try:
            assert health.push().status == 204
            health.wait_verdict("pass", timeout=20)
            checks = json.loads(health.get("/healthz", AUTH).body)["checks"]
            assert checks["statefulset/bot:readyReplicas"][0]["observedValue"] == 2

            before = len(kube_cluster.requests_by(namespace, user))
            started = time.monotonic()
            for _ in range(300):
                health.get("/healthz")
            elapsed = time.monotonic() - started
            calls = len(kube_cluster.requests_by(namespace, user)) - before
            assert calls <= elapsed / 0.5 + 2, calls  # one object per round, rounds by interval only

            kube_cluster.kubectl("-n", namespace, "scale", "statefulset/bot", "--replicas=0")  # scaled away
            assert health.push().status == 204  # the agent's report stays fresh: only the check changes
            health.wait_verdict("warn", timeout=20)
            checks = json.loads(health.get("/healthz", AUTH).body)["checks"]
            assert checks["statefulset/bot:readyReplicas"][0]["status"] != "pass"
        finally:
            proc.terminate()
    made = {(verb, resource, name, code) for verb, resource, name, code in kube_cluster.requests_by(namespace, user)}
    assert made == {("get", "statefulsets", "bot", 200)}  # the health service only ever reads, and may only that


# -- adversarial cases (issue 10) ------------------------------------------------------------------


def _post_status(port: int, body: bytes) -> Answer:
    return request(port, "/agent-status", "POST", {"Content-Type": "application/json"}, body)


def test_a_report_dated_in_the_future_is_refused_and_never_passes(tmp_path: Path) -> None:
    """Issue 10, bug 2: a report dated ahead of the clock kept `pass` long after the agent was gone."""
    proc, health = _start(_env(tmp_path, None), tmp_path / "health.log")
    try:
        answer = health.push(reported_at=time.time() + 3600)
        assert answer.status == 422, answer.body
        assert answer.json()["error"] == "future"
        assert health.verdict() == "fail"  # nothing was ever accepted
        time.sleep(4.0)  # past HFO_HEARTBEAT_STALE_S (3 s): still nothing to pass on
        assert health.verdict() == "fail"
    finally:
        proc.terminate()


def test_a_report_that_stops_coming_fails_within_the_stale_window(tmp_path: Path) -> None:
    """The age runs on the service's own clock from the report's arrival: whatever the report's
    times say (here, 1.5 s ahead: inside the allowance), `fail` comes within HFO_HEARTBEAT_STALE_S."""
    proc, health = _start(_env(tmp_path, None), tmp_path / "health.log")
    try:
        assert health.push(reported_at=time.time() + 1.5).status == 204
        arrived = time.monotonic()
        assert health.verdict() == "pass"
        health.wait_verdict("fail", timeout=5.0)
        assert time.monotonic() - arrived <= 3.0 + 0.5  # stale window + one request's slack
    finally:
        proc.terminate()


@pytest.mark.parametrize("body", [b"[" * 4000, b'{"v":1,"lease":' + b"[" * 2000 + b"]" * 2000 + b"}"])
def test_deeply_nested_reports_are_a_400_not_a_500(healthy: Health, body: bytes) -> None:
    """Issue 10, bug 4: the status endpoint answered HTTP 500 (RecursionError)."""
    answer = _post_status(healthy.status_port, body)
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == "malformed"
    assert healthy.verdict() == "pass"  # the last good report still stands


def test_a_report_written_in_pieces_is_read_whole(healthy: Health) -> None:
    now = time.time()
    body = build_status(AgentStatus("primary", "exec", "stopped", True, "standby", 9, False, None, 0.0, now))
    head = (
        b"POST /agent-status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", healthy.status_port), timeout=5) as sock:
        sock.sendall(head)
        for start in range(0, len(body), 40):
            time.sleep(0.05)
            sock.sendall(body[start : start + 40])
        reply = sock.recv(4096)
    assert reply.split(b" ", 2)[1] == b"204", reply
    assert parse_health_body(healthy.get("/healthz", AUTH).body).lease_epoch == 9
    healthy.push()


def _two_forwarded_for_lines(port: int, first: str, second: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", "/healthz")
        conn.putheader("X-Forwarded-For", first)  # whatever the client sent
        conn.putheader("X-Forwarded-For", second)  # what the trusted proxy appended
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_the_rate_limit_keys_on_what_the_trusted_proxy_wrote(tmp_path: Path) -> None:
    """Issue 10, bug 7: with a second X-Forwarded-For line appended by the proxy, the first line
    (the client's own) chose the bucket: a client could pick a fresh bucket per request."""
    env = _env(
        tmp_path,
        None,
        HFO_RATE_LIMIT_RPS="0.5",
        HFO_RATE_LIMIT_BURST="2",
        HFO_CLIENT_IP_HEADER="X-Forwarded-For",
        HFO_TRUSTED_PROXIES="127.0.0.1/32",
    )
    proc, health = _start(env, tmp_path / "health.log")
    try:
        statuses = [_two_forwarded_for_lines(health.port, f"203.0.113.{i}", "198.51.100.7") for i in range(1, 6)]
        assert statuses[:2] == [503, 503] and set(statuses[2:]) == {429}, statuses
        # Another real client (another value written by the proxy) still has its own bucket.
        assert _two_forwarded_for_lines(health.port, "203.0.113.1", "198.51.100.8") == 503
    finally:
        proc.terminate()


def test_malformed_requests_are_counted_not_logged_one_by_one(tmp_path: Path) -> None:
    """Malformed requests never reach the rate limit (the parser refuses them first); each used to
    log an ERROR with a traceback, so a flood of them became a flood of log lines."""
    proc, health = _start(_env(tmp_path, None), tmp_path / "health.log")
    try:
        bad = b"GET /healthz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n"
        for _ in range(30):
            assert _raw(health.port, bad).split(b" ", 2)[1] == b"400"
        assert health.get("/livez").status == 200
        text = health.metrics()
        assert metric_value(text, "hfo_health_bad_requests_total") == 30
        errors = [r for r in proc.log_records() if r.get("level") == "error"]
        assert errors == []
        warned = [r for r in proc.log_records() if "malformed HTTP request" in r.get("msg", "")]
        assert 1 <= len(warned) <= 2, warned
    finally:
        proc.terminate()


@pytest.mark.slow
def test_a_request_head_that_never_completes_is_cut_off_after_15_s(healthy: Health) -> None:
    """docs/site.md#limits: aiohttp's keep-alive timer (15 s) also closes a connection whose request
    head is still incomplete, counted from the connection's start: there is a header timeout."""
    with socket.create_connection(("127.0.0.1", healthy.port), timeout=1) as sock:
        opened = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed_at = None
        while time.monotonic() - opened < 25:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(1024) == b"":
                    closed_at = time.monotonic()
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic()
                break
    assert closed_at is not None, "the slow request head was never cut off"
    assert 14.0 <= closed_at - opened <= 17.0
