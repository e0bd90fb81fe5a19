"""Shard-aware scaling (issue 14, after seed 001's scaler): how many shards and bot pods to run.

Two parts, kept apart so the decision is a pure function:

- ``decide``: Discord's recommended shard count -> a ``ShardPlan`` (``SHARD_COUNT``,
  ``SHARDS_PER_POD`` and the replica count ``ceil(shards / per_pod)``), bounded by a min/max replica
  count, with hysteresis: a higher recommendation is taken after ``grow_after_s``, a lower one only
  after it held for ``shrink_after_s`` (the value taken is the one nearest the current count that held
  over the whole window), and a reshard of a running bot waits while Discord's session start budget
  could not pay for it twice (the reshard itself, and a failover right after it).
- ``GatewayClient`` / ``Recommender``: ``GET /gateway/bot`` with ``Authorization: Bot <token>``
  (the token read from a file, never logged, never sent over a redirect), a total timeout and a body
  cap. A 429 is honoured: no request before its ``retry_after`` (body) or ``Retry-After`` (header),
  whichever is later, global or not. 401/403 (a wrong token) back off for at least
  ``AUTH_BACKOFF_S``: Discord counts 401, 403 and 429 answers towards its invalid-request limit
  (10,000 per 10 minutes per IP, then a Cloudflare ban that would hit the bot on the same address).
  5xx, timeouts, network errors and malformed answers back off exponentially, and the last known
  good answer stays in force (docs/kubernetes.md#shard-aware-scaling).
"""

from __future__ import annotations

import json
import logging
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from hfo_site import __version__
from hfo_site.http_body import read_capped

log = logging.getLogger("hfo_site.shards")

MAX_SHARDS = 65535  # the bot's own bound (hfo_bot.sharding.MAX_SHARD_COUNT)
MAX_ANSWER_BYTES = 16 * 1024  # GET /gateway/bot answers ~200 bytes
MAX_RETRY_AFTER_S = 24 * 3600.0  # a retry_after beyond a day is read as a day (garbage guard)
AUTH_BACKOFF_S = 600.0  # after 401/403: at most one invalid request per 10 minutes
FIRST_BACKOFF_S = 5.0  # after a 5xx/timeout/garbage: 5, 10, 20 ... s, at most the refresh interval
SESSION_RESERVE_FACTOR = 2  # a reshard to S shards needs S session starts now and S in reserve
MIN_RETRY_S = 1.0  # a 429 saying 0 (or less than this) still waits this long: never a tight loop
# Discord asks for "DiscordBot ($url, $versionNumber)"; the project has no canonical URL, a fork sets its own.
USER_AGENT = f"DiscordBot (https://github.com/your-github-user/hybrid-failover, {__version__}) hfo-site-agent"


# -- Discord's answer -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionStartLimit:
    total: int
    remaining: int
    reset_after_s: float  # Discord sends milliseconds
    max_concurrency: int


@dataclass(frozen=True)
class GatewayBot:
    shards: int
    session_start_limit: SessionStartLimit


class GatewayError(Exception):
    """One GET /gateway/bot that gave no usable answer. ``kind``: rate_limited, unauthorized, http,
    timeout, network, malformed. The message never holds the token or a header."""

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


def _int_field(doc: dict[str, object], key: str, low: int, high: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise GatewayError("malformed", f"field {key!r} must be an integer between {low} and {high}")
    return value


def parse_gateway_bot(body: bytes) -> GatewayBot:
    """The JSON of GET /gateway/bot; anything else raises GatewayError(kind="malformed")."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise GatewayError("malformed", "the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise GatewayError("malformed", "the answer is not a JSON object")
    limit = doc.get("session_start_limit")
    if not isinstance(limit, dict):
        raise GatewayError("malformed", "field 'session_start_limit' must be an object")
    return GatewayBot(
        shards=_int_field(doc, "shards", 1, MAX_SHARDS),
        session_start_limit=SessionStartLimit(
            total=_int_field(limit, "total", 0, 10**9),
            remaining=_int_field(limit, "remaining", 0, 10**9),
            reset_after_s=_int_field(limit, "reset_after", 0, 10**12) / 1000.0,
            max_concurrency=_int_field(limit, "max_concurrency", 1, 10**6),
        ),
    )


def _seconds(raw: object) -> float | None:
    """A retry delay in seconds from a JSON number or a header string; None when unusable."""
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, MAX_RETRY_AFTER_S)


def retry_after(body: bytes, header: str | None) -> float | None:
    """The later of the 429 body's ``retry_after`` and the ``Retry-After`` header, in seconds."""
    found: list[float] = []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and (value := _seconds(doc.get("retry_after"))) is not None:
        found.append(value)
    if header is not None and (value := _seconds(header.strip())) is not None:
        found.append(value)
    return max(found) if found else None


def _scope(body: bytes, header: str) -> str:
    """global, user, shared (X-RateLimit-Scope), or global from the body's ``global: true``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and doc.get("global") is True:
        return "global"
    return header.strip()[:16] or "route"


# -- the client -------------------------------------------------------------------------------------
class GatewayClient:
    """One GET {api}/gateway/bot per ``fetch``."""

    def __init__(
        self,
        api_url: str,
        token: Callable[[], str],
        session: aiohttp.ClientSession,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = api_url.rstrip("/") + "/gateway/bot"
        self._token = token
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True

    async def fetch(self) -> tuple[GatewayBot, float | None]:
        """Discord's answer, and how long the route's bucket asks to wait when it is exhausted
        (``X-RateLimit-Remaining: 0``) or None. Raises GatewayError."""
        headers = {"Authorization": f"Bot {self._token()}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        try:
            async with self._session.get(
                self.url, headers=headers, timeout=self._timeout, allow_redirects=False, ssl=self._ssl
            ) as resp:
                body = await read_capped(resp.content, MAX_ANSWER_BYTES)
                status = resp.status
                retry_header = resp.headers.get("Retry-After")
                scope = resp.headers.get("X-RateLimit-Scope", "")
                bucket_left = resp.headers.get("X-RateLimit-Remaining")
                bucket_reset = resp.headers.get("X-RateLimit-Reset-After")
        except TimeoutError:
            raise GatewayError("timeout", "no answer within the timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise GatewayError("network", f"no answer ({type(exc).__name__})") from None
        if status == 429:
            wait = retry_after(body, retry_header)
            raise GatewayError("rate_limited", f"429 rate limited ({_scope(body, scope)})", 429, wait)
        if status in (401, 403):
            raise GatewayError(
                "unauthorized", f"{status}: Discord refused the bot token (HFO_DISCORD_TOKEN_FILE)", status
            )
        if status != 200:
            raise GatewayError("http", f"HTTP {status}", status)
        if len(body) > MAX_ANSWER_BYTES:
            raise GatewayError("malformed", f"the answer is longer than {MAX_ANSWER_BYTES} bytes", 200)
        answer = parse_gateway_bot(body)
        bucket_wait = _seconds(bucket_reset) if bucket_left is not None and bucket_left.strip() == "0" else None
        return answer, bucket_wait


class Recommender:
    """Asks Discord at most every ``refresh_s`` (sooner after a failure, never before a 429's
    retry_after) and keeps the last good answer."""

    def __init__(self, client: GatewayClient, refresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.refresh_s = refresh_s
        self._clock = clock
        self.last_good: GatewayBot | None = None
        self.last_good_at: float | None = None
        self.next_at = clock()  # the first poll asks at once
        self.failures = 0
        self.last_error: GatewayError | None = None
        self.requests = 0

    def due(self) -> bool:
        return self._clock() >= self.next_at

    async def poll(self) -> GatewayBot | None:
        """Ask if due; the freshest good answer (None until one came)."""
        if not self.due():
            return self.last_good
        self.requests += 1
        try:
            answer, bucket_wait = await self._client.fetch()
        except GatewayError as exc:
            self._failed(exc)
            return self.last_good
        now = self._clock()
        if self.failures:
            log.info("Discord answers GET /gateway/bot again", extra={"after_failures": self.failures})
        self.failures = 0
        self.last_error = None
        self.last_good, self.last_good_at = answer, now
        self.next_at = now + max(self.refresh_s, bucket_wait or 0.0)
        return answer

    def _failed(self, exc: GatewayError) -> None:
        now = self._clock()
        self.failures += 1
        self.last_error = exc
        if exc.kind == "rate_limited":
            # Honour it (at least MIN_RETRY_S); with no usable delay, wait as after any other failure.
            wait = max(exc.retry_after_s, MIN_RETRY_S) if exc.retry_after_s is not None else self._backoff()
        elif exc.kind == "unauthorized":
            wait = max(self.refresh_s, AUTH_BACKOFF_S)
        else:
            wait = self._backoff()
        self.next_at = now + wait
        level = logging.ERROR if exc.kind == "unauthorized" else logging.WARNING
        log.log(
            level,
            "GET /gateway/bot failed; keeping the last known shard count",
            extra={
                "kind": exc.kind,
                "error": str(exc),
                "retry_in_s": round(wait, 3),
                "failures": self.failures,
                "last_good_shards": self.last_good.shards if self.last_good else None,
            },
        )

    def _backoff(self) -> float:
        return float(min(self.refresh_s, FIRST_BACKOFF_S * 2 ** min(self.failures - 1, 20)))


# -- the decision -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardPolicy:
    per_pod: int
    min_replicas: int
    max_replicas: int
    grow_after_s: float
    shrink_after_s: float

    def bound(self, recommended: int) -> int:
        """The shard count to run for a recommendation: every pod from 0 to ``replicas - 1`` gets at
        least one shard (the bot refuses an ordinal without shards), and replicas stay within bounds."""
        low = (self.min_replicas - 1) * self.per_pod + 1
        high = min(self.max_replicas * self.per_pod, MAX_SHARDS)
        return max(low, min(high, recommended))

    def plan(self, shard_count: int) -> ShardPlan:
        """A plan for ``shard_count`` the bot accepts: it refuses SHARDS_PER_POD above SHARD_COUNT."""
        return ShardPlan(shard_count, min(self.per_pod, shard_count))


@dataclass(frozen=True)
class ShardPlan:
    shard_count: int
    per_pod: int

    @property
    def replicas(self) -> int:
        return -(-self.shard_count // self.per_pod)

    def env(self) -> dict[str, str]:
        """What the bot pods read (hfo_bot.sharding): the whole ConfigMap's data."""
        return {"SHARD_COUNT": str(self.shard_count), "SHARDS_PER_POD": str(self.per_pod)}

    def describe(self) -> str:
        return f"{self.shard_count} shards, {self.per_pod} per pod, {self.replicas} pods"


@dataclass(frozen=True)
class Pending:
    """A change seen but not taken yet: ``target`` has held (as the value nearest the current count)
    since ``since``."""

    target: int
    since: float


@dataclass(frozen=True)
class Decision:
    plan: ShardPlan | None
    pending: Pending | None
    changed: bool
    reason: str


def plan_from_env(data: dict[str, str], policy: ShardPolicy) -> ShardPlan | None:
    """The plan a ConfigMap's data records (the last one applied), if it is one the bot accepts."""
    try:
        count, per = int(data.get("SHARD_COUNT", "")), int(data.get("SHARDS_PER_POD", ""))
    except ValueError:
        return None
    if not 1 <= count <= MAX_SHARDS or not 1 <= per <= MAX_SHARDS:
        return None
    return ShardPlan(count, per)


def session_budget_ok(plan: ShardPlan, limit: SessionStartLimit) -> bool:
    """Enough session starts left to reshard to ``plan`` and still start it once more."""
    return limit.remaining >= SESSION_RESERVE_FACTOR * plan.shard_count


def decide(
    policy: ShardPolicy,
    current: ShardPlan | None,
    pending: Pending | None,
    answer: GatewayBot | None,
    now: float,
    running: bool,
) -> Decision:
    """What to run after one look at Discord's answer. Pure.

    ``current`` is the plan in force (None before any), ``running`` whether the bot runs under it
    now (a change then costs a reshard: every shard identifies again)."""
    if answer is None:  # keep what runs, within today's bounds and shards per pod
        base = current.shard_count if current is not None else 1
        plan = policy.plan(policy.bound(base))
        if plan == current:
            return Decision(current, pending, False, "no answer from Discord: keeping the current plan")
        return Decision(plan, None, True, "no answer from Discord: the last known count within the bounds")
    target = policy.bound(answer.shards)
    if current is None or current != policy.plan(current.shard_count):
        why = "first recommendation" if current is None else "shards per pod or bounds changed"
        return Decision(policy.plan(target), None, True, why)
    if target == current.shard_count:
        return Decision(current, None, False, "recommendation unchanged")
    growing = target > current.shard_count
    if pending is None or (pending.target > current.shard_count) != growing:
        pending = Pending(target, now)  # a new window, in this direction
    else:  # the same direction: the value nearest the current count held over the whole window
        pending = Pending(min(pending.target, target) if growing else max(pending.target, target), pending.since)
    wait = policy.grow_after_s if growing else policy.shrink_after_s
    held = now - pending.since
    if held < wait:
        return Decision(
            current,
            pending,
            False,
            f"{'higher' if growing else 'lower'} recommendation held {held:.0f} s of {wait:g} s",
        )
    plan = policy.plan(pending.target)
    if running and not session_budget_ok(plan, answer.session_start_limit):
        limit = answer.session_start_limit
        return Decision(
            current,
            pending,
            False,
            f"reshard postponed: {limit.remaining} session starts left, {SESSION_RESERVE_FACTOR * plan.shard_count}"
            f" needed; the budget resets in {limit.reset_after_s:.0f} s",
        )
    return Decision(plan, None, True, f"recommendation {answer.shards} shards held {held:.0f} s")
