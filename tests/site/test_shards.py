"""Shard-aware scaling (hfo_site.shards): the client of GET /gateway/bot against a fake Discord on loopback
(normal answers, 429 with retry_after, 401, 5xx, malformed and oversized answers, redirects, timeouts, a changed
count), the pure decision with its bounds and hysteresis, and the settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from hfo_site.config import ConfigError, load_agent_settings
from hfo_site.secrets import SecretError, parse_bot_token
from hfo_site.shards import (
    AUTH_BACKOFF_S,
    GatewayBot,
    GatewayClient,
    GatewayError,
    Pending,
    Recommender,
    SessionStartLimit,
    ShardPlan,
    ShardPolicy,
    decide,
    parse_gateway_bot,
    plan_from_env,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from testsupport.fake_gateway_bot import FakeGatewayBot, answer_doc

TOKEN = "MTA0MDAwMDAwMDAwMDAwMDAw.GhFoTk.very-secret-token-value_0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def discord() -> Iterator[FakeGatewayBot]:
    with FakeGatewayBot(TOKEN, shards=3) as fake:
        yield fake


def polls(fake: FakeGatewayBot, steps, refresh_s: float = 900.0, api: str | None = None, timeout_s: float = 2.0):
    """Run ``steps(recommender, clock)`` (a coroutine function) with a real client against ``fake``."""
    clock = Clock()

    async def main():
        async with aiohttp.ClientSession() as session:
            client = GatewayClient(api or fake.api, lambda: TOKEN, session, timeout_s)
            return await steps(Recommender(client, refresh_s, clock), clock)

    return asyncio.run(main())


# -- the client, against the fake Discord ------------------------------------------------------------------
def test_a_normal_answer_is_read_with_the_bot_token_in_the_documented_header(discord: FakeGatewayBot) -> None:
    async def steps(rec: Recommender, clock: Clock):
        return await rec.poll()

    answer = polls(discord, steps)
    assert answer == GatewayBot(3, SessionStartLimit(1000, 1000, 14400.0, 1))
    (seen,) = discord.requests()
    assert seen.authorization == f"Bot {TOKEN}"
    assert seen.user_agent is not None and seen.user_agent.startswith("DiscordBot (")


def test_it_asks_again_only_after_the_refresh_interval_and_follows_a_changed_count(discord: FakeGatewayBot) -> None:
    async def steps(rec: Recommender, clock: Clock):
        first = await rec.poll()
        discord.shards = 7
        clock.now += 899
        cached = await rec.poll()  # not due: no request
        clock.now += 1
        fresh = await rec.poll()
        return first.shards, cached.shards, fresh.shards

    assert polls(discord, steps) == (3, 3, 7)
    assert len(discord.requests()) == 2


@pytest.mark.parametrize(("glob", "header"), [(False, None), (True, None), (False, "9")])
def test_a_429_is_honoured_no_request_before_retry_after_and_the_last_count_stays(
    discord: FakeGatewayBot, caplog: pytest.LogCaptureFixture, glob: bool, header: str | None
) -> None:
    """Body ``retry_after`` 2.5 s; with a later ``Retry-After`` header (9 s), the later one wins."""
    wait = 9.0 if header else 2.5

    async def steps(rec: Recommender, clock: Clock):
        await rec.poll()
        clock.now += 900
        discord.rate_limit(2.5, glob=glob, header=header)
        discord.shards = 5
        during = await rec.poll()  # the 429
        asked = len(discord.requests())
        clock.now += wait - 0.01
        await rec.poll()  # still inside retry_after: nothing sent
        still = len(discord.requests())
        clock.now += 0.01
        after = await rec.poll()
        return during.shards, asked, still, after.shards, rec.failures

    with caplog.at_level(logging.INFO, logger="hfo_site.shards"):
        during, asked, still, after, failures = polls(discord, steps)
    assert (during, asked, still, after, failures) == (3, 2, 2, 5, 0)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.kind == "rate_limited" and warning.retry_in_s == wait  # type: ignore[attr-defined]
    assert ("global" if glob else "user") in warning.error  # type: ignore[attr-defined]


def test_a_429_without_a_usable_delay_backs_off_instead_of_hammering(discord: FakeGatewayBot) -> None:
    discord.then(429, b"<html>slow down</html>")
    discord.then(429, {"message": "You are being rate limited.", "retry_after": 0, "global": False})

    async def steps(rec: Recommender, clock: Clock):
        await rec.poll()
        first = rec.next_at - clock.now
        clock.now = rec.next_at
        await rec.poll()
        return first, rec.next_at - clock.now

    assert polls(discord, steps) == (5.0, 1.0)  # the first backoff step; a retry_after of 0 still waits 1 s


def test_5xx_garbage_and_oversized_answers_keep_the_last_good_count_and_back_off(discord: FakeGatewayBot) -> None:
    async def steps(rec: Recommender, clock: Clock):
        good = await rec.poll()
        clock.now += 900
        discord.then(500, {"message": "internal"})
        discord.then(502, b"<html>bad gateway</html>")
        discord.then(200, b"{not json")
        discord.then(200, {"shards": "12", "session_start_limit": answer_doc(1)["session_start_limit"]})
        discord.then(200, {"shards": 0, "session_start_limit": answer_doc(1)["session_start_limit"]})
        discord.then(200, {"shards": 4})
        discord.then(200, b"[" + b"1," * 20000 + b"1]")
        waits, kept = [], []
        for _ in range(7):
            kept.append((await rec.poll()).shards)
            waits.append(rec.next_at - clock.now)
            kinds.append(rec.last_error.kind)
            clock.now = rec.next_at
        discord.shards = 4
        return good.shards, kept, waits, (await rec.poll()).shards

    kinds: list[str] = []
    good, kept, waits, last = polls(discord, steps, refresh_s=60.0)
    assert good == 3 and kept == [3] * 7 and last == 4
    assert waits == [5, 10, 20, 40, 60, 60, 60]  # exponential, capped at the refresh interval
    assert kinds == ["http", "http", "malformed", "malformed", "malformed", "malformed", "malformed"]


def test_a_refused_token_backs_off_ten_minutes_and_the_token_never_reaches_a_log(
    discord: FakeGatewayBot, caplog: pytest.LogCaptureFixture
) -> None:
    discord.token = "another-token-entirely-0123456789"

    async def steps(rec: Recommender, clock: Clock):
        answer = await rec.poll()
        return answer, rec.next_at - clock.now, rec.last_error

    with caplog.at_level(logging.DEBUG):
        answer, wait, error = polls(discord, steps, refresh_s=60.0)
    assert answer is None and wait == AUTH_BACKOFF_S and error.kind == "unauthorized"
    assert "HFO_DISCORD_TOKEN_FILE" in str(error)
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in str(vars(record))


def test_a_redirect_is_not_followed_so_the_token_goes_nowhere_else(discord: FakeGatewayBot) -> None:
    discord.then(307, b"", {"Location": f"http://127.0.0.1:{discord.port}/elsewhere/gateway/bot"})

    async def steps(rec: Recommender, clock: Clock):
        return await rec.poll(), rec.last_error

    answer, error = polls(discord, steps)
    assert answer is None and error.kind == "http" and error.status == 307
    assert discord.requests("/elsewhere/gateway/bot") == []


def test_a_slow_answer_times_out(discord: FakeGatewayBot) -> None:
    discord.then(200, answer_doc(9), delay_s=1.0)

    async def steps(rec: Recommender, clock: Clock):
        return await rec.poll(), rec.last_error

    answer, error = polls(discord, steps, timeout_s=0.2)
    assert answer is None and error.kind == "timeout"


def test_nothing_listening_is_a_network_error(discord: FakeGatewayBot) -> None:
    from testsupport.net import free_port

    async def steps(rec: Recommender, clock: Clock):
        return await rec.poll(), rec.last_error

    answer, error = polls(discord, steps, api=f"http://127.0.0.1:{free_port()}/api/v10")
    assert answer is None and error.kind == "network"


def test_parse_refuses_wrong_types() -> None:
    with pytest.raises(GatewayError, match="'max_concurrency' must be an integer between 1"):
        doc = answer_doc(2)
        doc["session_start_limit"]["max_concurrency"] = 0  # type: ignore[index]
        import json

        parse_gateway_bot(json.dumps(doc).encode())
    with pytest.raises(GatewayError, match="'shards' must be an integer"):
        parse_gateway_bot(b'{"shards": true, "session_start_limit": {}}'.replace(b"{}", b'{"total": 1}'))


# -- the token file ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "fragment"),
    [("", "is empty"), (f"Bot {TOKEN}", "without a 'Bot '"), (f"{TOKEN} extra", "without spaces")],
)
def test_bad_token_files_are_refused_without_showing_the_token(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "token"
    path.write_text(content + "\n")
    with pytest.raises(SecretError, match=fragment) as info:
        parse_bot_token(path)
    assert TOKEN not in str(info.value)


def test_a_token_file_with_a_newline_is_read() -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
        f.write(TOKEN + "\n")
        f.flush()
        assert parse_bot_token(Path(f.name)) == TOKEN


# -- the decision ------------------------------------------------------------------------------------------
POLICY = ShardPolicy(per_pod=4, min_replicas=1, max_replicas=8, grow_after_s=0.0, shrink_after_s=3600.0)


def answer(shards: int, remaining: int = 1000) -> GatewayBot:
    return GatewayBot(shards, SessionStartLimit(1000, remaining, 3600.0, 1))


def test_seed_001_example_twelve_shards_four_per_pod_three_pods() -> None:
    decision = decide(POLICY, None, None, answer(12), 0.0, running=False)
    assert decision.plan == ShardPlan(12, 4) and decision.plan.replicas == 3
    assert decision.plan.env() == {"SHARD_COUNT": "12", "SHARDS_PER_POD": "4"}
    assert decide(POLICY, None, None, answer(10), 0.0, running=False).plan.replicas == 3  # the last pod has 2


def test_bounds_cap_the_pods_and_give_every_pod_a_shard() -> None:
    policy = ShardPolicy(per_pod=4, min_replicas=2, max_replicas=3, grow_after_s=0, shrink_after_s=0)
    assert decide(policy, None, None, answer(100), 0, False).plan == ShardPlan(12, 4)  # 3 pods at most
    assert decide(policy, None, None, answer(1), 0, False).plan == ShardPlan(5, 4)  # pod 1 needs a shard


def test_growth_is_taken_at_once_and_shrinking_only_after_it_held_the_whole_window() -> None:
    current = ShardPlan(12, 4)
    up = decide(POLICY, current, None, answer(16), 0.0, running=True)
    assert up.changed and up.plan == ShardPlan(16, 4)
    d = decide(POLICY, current, None, answer(8), 0.0, running=True)
    assert not d.changed and d.pending == Pending(8, 0.0)
    d = decide(POLICY, current, d.pending, answer(10), 1800.0, running=True)
    assert not d.changed and d.pending == Pending(10, 0.0)  # the value nearest 12 that held
    d = decide(POLICY, current, d.pending, answer(8), 3600.0, running=True)
    assert d.changed and d.plan == ShardPlan(10, 4)


def test_a_recommendation_back_at_the_current_count_resets_the_window() -> None:
    current = ShardPlan(12, 4)
    d = decide(POLICY, current, None, answer(8), 0.0, True)
    d = decide(POLICY, current, d.pending, answer(12), 100.0, True)
    assert d.pending is None and not d.changed
    d = decide(POLICY, current, d.pending, answer(8), 200.0, True)
    d = decide(POLICY, current, d.pending, answer(8), 3700.0, True)
    assert not d.changed, "the window restarted at 200 s"
    assert decide(POLICY, current, d.pending, answer(8), 3800.0, True).plan == ShardPlan(8, 4)


def test_a_reshard_waits_for_the_session_start_budget_but_a_start_does_not() -> None:
    current = ShardPlan(12, 4)
    d = decide(POLICY, current, None, answer(16, remaining=31), 0.0, running=True)
    assert not d.changed and "postponed: 31 session starts left, 32 needed" in d.reason
    assert decide(POLICY, current, d.pending, answer(16, remaining=32), 60.0, True).plan == ShardPlan(16, 4)
    assert decide(POLICY, current, None, answer(16, remaining=0), 0.0, running=False).changed


def test_without_an_answer_the_last_plan_is_kept_within_todays_bounds() -> None:
    assert decide(POLICY, None, None, None, 0, False).plan == ShardPlan(1, 1)  # the bot refuses 4 per pod of 1
    assert not decide(POLICY, ShardPlan(12, 4), None, None, 0, True).changed
    assert decide(POLICY, ShardPlan(64, 4), None, None, 0, True).plan == ShardPlan(32, 4)  # max 8 pods
    assert decide(POLICY, ShardPlan(5, 1), None, None, 0, False).plan == ShardPlan(5, 4)  # per pod changed
    assert plan_from_env({"SHARD_COUNT": "6", "SHARDS_PER_POD": "2"}, POLICY) == ShardPlan(6, 2)
    assert plan_from_env({"SHARD_COUNT": "six"}, POLICY) is None


policies = st.builds(
    ShardPolicy,
    per_pod=st.integers(1, 16),
    min_replicas=st.integers(1, 4),
    max_replicas=st.integers(4, 64),
    grow_after_s=st.sampled_from([0.0, 60.0, 600.0]),
    shrink_after_s=st.sampled_from([0.0, 600.0, 3600.0]),
)
observations = st.lists(
    st.tuples(st.floats(1.0, 900.0), st.one_of(st.none(), st.integers(1, 400)), st.integers(0, 1000)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(policy=policies, seen=observations)
def test_every_plan_is_one_the_bot_accepts_and_no_shrink_comes_before_its_window(policy, seen) -> None:
    """Whatever Discord answers (or not), in any order: the plan stays within the bounds, every pod from 0 to
    replicas-1 has a shard (hfo_bot.sharding would refuse the others), and the count goes down only once a
    lower recommendation held for shrink_after_s, never below a value seen during that window."""
    from hfo_bot.sharding import assign

    now, current, pending = 0.0, None, None
    history: list[tuple[float, int | None]] = []
    for step, shards, remaining in seen:
        now += step
        ans = None if shards is None else answer(shards, remaining)
        history.append((now, shards))
        d = decide(policy, current, pending, ans, now, running=current is not None)
        plan = d.plan
        assert plan is not None
        assert policy.min_replicas <= plan.replicas <= policy.max_replicas
        for ordinal in range(plan.replicas):
            assert assign(plan.env(), f"bot-{ordinal}").shard_ids
        settled = current is not None and current == policy.plan(current.shard_count)
        if current is not None and settled and plan.shard_count < current.shard_count:
            assert ans is not None, "no answer never shrinks a plan within its bounds"
            recent = [policy.bound(s) for t, s in history if s is not None and t >= now - policy.shrink_after_s]
            assert max(recent) <= plan.shard_count, "a shrink below a count recommended inside the window"
            if policy.shrink_after_s:
                older = [policy.bound(s) for t, s in history if s is not None and t <= now - policy.shrink_after_s]
                assert older and min(older) <= plan.shard_count, "the lower count did not hold the whole window"
        current, pending = plan, d.pending


@settings(max_examples=200, deadline=None)
@given(policy=policies, shards=st.integers(1, 400), steps=st.integers(1, 20))
def test_a_steady_recommendation_settles_and_then_never_moves(policy, shards, steps) -> None:
    now, current, pending = 0.0, policy.plan(policy.bound(1 if shards > 200 else 400)), None
    changes = 0
    for _ in range(steps + 8):
        now += 600.0
        d = decide(policy, current, pending, answer(shards), now, running=True)
        changes += d.changed
        current, pending = d.plan, d.pending
    assert current == policy.plan(policy.bound(shards))
    assert changes <= 1, "one reshard to the steady value, no flapping"


# -- settings ----------------------------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secret").write_text("x" * 40)
    (tmp_path / "bot-token").write_text(TOKEN)
    return {
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(tmp_path / "secret"),
        "HFO_HEARTBEAT_URL": "https://abc.lambda-url.eu-west-1.on.aws/",
        "HFO_BACKEND": "kubernetes",
        "HFO_K8S_NAMESPACE": "hfo",
        "HFO_K8S_WORKLOADS": "statefulset/bot",
        "HFO_SHARDS_ENABLED": "true",
        "HFO_DISCORD_TOKEN_FILE": str(tmp_path / "bot-token"),
    }


def test_shard_settings_are_off_by_default_and_documented_defaults_when_on(env: dict[str, str]) -> None:
    assert load_agent_settings({**env, "HFO_SHARDS_ENABLED": "false"}).shards is None
    shards = load_agent_settings(env).shards
    assert shards is not None
    assert (shards.workload.kind, shards.workload.name, shards.configmap) == ("statefulset", "bot", "hfo-bot-shards")
    assert (shards.per_pod, shards.min_replicas, shards.max_replicas) == (1, 1, 16)
    assert (shards.grow_after_s, shards.shrink_after_s, shards.refresh_s, shards.timeout_s) == (0, 21600, 900, 10)
    assert shards.api_url == "https://discord.com/api/v10"


@pytest.mark.parametrize(
    ("change", "variable", "fragment"),
    [
        ({"HFO_BACKEND": "exec", "HFO_EXEC_COMMAND": "bot"}, "HFO_SHARDS_ENABLED", "needs HFO_BACKEND=kubernetes"),
        ({"HFO_K8S_WORKLOADS": "deployment/bot"}, "HFO_SHARDS_WORKLOAD", "lists 0 StatefulSets"),
        ({"HFO_K8S_WORKLOADS": "statefulset/a,statefulset/b"}, "HFO_SHARDS_WORKLOAD", "lists 2 StatefulSets"),
        ({"HFO_SHARDS_WORKLOAD": "other"}, "HFO_SHARDS_WORKLOAD", "not a StatefulSet listed"),
        ({"HFO_SHARDS_PER_POD": "0"}, "HFO_SHARDS_PER_POD", "between 1 and 65535"),
        ({"HFO_SHARDS_MIN_REPLICAS": "5", "HFO_SHARDS_MAX_REPLICAS": "4"}, "HFO_SHARDS_MAX_REPLICAS", "at least"),
        ({"HFO_SHARDS_MAX_REPLICAS": "1001"}, "HFO_SHARDS_MAX_REPLICAS", "between 1 and 1000"),
        ({"HFO_SHARDS_REFRESH_S": "0.5"}, "HFO_SHARDS_REFRESH_S", "between 1 and 86400"),
        ({"HFO_SHARDS_REFRESH_S": "5"}, "HFO_DISCORD_TIMEOUT_S", "must not exceed HFO_SHARDS_REFRESH_S"),
        ({"HFO_SHARDS_CONFIGMAP": "Bad_Name"}, "HFO_SHARDS_CONFIGMAP", "not a valid Kubernetes object name"),
        ({"HFO_DISCORD_TOKEN_FILE": ""}, "HFO_DISCORD_TOKEN_FILE", "required"),
        ({"HFO_DISCORD_TOKEN_FILE": "/nonexistent/t"}, "HFO_DISCORD_TOKEN_FILE", "not a readable file"),
        ({"HFO_DISCORD_API_URL": "http://discord.com/api/v10"}, "HFO_DISCORD_API_URL", "must be https://"),
        ({"HFO_DISCORD_API_URL": "ftp://discord.com/"}, "HFO_DISCORD_API_URL", "https or http"),
        ({"HFO_DISCORD_API_URL": "https://a:b@discord.com/"}, "HFO_DISCORD_API_URL", "credentials"),
        ({"HFO_SHARDS_ENABLED": "maybe"}, "HFO_SHARDS_ENABLED", "true or false"),
    ],
)
def test_bad_shard_settings_are_refused_naming_the_variable(
    env: dict[str, str], change: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_agent_settings({**env, **change})
    assert info.value.variable == variable, str(info.value)
    assert fragment in str(info.value)
    assert TOKEN not in str(info.value)


def test_a_loopback_http_api_is_allowed_for_tests(env: dict[str, str]) -> None:
    shards = load_agent_settings({**env, "HFO_DISCORD_API_URL": "http://127.0.0.1:8000/api/v10"}).shards
    assert shards is not None and shards.api_url == "http://127.0.0.1:8000/api/v10"


class ScriptedClient:
    """A stand-in for GatewayClient (the HTTP side is tested above): answers from a script, records when asked."""

    def __init__(self, script: list[tuple[str, float]], clock: Clock) -> None:
        self.script = list(script)
        self.clock = clock
        self.asked: list[float] = []

    async def fetch(self) -> tuple[GatewayBot, float | None]:
        self.asked.append(self.clock.now)
        kind, value = self.script.pop(0) if self.script else ("ok", 1.0)
        if kind == "ok":
            return answer(int(value)), None
        if kind == "rate_limited":
            raise GatewayError(kind, "429", 429, value)
        raise GatewayError(kind, kind, 500 if kind == "http" else 401 if kind == "unauthorized" else None)


answers_script = st.lists(
    st.one_of(
        st.tuples(st.just("ok"), st.integers(1, 50).map(float)),
        st.tuples(st.just("rate_limited"), st.floats(0.0, 5000.0)),
        st.tuples(st.sampled_from(["http", "timeout", "network", "malformed", "unauthorized"]), st.just(0.0)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(script=answers_script, refresh=st.sampled_from([1.0, 60.0, 900.0]), ticks=st.lists(st.floats(0.01, 700.0)))
def test_whatever_discord_answers_the_agent_never_asks_early_and_keeps_the_last_good_count(script, refresh, ticks):
    """Polled at arbitrary times: no request before a 429's retry_after, none within AUTH_BACKOFF_S of a refused
    token, at most one per refresh interval after a good answer, and the count returned is always the last good."""
    clock = Clock()
    client = ScriptedClient(script, clock)
    rec = Recommender(client, refresh, clock)  # type: ignore[arg-type]
    outcomes = list(script)
    last_good: int | None = None

    async def run() -> None:
        nonlocal last_good
        earliest = clock.now
        for tick in [0.0, *ticks]:
            clock.now += tick
            before = len(client.asked)
            got = await rec.poll()
            if len(client.asked) > before:
                assert clock.now >= earliest, f"asked at {clock.now}, not before {earliest}"
                kind, value = outcomes.pop(0) if outcomes else ("ok", 1.0)
                if kind == "ok":
                    last_good = int(value)
                    earliest = clock.now + refresh
                elif kind == "rate_limited":
                    earliest = clock.now + value
                elif kind == "unauthorized":
                    earliest = clock.now + max(refresh, AUTH_BACKOFF_S)
                else:
                    earliest = clock.now + min(refresh, 5.0)  # at least the first backoff step
            assert (got.shards if got else None) == last_good

    asyncio.run(run())


def test_the_refresh_loop_outlives_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    from hfo_site.backends.sharded import ShardedBackend
    from hfo_site.config import ShardSettings, WorkloadRef

    stop = asyncio.Event()

    class Flaky:  # a recommender whose first poll hits a bug
        next_at, requests, last_good, last_error, calls = 0.0, 0, None, None, 0

        async def poll(self):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("a bug")
            stop.set()

    settings = ShardSettings(
        WorkloadRef("statefulset", "bot"), "hfo-bot-shards", 1, 1, 4, 0.0, 60.0, 1.0, Path("/t"), "https://x", 1.0
    )
    flaky = Flaky()
    backend = ShardedBackend(None, None, settings, flaky)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="hfo_site.shards"):
        asyncio.run(asyncio.wait_for(backend.run(stop, lambda: False), 5))
    assert flaky.calls == 2
    assert any(r.getMessage() == "shard refresh failed unexpectedly" for r in caplog.records)
