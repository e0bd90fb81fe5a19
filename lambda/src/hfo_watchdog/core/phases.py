"""The phase rules of each mode (docs/state-machine.md#transitions-in-auto-mode, #modes).

Each rule makes at most one transition on the Draft; the lease moves only through `_grant` and
`_fail_over`, which apply the fencing rule of lease.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hfo_watchdog.core import lease as leases
from hfo_watchdog.core.draft import Draft, Tick
from hfo_watchdog.core.model import (
    ControlState,
    InstanceState,
    LeaseSite,
    Mode,
    Phase,
    Policy,
    Severity,
    Site,
    SiteRecord,
)
from hfo_watchdog.core.signals import Signals, recovery_check, secs

# The lease each phase allows; FAILING_OVER passes through all three.
_PHASE_LEASES: Mapping[Phase, frozenset[LeaseSite]] = {
    Phase.HEALTHY: frozenset({LeaseSite.PRIMARY}),
    Phase.SUSPECT: frozenset({LeaseSite.PRIMARY}),
    Phase.FAILING_OVER: frozenset(LeaseSite),
    Phase.ON_STANDBY: frozenset({LeaseSite.STANDBY}),
    Phase.RECOVERING: frozenset({LeaseSite.STANDBY}),
    Phase.HANDING_BACK: frozenset({LeaseSite.NONE}),
}
# The phase that matches a lease, when a stored phase does not (a hand-edited item, an old bug).
_LEASE_PHASE: Mapping[LeaseSite, Phase] = {
    LeaseSite.PRIMARY: Phase.SUSPECT,
    LeaseSite.STANDBY: Phase.ON_STANDBY,
    LeaseSite.NONE: Phase.HANDING_BACK,
}


def signal_phase(sig: Signals) -> Phase:
    return Phase.HEALTHY if sig.healthy else Phase.SUSPECT


def _repair(d: Draft) -> bool:
    """A phase that contradicts the lease is corrected first (the lease is the safety record)."""
    phase, site = d.state.phase, d.state.lease.site
    if site in _PHASE_LEASES[phase]:
        return False
    d.go(_LEASE_PHASE[site], [f"phase {phase} does not match the lease on {site}: phase corrected"])
    return True


def _follow_signals(d: Draft, sig: Signals) -> None:
    """HEALTHY <-> SUSPECT, both gated by min_state_s (hysteresis against flapping)."""
    if d.state.phase == Phase.HEALTHY and sig.troubled:
        d.gated_go(Phase.SUSPECT, sig.bad_reasons)
    elif d.state.phase == Phase.SUSPECT and sig.healthy:
        d.gated_go(Phase.HEALTHY, ["probe ok and heartbeats arriving again"])


def _grant(d: Draft, t: Tick, target: Site, to: Phase, why: Sequence[str] = ()) -> bool:
    """Give the lease to `target` if the other site is fenced; otherwise wait and say why."""
    fence = leases.may_grant(target, d.state.lease, t.records, t.obs.instance, d.now, d.policy, d.state.renewed_until)
    if fence.fenced:
        d.go(to, [*why, fence.reason], lease_to=LeaseSite(target.value))
        return True
    d.reasons.extend(why)
    d.reasons.append(f"waiting before giving the lease to the {target}: {fence.reason}")
    return False


def _fail_over(d: Draft, t: Tick) -> None:
    """The emergency: the primary is down by both signals. The lease stays on the primary (so a
    primary that comes back keeps its bot: the failover is called off) until the standby may take
    it: the primary fenced and the standby up and ready. The standby's heartbeat usually finds that
    moment first (engine.on_heartbeat); the tick moves the lease when it sees it."""
    why = [t.sig.probe_reason, t.sig.heartbeat_reason]
    take, reason = standby_may_take(d.state, t.obs.primary, t.obs.standby, t.obs.instance, d.now, d.policy)
    if take:
        d.go(Phase.FAILING_OVER, [*why, reason], lease_to=LeaseSite.STANDBY, severity=Severity.CRITICAL)
    elif d.state.phase != Phase.FAILING_OVER:
        d.go(
            Phase.FAILING_OVER,
            [*why, f"the lease stays on the primary until the standby may take it: {reason}"],
            severity=Severity.CRITICAL,
        )
    else:
        d.reasons.extend(why)
        d.reasons.append(f"the lease stays on the primary: {reason}")


def standby_ready(record: SiteRecord | None, instance: InstanceState, now: float, policy: Policy) -> tuple[bool, str]:
    """The standby can run the workload as soon as it gets the lease: it heartbeats (fresh) and
    reports ready. UNKNOWN instance state is what the heartbeat path sees: the fresh heartbeat
    itself shows the instance runs."""
    if instance not in (InstanceState.RUNNING, InstanceState.UNKNOWN):
        return False, f"waiting for the standby instance to run (it is {instance})"
    if record is None:
        return False, "waiting for the standby's first heartbeat"
    age = now - record.received_at
    if age >= policy.lease_ttl_s:
        return False, f"waiting for a fresh heartbeat from the standby (last one {secs(age)} ago)"
    if not record.ready:
        return False, "waiting for the standby to report ready"
    return True, f"the standby reports ready ({secs(age)} ago)"


def standby_may_take(
    state: ControlState,
    primary: SiteRecord | None,
    standby: SiteRecord | None,
    instance: InstanceState,
    now: float,
    policy: Policy,
) -> tuple[bool, str]:
    """During a failover: may the lease go from the primary to the standby now? The primary must
    be fenced (its heartbeat leases and probe-path renewals all run out) and the standby ready."""
    fence = leases.fencing(Site.PRIMARY, state.lease, primary, instance, now, policy, state.renewed_until)
    if not fence.fenced:
        return False, fence.reason
    ready, why = standby_ready(standby, instance, now, policy)
    return ready, f"{fence.reason}; {why}"


def _standby_runs(d: Draft, t: Tick) -> tuple[bool, str]:
    lease = d.state.lease
    rec = t.obs.standby
    if rec is None:
        return False, f"waiting for the standby's first heartbeat (epoch {lease.epoch})"
    if rec.workload == "running" and rec.epoch_seen >= lease.epoch and rec.received_at >= lease.changed_at:
        return True, f"the standby runs the workload under epoch {lease.epoch}"
    return False, (
        f"waiting for the standby to run the workload under epoch {lease.epoch}"
        f" (last heard: workload {rec.workload}, epoch {rec.epoch_seen}, {secs(d.now - rec.received_at)} ago)"
    )


def _after_failover(d: Draft, t: Tick, may_recover: bool) -> None:
    """FAILING_OVER with the lease on the standby."""
    runs, why = _standby_runs(d, t)
    if runs:
        d.go(Phase.ON_STANDBY, [why])
    elif may_recover and t.sig.life:
        d.reasons.append(why)
        d.gated_go(Phase.RECOVERING, ["the primary shows life again", *t.sig.life_reasons])
    else:
        d.reasons.append(why)


# --------------------------------------------------------------------------- modes


def auto(d: Draft, t: Tick) -> None:
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    if phase in (Phase.HEALTHY, Phase.SUSPECT):
        if sig.down:
            _fail_over(d, t)
        else:
            _follow_signals(d, sig)
    elif phase == Phase.FAILING_OVER:
        if site == LeaseSite.PRIMARY:
            if sig.down:
                _fail_over(d, t)
            else:
                d.go(
                    signal_phase(sig),
                    ["the primary is not down any more: the failover is called off, the lease never left it"],
                )
        elif site == LeaseSite.NONE:
            if sig.down:
                _grant(d, t, Site.STANDBY, Phase.FAILING_OVER)
            else:
                d.go(Phase.HANDING_BACK, ["the primary is no longer down: the lease goes back to it"])
        else:
            _after_failover(d, t, may_recover=True)
    elif phase == Phase.ON_STANDBY:
        if sig.life:
            d.gated_go(Phase.RECOVERING, ["the primary shows life again", *sig.life_reasons])
        else:
            d.reasons.append("the primary is still down")
    elif phase == Phase.RECOVERING:
        if not sig.life:
            d.gated_go(Phase.ON_STANDBY, ["the primary shows no life again"])
            return
        met, why = recovery_check(d.state, t.obs.primary, d.now, d.policy)
        if met:
            d.gated_go(Phase.HANDING_BACK, ["recovery window met", *why], lease_to=LeaseSite.NONE)
        else:
            d.reasons.append("recovery window not met yet: " + "; ".join(why))
    elif sig.down:  # HANDING_BACK
        _grant(d, t, Site.STANDBY, Phase.ON_STANDBY, ["the primary went down during the handback"])
    else:
        _grant(d, t, Site.PRIMARY, signal_phase(sig))


def _planned(d: Draft, t: Tick) -> None:
    """PIN_STANDBY and DRILL: a planned move to the standby, and no handback."""
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    label = "pinned to standby"
    if d.state.mode == Mode.DRILL and d.state.mode_until is not None:
        label = f"drill for {secs(d.state.mode_until - d.now)} more"
    if sig.down and site == LeaseSite.PRIMARY:
        _fail_over(d, t)
    elif phase in (Phase.HEALTHY, Phase.SUSPECT):
        d.go(
            Phase.FAILING_OVER,
            [f"{label}: starting the standby before moving the lease"],
            severity=Severity.WARNING,
        )
    elif phase == Phase.FAILING_OVER:
        if site == LeaseSite.PRIMARY:
            ready, why = standby_ready(t.obs.standby, t.obs.instance, d.now, d.policy)
            if ready:
                d.go(Phase.FAILING_OVER, [label, why], lease_to=LeaseSite.NONE, severity=Severity.WARNING)
            else:
                d.reasons.append(why)
        elif site == LeaseSite.NONE:
            _grant(d, t, Site.STANDBY, Phase.FAILING_OVER, [label])
        else:
            _after_failover(d, t, may_recover=False)
    elif phase == Phase.ON_STANDBY:
        d.reasons.append(f"{label}: staying on the standby")
    elif phase == Phase.RECOVERING:
        d.go(Phase.ON_STANDBY, [f"{label}: no handback"])
    else:  # HANDING_BACK
        _grant(d, t, Site.STANDBY, Phase.ON_STANDBY, [f"{label}: the lease returns to the standby"])


def _pinned_primary(d: Draft, t: Tick) -> None:
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    home = "pinned to primary: handing back without waiting for the recovery window"
    if phase in (Phase.HEALTHY, Phase.SUSPECT):
        if sig.down:
            d.reasons.append("pinned to primary: no failover although the primary is down")
        _follow_signals(d, sig)
    elif phase == Phase.FAILING_OVER and site == LeaseSite.PRIMARY:
        d.go(signal_phase(sig), ["pinned to primary: the move to the standby is called off"])
    elif phase == Phase.FAILING_OVER and site == LeaseSite.NONE:
        d.go(Phase.HANDING_BACK, [home])
    elif phase in (Phase.FAILING_OVER, Phase.ON_STANDBY, Phase.RECOVERING):
        d.go(Phase.HANDING_BACK, [home], lease_to=LeaseSite.NONE)
    else:  # HANDING_BACK
        _grant(d, t, Site.PRIMARY, signal_phase(sig), ["pinned to primary"])


RULES: Mapping[Mode, Callable[[Draft, Tick], None]] = {
    Mode.AUTO: auto,
    Mode.PIN_PRIMARY: _pinned_primary,
    Mode.PIN_STANDBY: _planned,
    Mode.DRILL: _planned,
}
