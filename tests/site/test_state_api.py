"""The agent's state API on its real lease server (docs/protocol.md#state-api): the credentials a
verified lease answer carried go to the state containers only with the bearer token, only while the
site holds a fresh lease of the epoch they were issued for; reports are validated (a bad one is a
400 naming the member, and nothing is stored), kept per workload in the agent's status, counted, and
passed to the watchdog in the next heartbeats; the heartbeat asks for credentials exactly when the
agent has none for its epoch or they expire within 300 s. No credential or token reaches a log line.

The agent runs in this process; lease answers reach it through its own answer path
(`Agent._record`, what a verified heartbeat answer goes through), on a lease clock the test moves."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hfo_protocol.heartbeat import LeaseAnswer, StateCredentials
from hfo_protocol.nonce import new_nonce
from hfo_site.agent import Agent
from hfo_site.agent_main import make_state_access, start_lease_endpoint
from hfo_site.agent_status import build_status, parse_status
from hfo_site.backends.base import Observation
from hfo_site.config import ConfigError, load_agent_settings
from hfo_site.heartbeat_client import BeatKind, BeatResult
from hfo_site.metrics import AgentMetrics
from hfo_site.state_api import REFRESH_BEFORE_S, ReportError, parse_report

pytestmark = pytest.mark.network

TOKEN = "state-token-" + "t0k3n" * 6
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY-site"
SESSION = "FwoGZXIvYXdzEXAMPLEsession" * 30


class Backend:
    name = "test"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def observe(self) -> Observation:
        return Observation("stopped", True)

    async def close(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def creds(epoch: int, site: str = "primary", expires_in: float = 900.0) -> StateCredentials:
    return StateCredentials(
        bucket="hfo-state-abc",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:5000",
        epoch=epoch,
        site=site,
        access_key_id="ASIAEXAMPLESITE12345",
        secret_access_key=SECRET,
        session_token=SESSION,
        expires_at=int(time.time() + expires_in),
    )


def answer(site: str, epoch: int, state: StateCredentials | None = None, ttl_s: int = 30) -> LeaseAnswer:
    return LeaseAnswer(new_nonce(), time.time(), site, epoch, ttl_s, "auto", "healthy", 10, state)


class Site:
    """A real Agent (state handoff on or off) and its real lease server on loopback."""

    def __init__(self, tmp_path: Path, enabled: bool = True) -> None:
        self.clock = Clock()
        self.metrics = AgentMetrics()
        token = tmp_path / "state-token"
        token.write_text(TOKEN + "\n")
        secret = tmp_path / "hmac"
        secret.write_text("s" * 40)
        env = {
            "HFO_SITE": "primary",
            "HFO_HMAC_SECRET_FILE": str(secret),
            "HFO_HEARTBEAT_URL": "https://watchdog.example/",
            "HFO_BACKEND": "exec",
            "HFO_EXEC_COMMAND": "true",
            "HFO_STATE_ENABLED": "true" if enabled else "false",
            "HFO_STATE_TOKEN_FILE": str(token),
        }
        self.settings = load_agent_settings(env)
        self.agent = Agent(
            "primary",
            Backend(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]  # no heartbeats are sent: answers are fed to _record
            None,
            self.metrics,
            interval_s=10,
            retries=0,
            mono=self.clock,
            state=make_state_access(self.settings, self.metrics),
        )
        self.base = ""

    def feed(self, lease: LeaseAnswer) -> None:
        self.agent._record(BeatResult(BeatKind.ACCEPTED, self.clock(), "", "", 200, lease))

    async def get(self, session: aiohttp.ClientSession, token: str | None = TOKEN) -> tuple[int, dict[str, Any], str]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with session.get(f"{self.base}/v1/state/credentials", headers=headers) as resp:
            return resp.status, json.loads(await resp.read()), resp.headers.get("Cache-Control", "")

    async def report(
        self,
        session: aiohttp.ClientSession,
        doc: Any,
        token: str | None = TOKEN,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any] | None]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        async with session.post(f"{self.base}/v1/state/report", data=body, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if raw else None


def run(site: Site, scenario: Callable[[aiohttp.ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        runner, url = await start_lease_endpoint(site.agent, "127.0.0.1", 0, site.metrics)
        site.base = url.removesuffix("/v1/lease")
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def report_doc(**kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workload": "bot",
        "event": "restored",
        "epoch": 7,
        "snapshot_key": "state/bot/epochs/000000000005/0123456789abcdef0123456789abcdef.tar.gz",
        "restored_epoch": 5,
        "at": int(time.time()),
        "detail": "restored 3 files",
    }
    doc.update(kw)
    return doc


def test_credentials_are_served_only_to_the_token_while_the_lease_of_their_epoch_is_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site = Site(tmp_path)

    async def scenario(session: aiohttp.ClientSession) -> None:
        assert (await site.get(session))[:2] == (
            409,
            {"error": "no_lease", "detail": "primary holds no fresh lease now"},
        )
        site.feed(answer("primary", 7))
        status, doc, _ = await site.get(session)
        assert (status, doc["error"]) == (409, "no_credentials")
        site.feed(answer("primary", 7, creds(7)))
        status, doc, cache = await site.get(session)
        assert status == 200 and cache == "no-store"
        assert doc == creds(7).to_doc() | {"expires_at": doc["expires_at"]}
        assert set(doc) == {
            "epoch", "site", "bucket", "region", "endpoint_url", "access_key_id", "secret_access_key",
            "session_token", "expires_at",
        }  # fmt: skip
        # Without the token, or with another one: 401 and no credential in the body.
        for token in (None, "wrong-token-0123456789", TOKEN + "x", ""):
            status, doc, _ = await site.get(session, token)
            assert (status, doc["error"]) == (401, "unauthorized") and SECRET not in json.dumps(doc)
        # The lease runs out (the lease clock passes send time + ttl): no credentials any more.
        site.clock.now += 31
        assert (await site.get(session))[:2][0] == 409
        assert (await site.get(session))[1]["error"] == "no_lease"
        # A new epoch names this site again: the credentials of epoch 7 are not for it.
        site.feed(answer("primary", 8))
        assert (await site.get(session))[1]["error"] == "no_credentials"
        # Another site's lease: no_lease, whatever was held before.
        site.feed(answer("primary", 9, creds(9)))
        assert (await site.get(session))[0] == 200
        site.feed(answer("standby", 10))
        assert (await site.get(session))[1]["error"] == "no_lease"

    run(site, scenario)
    assert site.metrics.registry.get_sample_value("hfo_agent_state_credentials_total", {"result": "ok"}) == 2
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "state credentials received" in logged
    assert SECRET not in logged and SESSION[:50] not in logged and TOKEN not in logged


def test_credentials_of_an_expired_set_are_never_served(tmp_path: Path) -> None:
    site = Site(tmp_path)

    async def scenario(session: aiohttp.ClientSession) -> None:
        site.feed(answer("primary", 3, creds(3, expires_in=-1)))
        assert (await site.get(session))[1]["error"] == "no_credentials"

    run(site, scenario)


def test_with_state_off_both_endpoints_say_so_and_heartbeats_carry_nothing(tmp_path: Path) -> None:
    site = Site(tmp_path, enabled=False)
    assert site.agent.state is None

    async def scenario(session: aiohttp.ClientSession) -> None:
        site.feed(answer("primary", 2, creds(2)))
        status, doc, _ = await site.get(session)
        assert (status, doc["error"]) == (409, "state_disabled")
        assert await site.report(session, report_doc()) == (
            409,
            {"error": "state_disabled", "detail": "HFO_STATE_ENABLED is false on this agent"},
        )

    run(site, scenario)
    assert "state" not in json.loads(build_status(site.agent.status()))


def test_the_heartbeat_asks_when_there_is_nothing_for_the_epoch_or_it_expires_soon(tmp_path: Path) -> None:
    site = Site(tmp_path)
    state = site.agent.state
    assert state is not None
    assert state.heartbeat_fields(0) == {"state": True, "state_restored": ()}
    site.feed(answer("primary", 4, creds(4)))
    assert state.wants_credentials(4) is False
    assert state.wants_credentials(5) is True  # the answer that grants epoch 5 must carry its set
    site.feed(answer("primary", 4, creds(4, expires_in=REFRESH_BEFORE_S - 5)))
    assert state.wants_credentials(4) is True
    # Credentials in an answer for another site are never kept (the watchdog would not send them).
    (tmp_path / "other").mkdir()
    other = Site(tmp_path / "other")
    other.feed(answer("standby", 6, creds(6, site="standby")))
    assert other.agent.state is not None and other.agent.state.credentials_for("standby", 6) is None


def test_reports_are_kept_per_workload_counted_shown_and_passed_to_the_watchdog(tmp_path: Path) -> None:
    site = Site(tmp_path)

    async def scenario(session: aiohttp.ClientSession) -> None:
        assert await site.report(session, report_doc()) == (204, None)
        assert await site.report(session, report_doc(event="uploaded", restored_epoch=None, epoch=7)) == (204, None)
        trader = report_doc(workload="trader", restored_epoch=6, snapshot_key=None)
        assert await site.report(session, trader) == (204, None)

    run(site, scenario)
    state = site.agent.state
    assert state is not None
    assert state.restored_epochs() == (("bot", 5), ("trader", 6))
    assert state.heartbeat_fields(7)["state_restored"] == (("bot", 5), ("trader", 6))
    shown = parse_status(build_status(site.agent.status())).state
    assert shown is not None
    assert shown["workloads"]["bot"]["event"] == "uploaded" and shown["workloads"]["trader"]["restored_epoch"] == 6
    sample = site.metrics.registry.get_sample_value
    assert sample("hfo_agent_state_events_total", {"workload": "bot", "event": "restored"}) == 1
    assert sample("hfo_agent_state_events_total", {"workload": "bot", "event": "uploaded"}) == 1


BAD_REPORTS = [
    (report_doc(workload="Bot"), "must be a DNS label"),
    (report_doc(workload=None), "must be a DNS label"),
    (report_doc(event="deleted"), "event must be one of restored, uploaded, final, fenced, failed"),
    (report_doc(epoch=-1), "epoch must be an integer from 0"),
    (report_doc(epoch="7"), "epoch must be an integer from 0"),
    (report_doc(restored_epoch=None), "restored_epoch is required for a restored event"),
    (report_doc(event="uploaded", restored_epoch=1.5), "restored_epoch must be an integer from 0"),
    (report_doc(snapshot_key="state/other/epochs/1/x"), "snapshot_key must be null or a key under state/bot/epochs/"),
    (report_doc(snapshot_key=7), "snapshot_key must be null or a key under"),
    (report_doc(at="now"), "at must be a unix time in seconds"),
    (report_doc(at=True), "at must be a unix time in seconds"),
    (report_doc(detail="x" * 201), "detail must be a string of at most 200 characters"),
    (b"not json", "report is not JSON"),
    (b"[1, 2]", "report is not a JSON object"),
    (b'{"workload": "bot", "workload": "bot"}', "given twice"),
]


@pytest.mark.parametrize(("doc", "words"), BAD_REPORTS, ids=[w[:30] for _, w in BAD_REPORTS])
def test_a_bad_report_is_a_400_naming_the_member_and_stores_nothing(tmp_path: Path, doc: Any, words: str) -> None:
    site = Site(tmp_path)

    async def scenario(session: aiohttp.ClientSession) -> None:
        status, body = await site.report(session, doc)
        assert status == 400 and body is not None and body["error"] == "bad_report" and words in body["detail"]

    run(site, scenario)
    state = site.agent.state
    assert state is not None and state.last == {} and state.restored == {}
    with pytest.raises(ReportError, match=words.split(":")[0][:20]):
        parse_report(doc if isinstance(doc, bytes) else json.dumps(doc).encode())


def test_a_report_without_the_token_or_as_another_type_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    site = Site(tmp_path)

    async def scenario(session: aiohttp.ClientSession) -> None:
        assert (await site.report(session, report_doc(), token=None))[0] == 401
        assert (await site.report(session, report_doc(), token="x" * 20))[0] == 401
        status, body = await site.report(session, report_doc(), content_type="text/plain")
        assert (status, body and body["error"]) == (415, "unsupported_media_type")
        async with session.post(
            f"{site.base}/v1/state/report",
            data=b"{" + b" " * 4096 + b"}",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 413

    run(site, scenario)
    assert site.agent.state is not None and site.agent.state.last == {}


def test_state_enabled_needs_a_readable_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "hmac"
    secret.write_text("s" * 40)
    env = {
        "HFO_SITE": "standby",
        "HFO_HMAC_SECRET_FILE": str(secret),
        "HFO_HEARTBEAT_URL": "https://watchdog.example/",
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": "true",
    }
    assert load_agent_settings(env).state_token_file is None
    with pytest.raises(ConfigError) as err:
        load_agent_settings({**env, "HFO_STATE_ENABLED": "true"})
    assert err.value.variable == "HFO_STATE_TOKEN_FILE" and "required" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_agent_settings({**env, "HFO_STATE_ENABLED": "true", "HFO_STATE_TOKEN_FILE": str(tmp_path / "none")})
    assert err.value.variable == "HFO_STATE_TOKEN_FILE" and "not a readable file" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_agent_settings({**env, "HFO_STATE_ENABLED": "sometimes"})
    assert err.value.variable == "HFO_STATE_ENABLED"
    short = tmp_path / "short"
    short.write_text("tiny")
    settings = load_agent_settings({**env, "HFO_STATE_ENABLED": "1", "HFO_STATE_TOKEN_FILE": str(short)})
    with pytest.raises(ConfigError) as err:
        make_state_access(settings, AgentMetrics())
    assert err.value.variable == "HFO_STATE_TOKEN_FILE" and "tiny" not in str(err.value)
