"""The composition root: everything one Lambda container builds once (settings, boto3 clients,
secrets, the store, the adapters) and hands to the tick and the heartbeat handler.

`Runtime(settings)` builds each part on first use and keeps it; a caller that runs the real
handlers with a part of its own (the benchmark's instant prober, a drill's stand-in) passes it to
the constructor. `Container` holds one container's Runtime: built on the first invocation (the
cold start), reused while the container stays warm, never kept when building it failed.

Importing this module is cheap (boto3 and the adapters are imported when first needed), because
the handlers import it at cold start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hfo_watchdog.observability import Metric, logger, put_metric

if TYPE_CHECKING:
    from hfo_protocol.keys import Keyring

    from hfo_watchdog.commit import Effects
    from hfo_watchdog.config import Settings
    from hfo_watchdog.heartbeat import HeartbeatDeps
    from hfo_watchdog.ports import CredentialIssuer, Notifier, Prober, StandbyInstance
    from hfo_watchdog.store import DynamoStateStore
    from hfo_watchdog.tick import TickDeps

AwsService = Literal["dynamodb", "ec2", "secretsmanager", "sns", "ssm", "sts"]
Writer = Literal["tick", "heartbeat"]

_CLIENT_CONNECT_TIMEOUT_S = 3.0
_CLIENT_READ_TIMEOUT_S = 5.0


class Runtime:
    """Everything a container builds once: settings, clients, secrets, adapters. Thread-safe (the
    drill drives both handlers from two threads of one process)."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: Any = None,
        prober: Prober | None = None,
        standby: StandbyInstance | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        """`prober`, `standby` and `notifier`, when given, are used instead of the ones the
        settings describe; `session` is the boto3 session the clients come from."""
        import boto3

        from hfo_watchdog.config import Secrets

        self.settings = settings
        self._session = session if session is not None else boto3.session.Session()
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}
        self._stores: dict[str, DynamoStateStore] = {}
        self._keyring: Keyring | None = None
        self._prober = prober
        self._standby = standby
        self._notifier = notifier
        self._credentials: CredentialIssuer | None = None
        self.secrets = Secrets(settings, lambda: self.client("secretsmanager"), lambda: self.client("ssm"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Runtime:
        from hfo_watchdog.config import Settings

        return cls(Settings.from_env(env))

    def client(self, service: AwsService) -> Any:
        """One boto3 client per service and container, with the watchdog's retry policy; the
        endpoint comes from the standard environment (AWS_ENDPOINT_URL in tests and the drill)."""
        from hfo_watchdog.aws import client_config

        with self._lock:
            if service not in self._clients:
                config = client_config(
                    self.settings.aws_max_attempts,
                    connect_timeout=_CLIENT_CONNECT_TIMEOUT_S,
                    read_timeout=_CLIENT_READ_TIMEOUT_S,
                )
                self._clients[service] = self._session.client(service, config=config)
            return self._clients[service]

    def store(self, writer: Writer) -> DynamoStateStore:
        from hfo_watchdog.core.steady import steady_gap_s
        from hfo_watchdog.store import DynamoStateStore

        s = self.settings
        with self._lock:
            if writer not in self._stores:
                self._stores[writer] = DynamoStateStore(
                    self.client("dynamodb"),
                    s.table_name,
                    history_ttl_s=s.history_ttl_s,
                    steady_gap_s=steady_gap_s(s.policy),
                    writer=writer,
                )
            return self._stores[writer]

    def keyring(self) -> Keyring:
        from hfo_protocol.keys import Keyring

        from hfo_watchdog.config import SecretError

        with self._lock:
            if self._keyring is None:
                try:
                    self._keyring = Keyring.from_secret_string(self.secrets.hmac_secret())
                except ValueError as exc:  # the keyring's messages name the problem, never the secret
                    raise SecretError(f"HFO_HMAC_SECRET_ARN: {exc}") from None
            return self._keyring

    def prober(self) -> Prober:
        from hfo_watchdog.probe import HttpsProber

        s = self.settings
        with self._lock:
            if self._prober is None:
                self._prober = HttpsProber(
                    s.health_url,
                    self.keyring(),
                    connect_timeout=s.probe_connect_timeout_s,
                    read_timeout=s.probe_read_timeout_s,
                    max_body_bytes=s.probe_max_body_bytes,
                    ca_bundle=s.probe_ca_bundle,
                    max_skew_s=s.max_skew_s,
                )
            return self._prober

    def standby(self) -> StandbyInstance:
        from hfo_watchdog.ec2 import Ec2StandbyInstance

        s = self.settings
        with self._lock:
            if self._standby is None:
                self._standby = Ec2StandbyInstance(self.client("ec2"), s.instance_id, s.fallback_instance_types)
            return self._standby

    def notifier(self) -> Notifier:
        """SNS and Discord, as configured. A Discord webhook secret that cannot be read (created
        by Terraform but never given a value, deleted, malformed) must not stop the watchdog from
        deciding and failing over: alerts then go to SNS alone, the problem is logged as an
        error, and the next invocation tries the secret again (only a complete notifier is kept)."""
        from hfo_watchdog.notify import DiscordWebhookNotifier, FanoutNotifier, SnsNotifier

        with self._lock:
            if self._notifier is not None:
                return self._notifier
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
                self._notifier = notifier
            return notifier

    def credentials(self) -> CredentialIssuer:
        """The state credentials issuer (STS AssumeRole), built on the first heartbeat that asks
        for credentials; only called when settings.state is set."""
        from hfo_watchdog.state_access import StsCredentialIssuer

        with self._lock:
            if self._credentials is None:
                if self.settings.state is None:
                    raise RuntimeError("state handoff is off: no credentials to issue")
                self._credentials = StsCredentialIssuer(lambda: self.client("sts"), self.settings.state)
            return self._credentials

    def effects(self) -> Effects:
        from hfo_watchdog.commit import Effects

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
            credentials=None if self.settings.state is None else self.credentials,
        )


def _metric(name: str, value: float) -> None:
    put_metric(Metric(name), value)


def from_environment() -> Runtime:
    """The Runtime Lambda runs on: settings from the function's environment."""
    return Runtime.from_env(os.environ)


class Container:
    """One container's Runtime, built by `build` on first use and kept while the container stays
    warm. A bad configuration raises every time (a failed build is never kept), so the error stays
    visible until the configuration is fixed."""

    def __init__(self, build: Callable[[], Runtime] = from_environment) -> None:
        self._build = build
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    def runtime(self) -> Runtime:
        from hfo_watchdog.config import SettingsError

        with self._lock:
            if self._runtime is None:
                try:
                    runtime = self._build()
                except SettingsError as exc:
                    logger.error("bad_configuration", extra={"variable": exc.variable, "why": str(exc)})
                    raise
                state = runtime.settings.state
                logger.info(
                    "cold_start",
                    extra={
                        "table": runtime.settings.table_name,
                        "state_bucket": None if state is None else state.bucket,
                    },
                )
                self._runtime = runtime
            return self._runtime
