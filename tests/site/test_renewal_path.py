"""Lever A and B of issue 12 end to end, with real processes on loopback: a real ``hfo-site
health`` and ``hfo-site agent`` (exec backend) next to a stand-in watchdog.

- A primary whose heartbeats cannot reach the watchdog keeps its bot while the watchdog's probe
  passes and renews its lease over the probe path (docs/protocol.md#renewal), and stops it no
  later than t_ans + ttl_s of the last renewal once they stop.
- The workload learns the agent's lease endpoint from HFO_BOT_LEASE_URL, and what it says follows
  the lease (docs/protocol.md#lease-endpoint)."""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hfo_protocol import SIGNATURE_HEADER, Keyring
from hfo_protocol.health import parse_health_body, verify_health
from hfo_protocol.nonce import new_nonce
from hfo_protocol.renewal import LeaseRenewal, build_renewal, sign_renewal
from testsupport.net import free_port, wait_until
from testsupport.site_helpers import SECRET, TOKEN, SiteProcess, health_ports, pid_alive, request, runs
from testsupport.site_watchdog import StandInWatchdog

pytestmark = [pytest.mark.system, pytest.mark.network]

RING = Keyring.from_secret_string(SECRET)
HB_TTL = 2  # the heartbeat answer's lease
RENEW_TTL = 3.0  # each renewal's
INTERVAL = 0.3

# The stand-in bot: like the shared one, and it writes the lease URL the agent gave it.
WORKLOAD = """
import os, signal, sys, time
out, url_file = sys.argv[1], sys.argv[2]
with open(url_file, "w") as f:
    f.write(os.environ.get("HFO_BOT_LEASE_URL", ""))
def write(line):
    with open(out, "a") as f:
        f.write(line + "\\n")
def bye(*_):
    write(f"term {time.time():.6f} {os.getpid()}")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
write(f"start {time.time():.6f} {os.getpid()}")
while True:
    write(f"tick {time.time():.6f} {os.getpid()}")
    time.sleep(0.02)
"""


def probe(port: int) -> tuple[str, str, float]:
    """GET /healthz?nonce=N as the watchdog does: (nonce, status, wall time the answer was read)."""
    nonce = new_nonce()
    answer = request(port, f"/healthz?nonce={nonce}")
    received = time.time()
    verify_health(RING, answer.headers.get(SIGNATURE_HEADER.lower()), nonce, answer.body)
    return nonce, parse_health_body(answer.body).status, received


def renew(port: int, nonce: str, epoch: int, ttl_s: float = RENEW_TTL) -> tuple[int, dict]:
    body = build_renewal(LeaseRenewal("primary", epoch, nonce, ttl_s, time.time()))
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_renewal(RING, body)}
    answer = request(port, "/healthz", "POST", headers, body)
    return answer.status, answer.json()


def lease_doc(url: str) -> dict:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path)
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def test_a_primary_cut_off_from_aws_keeps_its_bot_on_renewals_and_stops_when_they_stop(
    tmp_path: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path
) -> None:
    watchdog.update(ttl_s=HB_TTL, heartbeat_interval_s=1, lease_site="primary", epoch=4)
    (tmp_path / "token").write_text(TOKEN)
    ports = health_ports()
    health = SiteProcess(
        "health",
        {
            "HFO_SITE": "primary",
            "HFO_HMAC_SECRET_FILE": str(secret_file),
            "HFO_DETAILS_TOKEN_FILE": str(tmp_path / "token"),
            "HFO_BACKEND": "exec",
            "HFO_CHECK_INTERVAL_S": "0.2",
            "HFO_CHECK_TIMEOUT_S": "0.2",
            "HFO_HEARTBEAT_INTERVAL_S": str(INTERVAL),
            "HFO_HEARTBEAT_STALE_S": "1.5",
            "HFO_RATE_LIMIT_RPS": "1000",
            "HFO_RATE_LIMIT_BURST": "1000",
            **ports,
        },
        tmp_path / "health.log",
    ).start()
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    out, url_file = tmp_path / "bot.runs", tmp_path / "lease-url"
    agent = SiteProcess(
        "agent",
        {
            "HFO_SITE": "primary",
            "HFO_HMAC_SECRET_FILE": str(secret_file),
            "HFO_HEARTBEAT_URL": watchdog.url,
            "HFO_HEARTBEAT_INTERVAL_S": str(INTERVAL),
            "HFO_HEARTBEAT_TIMEOUT_S": str(INTERVAL),
            "HFO_HEARTBEAT_RETRIES": "0",
            "HFO_BACKEND": "exec",
            "HFO_EXEC_COMMAND": f"{sys.executable} {script} {out} {url_file}",
            "HFO_STOP_GRACE_S": "1",
            "HFO_CA_BUNDLE": str(ca_bundle),
            "HFO_AGENT_BIND": "127.0.0.1",
            "HFO_AGENT_METRICS_PORT": str(free_port()),
            "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{ports['HFO_STATUS_PORT']}/agent-status",
        },
        tmp_path / "agent.log",
    ).start()
    port = int(ports["HFO_HEALTH_PORT"])
    try:
        health.wait_http(port, "/readyz")
        wait_until(lambda: bool(runs(out)) and url_file.exists() and url_file.read_text(), 15, what="bot running")
        lease_url = url_file.read_text()
        assert lease_url.startswith("http://127.0.0.1:") and lease_url.endswith("/v1/lease")
        wait_until(lambda: probe(port)[1] == "pass", 10, what="probe passes")
        doc = lease_doc(lease_url)
        assert doc["site"] == "primary" and doc["holds"] and doc["workload_should_run"] and doc["epoch"] == 4
        assert 0 < doc["fresh_for_s"] <= HB_TTL

        # The heartbeat path goes dark. The watchdog keeps probing and renewing, once a second.
        watchdog.update(silent_sites={"primary"})
        cut = time.time()
        last_answer = cut
        while time.time() < cut + 3 * HB_TTL + 2:
            nonce, status, received = probe(port)
            # `warn` (a workload check slower than its 0.2 s timeout on a loaded machine) is a
            # passing probe for the watchdog too (HTTP 200): only a signed `fail` fails it.
            assert status in ("pass", "warn"), f"probe turned {status} {time.time() - cut:.1f}s after the cut"
            code, ack = renew(port, nonce, epoch=4)
            assert code == 200 and ack["accepted"] and 0 < ack["until_in_s"] <= RENEW_TTL, ack
            last_answer = received
            assert renew(port, nonce, epoch=4)[1]["error"] == "nonce_used"
            time.sleep(1.0)
        bot = runs(out)
        assert len(bot) == 1 and pid_alive(bot[0].pid), "the bot ran through the heartbeat outage, never restarted"
        doc = lease_doc(lease_url)
        assert doc["holds"] and doc["fresh_for_s"] <= RENEW_TTL

        # Renewals stop: the bot stops no later than t_ans + ttl_s of the last one (t_ans came
        # before `last_answer`), give or take the time a SIGTERM takes to land.
        wait_until(lambda: not pid_alive(bot[0].pid), RENEW_TTL + 5, what="self-fence after the last renewal")
        (only,) = runs(out)
        assert only.terminated
        assert only.end <= last_answer + RENEW_TTL + 0.3, f"ran {only.end - last_answer - RENEW_TTL:.2f}s too long"
        doc = lease_doc(lease_url)
        assert doc == {"site": "primary", "holds": False, "epoch": 4, "fresh_for_s": 0.0, "workload_should_run": False}
        # Alive, ready, cut off from AWS only: the probe passes on `ready` (not `fail`, which would
        # make the watchdog fail over), and the next renewal starts the bot again.
        nonce, status, _ = probe(port)
        assert status == "pass"
        code, ack = renew(port, nonce, epoch=4)
        assert code == 200 and ack["accepted"], ack
        wait_until(lambda: len(runs(out)) == 2 and pid_alive(runs(out)[1].pid), 10, what="bot back on a renewal")
        assert lease_doc(lease_url)["holds"]
    finally:
        agent.terminate()
        health.terminate()
