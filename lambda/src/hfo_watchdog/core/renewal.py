"""Renewal on the probe path (docs/state-machine.md#renewal-on-the-probe-path).

A primary that is fine but cannot reach the Function URL would let its heartbeat lease run out and
stop its bot, with nothing to replace it (the watchdog does not fail over while the probe passes).
So when this tick's probe passed but the primary's heartbeats are late, the watchdog renews the
primary's lease over the probe path: the decision records `renewed_until = now + probe_lease_ttl_s`
(now is after the probe's answer arrived), and only after that write succeeds is the signed
renewal sent, naming the probe's nonce. The health service lets its agent hold the lease until its
own answer to that probe + `probe_lease_ttl_s`, which is never later than `renewed_until`. The
fencing rule (lease.py) counts `renewed_until`, so the standby is never granted before every
renewal sent has run out.
"""

from __future__ import annotations

from hfo_watchdog.core.draft import Draft, Tick
from hfo_watchdog.core.model import Action, ActionKind, LeaseSite, Mode, Phase, Renewal
from hfo_watchdog.core.signals import secs


def plan_renewal(d: Draft, t: Tick) -> None:
    st, policy, probe = d.state, d.policy, t.obs.probe
    if st.armed_at is None or st.mode == Mode.PAUSED or policy.probe_lease_ttl_s <= 0:
        return
    if st.lease.site != LeaseSite.PRIMARY or st.phase == Phase.FAILING_OVER:
        return
    if probe is None or not probe.ok or not probe.nonce:
        return
    age = t.sig.heartbeat_age
    if age is not None and age < policy.probe_renew_after_s:
        return
    until = d.now + policy.probe_lease_ttl_s
    d.update(renewed_until=max(until, st.renewed_until or until))
    heard = "no heartbeat ever" if age is None else f"last heartbeat {secs(age)} ago"
    reason = (
        f"renew the primary's lease over the probe path for {secs(policy.probe_lease_ttl_s)} (probe passed, {heard})"
    )
    d.actions.append(
        Action(
            kind=ActionKind.RENEW_PRIMARY,
            reason=reason,
            renewal=Renewal(epoch=st.lease.epoch, nonce=probe.nonce, ttl_s=policy.probe_lease_ttl_s),
        )
    )
    d.reasons.append(reason)
