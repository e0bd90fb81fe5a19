"""One-line builders for the decision engine's tests (tests/watchdog/test_engine*.py).

Times are relative to T0; the default Policy is the documented default configuration
(down after 3 failed probes AND 180 s without heartbeat, lease TTL 60 s + 30 s grace, ...).
"""

from __future__ import annotations

from dataclasses import replace

from hfo_watchdog.core.model import (
    ActionKind,
    ControlState,
    Decision,
    InstanceState,
    Lease,
    LeaseSite,
    Mode,
    Observations,
    Phase,
    Policy,
    ProbeFailure,
    ProbeResult,
    Site,
    SiteRecord,
)

# The unit tests' thresholds are spelled out (3 probes, 180 s, a 60 s lease), so that a change of
# the shipped defaults (tested in test_config.py) does not rewrite every expected reason.
POLICY = Policy(down_probes=3, down_heartbeat_s=180.0, lease_ttl_s=60.0, recovery_steady_s=180.0)
T0 = 100_000.0


def ok(at: float = T0) -> ProbeResult:
    return ProbeResult(ok=True, at=at, http_status=200)


def fail(at: float = T0, failure: ProbeFailure = ProbeFailure.CONNECT_TIMEOUT) -> ProbeResult:
    return ProbeResult(ok=False, at=at, failure=failure)


def rec(
    site: Site = Site.PRIMARY,
    *,
    age: float = 5.0,
    now: float = T0,
    workload: str = "running",
    epoch: int = 1,
    ready: bool = True,
    steady_for: float = 3600.0,
) -> SiteRecord:
    """A site record whose last heartbeat arrived `age` seconds before `now`."""
    received = now - age
    return SiteRecord(
        site=site,
        sent_at=received,
        received_at=received,
        workload=workload,
        epoch_seen=epoch,
        ready=ready,
        steady_since=now - steady_for,
        count=100,
    )


def standby_rec(**kw: object) -> SiteRecord:
    return rec(Site.STANDBY, **kw)


def obs(
    *,
    now: float = T0,
    probe: ProbeResult | None = None,
    primary: SiteRecord | None = None,
    standby: SiteRecord | None = None,
    instance: InstanceState = InstanceState.STOPPED,
) -> Observations:
    return Observations(now=now, probe=probe, primary=primary, standby=standby, instance=instance)


def healthy_obs(**kw: object) -> Observations:
    """Both signals alive: a good probe and a heartbeat 5 s ago."""
    kw.setdefault("probe", ok())
    kw.setdefault("primary", rec())
    return obs(**kw)


def down_obs(**kw: object) -> Observations:
    """Both signals down: the 3rd failed probe (with a state at streak 2) and 200 s of silence."""
    kw.setdefault("probe", fail())
    kw.setdefault("primary", rec(age=200, workload="running"))
    return obs(**kw)


def state(
    phase: Phase = Phase.HEALTHY,
    *,
    lease: LeaseSite = LeaseSite.PRIMARY,
    epoch: int = 5,
    changed_ago: float = 5000.0,
    in_phase: float = 1000.0,
    mode: Mode = Mode.AUTO,
    **kw: object,
) -> ControlState:
    """A control state `in_phase` seconds into `phase`, with the lease changed `changed_ago` ago;
    armed long ago (the primary heartbeated) unless `armed_at=None` is passed."""
    base = ControlState(
        version=7,
        armed_at=T0 - 10 * 86400,
        mode=mode,
        phase=phase,
        phase_since=T0 - in_phase,
        lease=Lease(site=lease, epoch=epoch, changed_at=T0 - changed_ago),
    )
    return replace(base, **kw)


def streak(st: ControlState, fails: int = 0, oks: int = 0) -> ControlState:
    """Probe history: `fails` failed probes in a row (one a minute, the last a minute ago), or
    `oks` good ones."""
    if fails:
        return replace(
            st,
            probe_fail_streak=fails,
            probe_ok_streak=0,
            last_probe=fail(T0 - 60),
            probe_failing_since=T0 - 60 * fails,
        )
    return replace(st, probe_ok_streak=oks, probe_fail_streak=0, last_probe=ok(T0 - 60))


def ec2_kinds(decision: Decision) -> list[ActionKind]:
    return [a.kind for a in decision.actions if a.kind != ActionKind.NOTIFY]


def notify_keys(decision: Decision) -> list[str]:
    return [a.notification.key for a in decision.actions if a.notification is not None]


def said(decision: Decision, fragment: str) -> bool:
    """Whether some reason of the decision contains `fragment`."""
    return any(fragment in r for r in decision.reasons)
