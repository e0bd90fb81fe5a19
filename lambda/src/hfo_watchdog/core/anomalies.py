"""The anomaly conditions a tick checks (docs/state-machine.md#anomalies); alerts.py notifies
each one once."""

from __future__ import annotations

from hfo_watchdog.core import alerts
from hfo_watchdog.core.draft import Draft, Tick, fields
from hfo_watchdog.core.ec2_plan import GONE, UP, WANT_RUNNING, WANT_STOPPED
from hfo_watchdog.core.model import ControlState, InstanceState, LeaseSite, Mode, Policy, SiteRecord
from hfo_watchdog.core.signals import secs
from hfo_watchdog.core.steady import steady_gap_s

_ACTIVE_WORKLOAD = frozenset({"running", "starting"})
_MANAGED = tuple(alerts.KINDS)


def _funnel_outage(st: ControlState, primary: SiteRecord | None, now: float, policy: Policy) -> bool:
    """The probe is down while the primary's heartbeats keep arriving: the likely cause is the
    probe's path (Funnel, the health service), not the primary. True only when the heartbeats
    make that diagnosis true (issue 10: the alert used to fire in the first seconds of every real
    laptop death, while its last heartbeat was merely younger than the lease TTL):

    - the run of heartbeats is unbroken now (the last one is within the steady gap);
    - heartbeats went on arriving at least two intervals into the probe outage (a dead laptop's
      last heartbeat comes before, or with, its first failed probe);
    - and that run began before the probes started failing, or has lasted the recovery window
      (a primary back from an outage whose probe still fails)."""
    if primary is None:
        return False
    since = st.probe_failing_since
    if since is None:  # a state written before the field: the latest failure is the safe choice
        since = st.last_probe.at if st.last_probe is not None else now
    interval = policy.heartbeat_interval_s
    return (
        now - primary.received_at <= steady_gap_s(policy)
        and primary.received_at - since >= 2 * interval
        and (primary.steady_since <= since or now - primary.steady_since >= policy.recovery_steady_s)
    )


def _fresh_active(rec: SiteRecord | None, now: float, policy: Policy) -> bool:
    return rec is not None and now - rec.received_at < policy.lease_ttl_s and rec.workload in _ACTIVE_WORKLOAD


def check(d: Draft, t: Tick) -> None:
    st, sig, obs, policy = d.state, t.sig, t.obs, d.policy
    active: dict[str, str] = {}
    if sig.probe == "down" and _funnel_outage(st, obs.primary, d.now, policy):
        active[alerts.DEGRADED_PROBE] = f"{sig.probe_reason}, but {sig.heartbeat_reason}: no failover"
    if sig.heartbeat == "down" and sig.probe == "alive":
        active[alerts.DEGRADED_HEARTBEAT] = f"{sig.heartbeat_reason}, but {sig.probe_reason}: no failover"
    if d.start_blocked is not None:
        active[alerts.START_BLOCKED] = d.start_blocked
    if st.start_failures > 0 and st.phase in WANT_RUNNING and obs.instance not in GONE:
        active[alerts.START_FAILED] = f"{st.start_failures} standby start attempts failed in a row"
    if st.start_failures >= policy.max_start_failures and st.phase in WANT_RUNNING:
        active[alerts.START_GAVE_UP] = f"no more start attempts after {st.start_failures} failures"
    if alerts.STOP_FAILED in st.open_alerts and st.phase in WANT_STOPPED and obs.instance in UP:
        active[alerts.STOP_FAILED] = f"the standby is still {obs.instance}"
    if obs.instance in GONE:
        active[alerts.INSTANCE_MISSING] = f"the standby instance is {obs.instance}: a failover cannot start it"
    since = st.standby_running_since
    if since is not None and d.now - since > policy.standby_max_runtime_s:
        active[alerts.STANDBY_OVERTIME] = (
            f"the standby has run for {secs(d.now - since)}, more than {secs(policy.standby_max_runtime_s)}"
        )
    # A standby whose instance is stopped or gone runs nothing, whatever its last record said
    # (an instance stopped from outside never gets to report its workload stopped).
    standby_can_run = obs.instance not in GONE and obs.instance != InstanceState.STOPPED
    if _fresh_active(obs.primary, d.now, policy) and standby_can_run and _fresh_active(obs.standby, d.now, policy):
        active[alerts.BOTH_RUNNING] = (
            f"primary reports workload {obs.primary.workload if obs.primary else '?'} and standby reports"
            f" {obs.standby.workload if obs.standby else '?'} within the last {secs(policy.lease_ttl_s)}"
        )
    if sig.down and st.lease.site == LeaseSite.PRIMARY and st.mode in (Mode.PAUSED, Mode.PIN_PRIMARY):
        active[alerts.DOWN_NO_FAILOVER] = f"the primary is down and the mode is {st.mode}"
    opened, actions = alerts.reconcile(st.open_alerts, active, _MANAGED, fields(st))
    d.update(open_alerts=opened)
    d.notify(actions)
    for key in sorted(set(active) - st.open_alerts):
        d.reasons.append(f"alert {key}: {active[key]}")
