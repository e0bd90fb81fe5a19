"""The two Lambda entry points: `tick` (EventBridge schedule) and `heartbeat` (Function URL).

Thin on purpose: parse, log, delegate to tick.run_tick / heartbeat.handle. Importing this module
loads only the Powertools Logger and Metrics; settings, secrets, boto3 clients and adapters are
built on the first invocation of a container (its cold start) and reused while it stays warm.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hfo_watchdog.observability import Metric, logger, publishing_metrics, put_metric, traced

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from hfo_protocol.keys import Keyring

    from hfo_watchdog.config import Settings
    from hfo_watchdog.heartbeat import HeartbeatDeps
    from hfo_watchdog.ports import Notifier, Prober, StandbyInstance
    from hfo_watchdog.store import DynamoStateStore
    from hfo_watchdog.tick import Effects, TickDeps

_CLIENT_CONNECT_TIMEOUT_S = 3.0
_CLIENT_READ_TIMEOUT_S = 5.0


class Runtime:
    """Everything a container builds once: settings, clients, secrets, adapters. Thread-safe (the
    demo drives both handlers from two threads of one process)."""

    def __init__(self, settings: Settings) -> None:
        import boto3

        from hfo_watchdog.config import Secrets

        self.settings = settings
        self._session = boto3.session.Session()
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}
        self.secrets = Secrets(settings, lambda: self.client("secretsmanager"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Runtime:
        from hfo_watchdog.config import Settings

        return cls(Settings.from_env(env))

    def _once(self, name: str, build: Any) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    def use(self, name: str, component: Any) -> None:
        """Put a ready-made component in place of one this runtime would build ("prober",
        "standby", "notifier"): the benchmark's instant prober, a demo's stand-ins."""
        if name not in ("prober", "standby", "notifier"):
            raise ValueError(f"unknown component {name!r}")
        with self._lock:
            self._built[name] = component

    def client(self, service: str) -> Any:
        """One boto3 client per service and container, with the watchdog's retry policy; the
        endpoint comes from the standard environment (AWS_ENDPOINT_URL in tests and the demo)."""
        from hfo_watchdog.aws import client_config

        config = client_config(
            self.settings.aws_max_attempts,
            connect_timeout=_CLIENT_CONNECT_TIMEOUT_S,
            read_timeout=_CLIENT_READ_TIMEOUT_S,
        )
        return self._once(f"client:{service}", lambda: self._session.client(service, config=config))

    def store(self, writer: str) -> DynamoStateStore:
        from hfo_watchdog.core.steady import steady_gap_s
        from hfo_watchdog.store import DynamoStateStore

        s = self.settings
        return self._once(
            f"store:{writer}",
            lambda: DynamoStateStore(
                self.client("dynamodb"),
                s.table_name,
                history_ttl_s=s.history_ttl_s,
                steady_gap_s=steady_gap_s(s.policy),
                writer=writer,
            ),
        )

    def keyring(self) -> Keyring:
        def build() -> Keyring:
            from hfo_protocol.keys import Keyring

            from hfo_watchdog.config import SecretError

            try:
                return Keyring.from_secret_string(self.secrets.hmac_secret())
            except ValueError as exc:  # the keyring's messages name the problem, never the secret
                raise SecretError(f"HFO_HMAC_SECRET_ARN: {exc}") from None

        return self._once("keyring", build)  # type: ignore[no-any-return]

    def prober(self) -> Prober:
        def build() -> Prober:
            from hfo_watchdog.probe import HttpsProber

            s = self.settings
            return HttpsProber(
                s.health_url,
                self.keyring(),
                connect_timeout=s.probe_connect_timeout_s,
                read_timeout=s.probe_read_timeout_s,
                max_body_bytes=s.probe_max_body_bytes,
                ca_bundle=s.probe_ca_bundle,
                max_skew_s=s.max_skew_s,
            )

        return self._once("prober", build)  # type: ignore[no-any-return]

    def standby(self) -> StandbyInstance:
        def build() -> StandbyInstance:
            from hfo_watchdog.ec2 import Ec2StandbyInstance

            s = self.settings
            return Ec2StandbyInstance(self.client("ec2"), s.instance_id, s.fallback_instance_types)

        return self._once("standby", build)  # type: ignore[no-any-return]

    def notifier(self) -> Notifier:
        """SNS and Discord, as configured. A Discord webhook secret that cannot be read (created
        by Terraform but never given a value, deleted, malformed) must not stop the watchdog from
        deciding and failing over: alerts then go to SNS alone, the problem is logged as an
        error, and the next invocation tries the secret again (only a complete notifier is kept)."""
        from hfo_watchdog.notify import DiscordWebhookNotifier, FanoutNotifier, SnsNotifier

        with self._lock:
            if "notifier" in self._built:
                return self._built["notifier"]  # type: ignore[no-any-return]
            s = self.settings
            targets: list[Notifier] = []
            if s.sns_topic_arn:
                targets.append(SnsNotifier(self.client("sns"), s.sns_topic_arn))
            complete = True
            try:
                url = self.secrets.discord_webhook_url()
                if url:
                    targets.append(DiscordWebhookNotifier(url))
            except Exception as exc:  # any failure here degrades alerts to SNS-only
                complete = False
                logger.error(
                    "discord_alerts_unavailable",
                    extra={
                        "secret": s.discord_webhook_secret_id,
                        "error": type(exc).__name__,
                        "why": str(exc),
                        "effect": "alerts go to SNS only until the secret can be read",
                    },
                )
            if not targets:
                logger.warning("no_notifier", extra={"why": "neither HFO_SNS_TOPIC_ARN nor a Discord secret is usable"})
            notifier = FanoutNotifier(targets)
            if complete:
                self._built["notifier"] = notifier
            return notifier

    def effects(self) -> Effects:
        from hfo_watchdog.tick import Effects

        return Effects(self.standby(), self.notifier(), logger)

    def tick_deps(self) -> TickDeps:
        from hfo_watchdog.tick import TickDeps

        return TickDeps(
            store=self.store("tick"),
            prober=self.prober(),
            standby=self.standby(),
            notifier=self.notifier(),
            policy=self.settings.policy,
            log=logger,
            metric=_metric,
        )

    def heartbeat_deps(self) -> HeartbeatDeps:
        from hfo_watchdog.heartbeat import HeartbeatDeps

        return HeartbeatDeps(
            store=self.store("heartbeat"),
            keyring=self.keyring(),
            policy=self.settings.policy,
            max_skew_s=self.settings.max_skew_s,
            effects=self.effects,
            log=logger,
        )


def _metric(name: str, value: float) -> None:
    put_metric(Metric(name), value)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """The container's Runtime, built on first use. A bad configuration raises every time (it is
    never cached), so the error stays visible until the configuration is fixed."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            from hfo_watchdog.config import SettingsError

            try:
                _runtime = Runtime.from_env(os.environ)
            except SettingsError as exc:
                logger.error("bad_configuration", extra={"variable": exc.variable, "why": str(exc)})
                raise
            logger.info("cold_start", extra={"table": _runtime.settings.table_name})
        return _runtime


def reset_runtime() -> None:
    """Forget the container's Runtime (tests, and the demo between scenarios)."""
    global _runtime
    with _runtime_lock:
        _runtime = None


@publishing_metrics
@logger.inject_lambda_context(clear_state=True)
@traced
def tick(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge Scheduler target: one tick. Returns the tick's report (visible in the console)."""
    from hfo_watchdog.store import StoreError
    from hfo_watchdog.tick import run_tick

    rt = runtime()
    logger.append_keys(event_source=str(event.get("source") or event.get("detail-type") or "schedule"))
    try:
        return run_tick(rt.tick_deps()).to_dict()
    except StoreError as exc:
        # Nothing was decided or done; the invocation fails (Lambda's Errors metric counts it) and
        # the next tick starts over from the stored state.
        logger.error("store_unavailable", extra={"why": str(exc)})
        raise


@logger.inject_lambda_context(clear_state=True)
@traced
def heartbeat(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Function URL target: one heartbeat in, one lease answer (or a refusal) out."""
    from hfo_watchdog.config import SecretError
    from hfo_watchdog.heartbeat import handle, refusal

    try:
        deps = runtime().heartbeat_deps()
    except SecretError as exc:
        # Without the keyring no heartbeat can be checked: refuse like any unavailable dependency,
        # so the agent retries (and keeps fencing by its lease TTL meanwhile).
        logger.error("keyring_unavailable", extra={"why": str(exc)})
        return refusal("unavailable", "the watchdog cannot read its keyring now; retry")
    return handle(event, deps)
