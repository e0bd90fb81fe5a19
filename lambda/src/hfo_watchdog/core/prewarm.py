"""Pre-warm (docs/state-machine.md#pre-warm): start the standby WITHOUT the lease on suspicion, so
that a failover, if it comes, finds K3s booted and the images pulled.

The suspicion is both signals failing at once, early: the primary's heartbeats silent for
`prewarm_silence_s` AND this tick's probe failed. A Funnel flap (probe fails, heartbeats arrive)
or a heartbeat-path outage (heartbeats stop, probe passes) alone never starts EC2. Pre-warm
starts have their own budget (`prewarm_max_per_hour`) and leave the failover's cooldown and start
count alone. The lease never moves here: it moves only by the fencing rule (lease.py). A warm
standby that was not needed stops `prewarm_hold_s` after its start.
"""

from __future__ import annotations

from hfo_watchdog.core.draft import Draft, Tick
from hfo_watchdog.core.model import InstanceState, LeaseSite, Mode, Phase, StartPurpose
from hfo_watchdog.core.signals import secs

HOUR_S = 3600.0
_WATCHED = frozenset({Phase.HEALTHY, Phase.SUSPECT})


def recent_starts(starts: tuple[float, ...], now: float) -> tuple[float, ...]:
    return tuple(at for at in starts if now - at < HOUR_S)


def plan_prewarm(d: Draft, t: Tick) -> None:
    st, policy = d.state, d.policy
    if st.mode != Mode.AUTO or st.armed_at is None or policy.prewarm_max_per_hour <= 0:
        return
    if st.lease.site != LeaseSite.PRIMARY or st.phase not in _WATCHED:
        return
    silence, probe = t.sig.heartbeat_age, t.obs.probe
    # One heartbeat that is merely late is not silence, whatever the setting says.
    needed = max(policy.prewarm_silence_s, 1.5 * policy.heartbeat_interval_s)
    if silence is None or silence < needed or probe is None or probe.ok:
        return
    why = f"heartbeats silent for {secs(silence)} and this tick's probe failed"
    inst = t.obs.instance
    if inst != InstanceState.STOPPED:
        if inst in (InstanceState.PENDING, InstanceState.RUNNING) and st.warm_until is not None:
            left = secs(st.warm_until - d.now)
            d.reasons.append(f"pre-warm: {why}; the standby is already warm for {left} more")
        return
    recent = recent_starts(st.prewarm_starts, d.now)
    if len(recent) >= policy.prewarm_max_per_hour:
        d.update(prewarm_starts=recent)
        d.reasons.append(
            f"pre-warm held back: {why}, but {len(recent)} pre-warm starts in the last hour"
            f" (prewarm_max_per_hour {policy.prewarm_max_per_hour})"
        )
        return
    d.update(prewarm_starts=(*recent, d.now), warm_until=d.now + policy.prewarm_hold_s)
    d.act_start(
        StartPurpose.PREWARM,
        f"pre-warm the standby without the lease: {why} (kept warm for {secs(policy.prewarm_hold_s)} at most)",
    )


def keep_warm(d: Draft, instance: InstanceState) -> bool:
    """While the primary holds the lease: is a running standby pre-warmed and within its hold?"""
    until = d.state.warm_until
    if until is None:
        return False
    if d.now < until:
        d.reasons.append(f"the pre-warmed standby stays up for {secs(until - d.now)} more ({instance})")
        return True
    d.update(warm_until=None)
    d.reasons.append("the pre-warmed standby was not needed: its hold is over")
    return False
