"""The watchdog's vocabulary: plain, immutable data shared by the decision engine (pure), the
adapters (probe, EC2, notifications, state store) and the handlers that wire them together.

Times are epoch seconds (float) on the watchdog's clock unless a name says otherwise.
See docs/state-machine.md for what the engine does with these and docs/state.md for how
they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    AUTO = "auto"  # fail over and back on the signals
    PIN_PRIMARY = "pin_primary"  # the lease stays (or goes back) home; never fail over
    PIN_STANDBY = "pin_standby"  # planned move to the standby; never hand back
    PAUSED = "paused"  # observe and record, never change the lease or EC2
    DRILL = "drill"  # like PIN_STANDBY until `mode_until`, then AUTO (which hands back)


class Phase(StrEnum):
    HEALTHY = "healthy"  # lease on the primary, both signals good
    SUSPECT = "suspect"  # lease on the primary, at least one signal failing
    FAILING_OVER = "failing_over"  # moving the lease to the standby, EC2 starting
    ON_STANDBY = "on_standby"  # lease on the standby, primary still down
    RECOVERING = "recovering"  # lease on the standby, primary showing life, recovery window running
    HANDING_BACK = "handing_back"  # lease none, waiting for the standby to stop, then primary


class Site(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"


class LeaseSite(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"
    NONE = "none"


class InstanceState(StrEnum):
    """EC2's instance states, plus MISSING (no such instance) and UNKNOWN (could not tell)."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    MISSING = "missing"
    UNKNOWN = "unknown"


class ProbeFailure(StrEnum):
    """Exactly one class per failed probe; docs/protocol.md#probe defines each."""

    DNS = "dns"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS = "tls"
    TIMEOUT = "timeout"
    REDIRECT = "redirect"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    NOT_HEALTH_DOCUMENT = "not_health_document"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    REPLAY = "replay"
    WRONG_SITE = "wrong_site"
    STALE = "stale"
    NOT_PASS = "not_pass"  # noqa: S105 - a failure class, not a password
    ERROR = "error"  # anything unforeseen in the probe itself; never counts as healthy


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Policy:
    """The decision thresholds (docs/configuration.md gives ranges and defaults; the defaults
    here are the shipped ones, chosen on `make bench-failover`: docs/benchmarks.md)."""

    down_probes: int = 2
    down_heartbeat_s: float = 75.0
    recovery_probes: int = 3
    # Ten minutes: a laptop that just failed often fails again soon (the bench's blips-10), and the
    # standby keeps the bot through those relapses (docs/benchmarks.md#findings).
    recovery_steady_s: float = 600.0
    lease_ttl_s: float = 30.0
    stop_grace_s: float = 30.0
    heartbeat_interval_s: float = 10.0
    start_cooldown_s: float = 900.0
    min_state_s: float = 120.0
    standby_max_runtime_s: float = 86400.0
    max_start_failures: int = 5  # consecutive failed start attempts before giving up (alerting)
    # Pre-warm (docs/state-machine.md#pre-warm): start the standby WITHOUT the lease once the
    # primary's heartbeats have been silent this long and this tick's probe failed too.
    prewarm_silence_s: float = 15.0
    prewarm_hold_s: float = 600.0  # a pre-warmed standby that was not needed stops after this
    prewarm_max_per_hour: int = 3  # pre-warm starts in any hour; 0 turns pre-warm off
    # Renewal on the probe path (docs/state-machine.md#renewal-on-the-probe-path).
    probe_lease_ttl_s: float = 90.0  # how long one renewal lets the primary hold the lease
    probe_renew_after_s: float = 0.0  # renew by probe only once heartbeats are this old; 0 = every passing probe
    # How often a site is asked to heartbeat while a lease move waits on it (the answer says so).
    handover_heartbeat_interval_s: float = 2.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    at: float
    failure: ProbeFailure | None = None
    detail: str = ""  # human-readable, never holds a secret
    http_status: int | None = None
    latency_ms: float | None = None
    nonce: str | None = None  # the probe's nonce: a renewal over the probe path names it


@dataclass(frozen=True)
class SiteRecord:
    """What the heartbeat handler last accepted from one site's agent."""

    site: Site
    sent_at: float  # the agent's clock
    received_at: float  # the watchdog's clock
    workload: str  # running | starting | stopping | stopped | unknown
    epoch_seen: int
    ready: bool
    steady_since: float  # start of the current unbroken run of heartbeats
    count: int = 0
    # The lease epoch whose state each workload restored at its last claim, as the agent reports
    # it (docs/state-handoff.md#handover-and-rpo); sorted by workload. Never read by a decision.
    state_restored: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Lease:
    site: LeaseSite = LeaseSite.PRIMARY
    epoch: int = 1
    changed_at: float = 0.0


@dataclass(frozen=True)
class ControlState:
    """The control item. `version` is the optimistic-concurrency counter (docs/state.md)."""

    version: int = 0
    mode: Mode = Mode.AUTO
    mode_until: float | None = None  # end of a drill
    phase: Phase = Phase.HEALTHY
    phase_since: float = 0.0
    lease: Lease = field(default_factory=Lease)
    probe_fail_streak: int = 0
    probe_ok_streak: int = 0
    last_probe: ProbeResult | None = None
    probe_failing_since: float | None = None  # first failed probe of the current failing streak
    last_start_at: float | None = None  # last EC2 start request (cooldown)
    start_count: int = 0
    start_failures: int = 0  # consecutive failed start attempts
    standby_running_since: float | None = None
    open_alerts: frozenset[str] = frozenset()  # anomaly keys already notified, cleared when resolved
    last_tick_at: float | None = None
    # Renewal over the probe path (docs/state-machine.md#renewal-on-the-probe-path): the latest
    # time up to which a renewal this watchdog sent may let the primary hold the lease. Written
    # (conditionally) BEFORE the renewal is sent, so the fencing rule can always count it.
    renewed_until: float | None = None
    # Armed (docs/state-machine.md#armed): the time of the primary's first accepted heartbeat.
    # Until then the watchdog never starts EC2 and never moves the lease.
    armed_at: float | None = None
    # Pre-warm: the standby was started without the lease and may run until `warm_until`;
    # `prewarm_starts` are the times of the pre-warm starts of the last hour (their own budget,
    # apart from the failover's cooldown and start count).
    warm_until: float | None = None
    prewarm_starts: tuple[float, ...] = ()


@dataclass(frozen=True)
class Observations:
    """Everything one tick learned before deciding."""

    now: float
    probe: ProbeResult | None  # None when no probe was made
    primary: SiteRecord | None
    standby: SiteRecord | None
    instance: InstanceState


class ActionKind(StrEnum):
    START_STANDBY = "start_standby"
    STOP_STANDBY = "stop_standby"
    RENEW_PRIMARY = "renew_primary"  # send the primary a signed lease renewal over the probe path
    NOTIFY = "notify"


@dataclass(frozen=True)
class Notification:
    key: str  # "transition:<from>-><to>" or an anomaly key; the unit of "notified once"
    severity: Severity
    title: str
    body: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Renewal:
    """A lease renewal to send over the probe path: the primary may hold lease `epoch` for
    `ttl_s` counted from when its health service answered the probe with `nonce`."""

    epoch: int
    nonce: str
    ttl_s: float


@dataclass(frozen=True)
class RenewOutcome:
    """What sending a renewal did. `error` is a class (timeout, refused, http_status, error)."""

    ok: bool
    detail: str = ""
    error: str | None = None


class StartPurpose(StrEnum):
    FAILOVER = "failover"  # the failover's start: cooldown and start count apply
    PREWARM = "prewarm"  # a pre-warm start: its own hourly budget, no cooldown stamp


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str
    notification: Notification | None = None
    renewal: Renewal | None = None  # RENEW_PRIMARY only
    purpose: StartPurpose | None = None  # START_STANDBY only


@dataclass(frozen=True)
class Transition:
    from_phase: Phase
    to_phase: Phase
    from_lease: Lease
    to_lease: Lease
    reasons: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class Decision:
    """The engine's output: the state to write (conditionally), then the actions to take."""

    state: ControlState
    actions: tuple[Action, ...]
    reasons: tuple[str, ...]  # why, in words a user reads in the log and the CLI
    transition: Transition | None = None
    probe_signal: str = "unknown"  # alive | failing | down | unknown
    heartbeat_signal: str = "unknown"  # alive | down


@dataclass(frozen=True)
class Ec2Outcome:
    """What an EC2 start or stop did. `error` is a class, `detail` human-readable."""

    ok: bool
    action: str  # start_requested | already_running | waiting | stop_requested | already_stopped | none
    state: InstanceState
    instance_type: str | None = None
    error: str | None = None  # insufficient_capacity | terminated | missing | aws_error
    detail: str = ""
