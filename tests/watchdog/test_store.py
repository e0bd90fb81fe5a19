"""The DynamoDB state store against the moto server: conditional writes, history in the same
transaction, heartbeat records with replay protection, and a race between two invocations."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.core.model import (
    ControlState,
    InstanceState,
    Lease,
    LeaseSite,
    Mode,
    Phase,
    ProbeFailure,
    ProbeResult,
    Site,
    Transition,
)
from hfo_watchdog.store import (
    DynamoStateStore,
    HeartbeatReplay,
    SiteUnchanged,
    StoreUnavailable,
    history_sort_key,
)
from testsupport.net import free_port
from testsupport.watchdog import TABLE, create_table, heartbeat, scan_all

pytestmark = pytest.mark.moto
T0 = 1_800_000_000.0


@pytest.fixture
def ddb(aws: MotoServer) -> Any:
    return create_table()


def store(ddb: Any, **kwargs: Any) -> DynamoStateStore:
    return DynamoStateStore(ddb, TABLE, **kwargs)


def rich_state(version: int = 1) -> ControlState:
    return ControlState(
        version=version,
        mode=Mode.DRILL,
        mode_until=T0 + 600.5,
        phase=Phase.ON_STANDBY,
        phase_since=T0 + 1.25,
        lease=Lease(LeaseSite.STANDBY, 7, T0 + 1.25),
        probe_fail_streak=4,
        probe_ok_streak=0,
        last_probe=ProbeResult(
            ok=False,
            at=T0 + 2.5,
            failure=ProbeFailure.CONNECT_TIMEOUT,
            detail="no TCP connection in 3.0s",
            latency_ms=3000.25,
        ),
        last_start_at=T0 + 1.5,
        start_count=3,
        start_failures=1,
        standby_running_since=T0 + 30.0,
        open_alerts=frozenset({"degraded:heartbeat", "standby_runtime"}),
        last_tick_at=T0 + 2.5,
    )


def test_empty_table_loads_the_default_state(ddb: Any) -> None:
    assert store(ddb).load() == (ControlState(), None, None)
    assert store(ddb).load_control() == ControlState()


def test_every_field_round_trips(ddb: Any) -> None:
    s = store(ddb)
    assert s.save(0, rich_state(), None)
    control, primary, standby = s.load()
    assert control == rich_state()
    assert (primary, standby) == (None, None)
    assert s.load_control() == rich_state()
    # A probe without failure, with an HTTP status, and an empty alert set.
    ok = replace(
        rich_state(2),
        last_probe=ProbeResult(ok=True, at=T0 + 9, http_status=200, latency_ms=12.5),
        open_alerts=frozenset(),
        mode_until=None,
    )
    assert s.save(1, ok, None)
    assert s.load_control() == ok


def test_save_refuses_a_version_that_does_not_follow(ddb: Any) -> None:
    with pytest.raises(ValueError, match=r"state\.version must be 1, got 3"):
        store(ddb).save(0, rich_state(3), None)
    assert scan_all(ddb, TABLE) == []


def test_a_stale_version_loses_and_writes_nothing(ddb: Any) -> None:
    s = store(ddb)
    assert s.save(0, rich_state(1), None)
    assert not s.save(0, rich_state(1), None)  # someone created it already
    assert s.save(1, replace(rich_state(2), probe_fail_streak=5), None)
    before = scan_all(ddb, TABLE)
    assert not s.save(1, replace(rich_state(2), probe_fail_streak=99), _transition())
    assert scan_all(ddb, TABLE) == before


def _transition(at: float = T0 + 10, epoch: int = 8) -> Transition:
    return Transition(
        from_phase=Phase.ON_STANDBY,
        to_phase=Phase.HANDING_BACK,
        from_lease=Lease(LeaseSite.STANDBY, epoch - 1, T0),
        to_lease=Lease(LeaseSite.NONE, epoch, at),
        reasons=("primary back: 3 good probes", "heartbeats steady for 180 s"),
        at=at,
    )


def test_a_transition_writes_its_history_in_the_same_transaction(ddb: Any) -> None:
    s = store(ddb, history_ttl_s=7 * 86400, writer="tick")
    assert s.save(0, rich_state(1), None)
    assert s.save(1, rich_state(2), _transition(), instance=InstanceState.RUNNING)
    [entry] = s.history(10)
    assert (entry.from_phase, entry.to_phase) == ("on_standby", "handing_back")
    assert entry.to_lease == Lease(LeaseSite.NONE, 8, T0 + 10)
    assert entry.from_lease == Lease(LeaseSite.STANDBY, 7, T0)
    assert entry.reasons == ("primary back: 3 good probes", "heartbeats steady for 180 s")
    assert (entry.mode, entry.instance, entry.writer, entry.at) == ("drill", "running", "tick", T0 + 10)
    [item] = [i for i in scan_all(ddb, TABLE) if i["pk"]["S"] == "HISTORY"]
    assert item["sk"]["S"] == history_sort_key(T0 + 10, 8, 2)
    assert int(item["expires_at"]["N"]) == int(T0 + 10 + 7 * 86400)


def test_history_is_newest_first_and_bounded(ddb: Any) -> None:
    s = store(ddb)
    assert s.save(0, rich_state(1), None)
    for v in range(2, 8):
        assert s.save(v - 1, rich_state(v), _transition(at=T0 + v, epoch=v))
    entries = s.history(3)
    assert [e.to_lease.epoch for e in entries] == [7, 6, 5]
    assert len(s.history(100)) == 6
    with pytest.raises(ValueError, match="limit"):
        s.history(0)


def test_history_keys_sort_in_time_order() -> None:
    keys = [history_sort_key(T0 + dt, e, n) for dt, e, n in [(0.001, 9, 99), (0.002, 10, 100), (1.5, 10, 101)]]
    assert keys == sorted(keys)


def test_race_between_two_invocations_exactly_one_wins(ddb: Any) -> None:
    seed = store(ddb)
    assert seed.save(0, rich_state(1), None)
    # Two containers, each with its own client: both load the same version and both decide.
    a = store(boto3.client("dynamodb"), writer="tick-a")
    b = store(boto3.client("dynamodb"), writer="tick-b")
    (state_a, _, _), (state_b, _, _) = a.load(), b.load()
    assert state_a.version == state_b.version == 1
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}

    def invoke(name: str, st: DynamoStateStore, state: ControlState) -> None:
        decided = replace(state, version=state.version + 1, probe_fail_streak=state.probe_fail_streak + 1)
        barrier.wait(timeout=5)
        results[name] = st.save(state.version, decided, _transition(epoch=state.lease.epoch + 1))

    threads = [
        threading.Thread(target=invoke, args=("a", a, state_a)),
        threading.Thread(target=invoke, args=("b", b, state_b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results.values()) == [False, True]
    winner = "tick-a" if results["a"] else "tick-b"
    items = scan_all(ddb, TABLE)
    control = next(i for i in items if i["pk"]["S"] == "CONTROL")
    assert control["version"]["N"] == "2" and control["updated_by"]["S"] == winner
    history = [i for i in items if i["pk"]["S"] == "HISTORY"]
    assert [h["writer"]["S"] for h in history] == [winner]


def test_heartbeats_are_recorded_in_their_site_item_only(ddb: Any) -> None:
    s = store(ddb, steady_gap_s=30)
    assert s.save(0, rich_state(1), None)
    control_before = [i for i in scan_all(ddb, TABLE) if i["pk"]["S"] == "CONTROL"]
    rec = s.record_heartbeat(heartbeat("primary", T0, workload="stopped", epoch_seen=6, ready=True), T0 + 0.2)
    assert (rec.site, rec.sent_at, rec.received_at, rec.steady_since, rec.count) == (
        Site.PRIMARY,
        T0,
        T0 + 0.2,
        T0 + 0.2,
        1,
    )
    assert (rec.workload, rec.epoch_seen, rec.ready) == ("stopped", 6, True)
    rec2 = s.record_heartbeat(heartbeat("primary", T0 + 10, workload="stopped", epoch_seen=7), T0 + 10.1)
    assert (rec2.steady_since, rec2.count, rec2.epoch_seen) == (T0 + 0.2, 2, 7)
    control, primary, standby = s.load()
    assert primary == rec2 and standby is None and control == rich_state(1)
    assert [i for i in scan_all(ddb, TABLE) if i["pk"]["S"] == "CONTROL"] == control_before


def test_steady_since_restarts_after_a_gap(ddb: Any) -> None:
    s = store(ddb, steady_gap_s=30)
    s.record_heartbeat(heartbeat("standby", T0), T0)
    s.record_heartbeat(heartbeat("standby", T0 + 30), T0 + 30)  # a gap of exactly 30 s: still steady
    assert s.load()[2].steady_since == T0
    late = s.record_heartbeat(heartbeat("standby", T0 + 61), T0 + 60.5)
    assert late.steady_since == T0 + 60.5 and late.count == 3


@pytest.mark.parametrize("offset", [0.0, -0.001, -60.0])
def test_replayed_or_older_heartbeat_is_refused_without_writing(ddb: Any, offset: float) -> None:
    s = store(ddb)
    s.record_heartbeat(heartbeat("primary", T0), T0)
    before = scan_all(ddb, TABLE)
    with pytest.raises(HeartbeatReplay) as replay:
        s.record_heartbeat(heartbeat("primary", T0 + offset), T0 + 1)
    assert replay.value.site == "primary" and "not later than the last accepted one" in str(replay.value)
    assert scan_all(ddb, TABLE) == before


def test_sites_do_not_interfere(ddb: Any) -> None:
    s = store(ddb)
    s.record_heartbeat(heartbeat("primary", T0 + 5), T0 + 5)
    standby = s.record_heartbeat(heartbeat("standby", T0), T0 + 5)  # older than primary's: not a replay
    assert standby.count == 1
    _, primary, standby2 = s.load()
    assert primary is not None and primary.sent_at == T0 + 5 and standby2 == standby


def test_concurrent_heartbeats_of_one_site_all_land_in_order(ddb: Any) -> None:
    stores = [store(boto3.client("dynamodb")) for _ in range(4)]
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            stores[i].record_heartbeat(heartbeat("primary", T0 + i), T0 + i)
        except HeartbeatReplay:
            pass  # an earlier heartbeat arriving after a later one is a replay: refused
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)  # moto on a loaded CI machine, with up to 4 attempts per writer
    assert not [t.name for t in threads if t.is_alive()], "a writer was still running: its heartbeat may not be in yet"
    assert errors == []
    _, primary, _ = stores[0].load()
    assert primary is not None and primary.sent_at == T0 + 3
    assert 1 <= primary.count <= 4


def test_unreachable_dynamodb_is_store_unavailable(aws: MotoServer) -> None:
    dead = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1, "mode": "standard"}),
    )
    s = DynamoStateStore(dead, TABLE)
    with pytest.raises(StoreUnavailable, match="batch_get_item failed: EndpointConnectionError"):
        s.load()
    with pytest.raises(StoreUnavailable):
        s.record_heartbeat(heartbeat(), T0)
    with pytest.raises(StoreUnavailable):
        s.save(0, rich_state(1), None)


def test_missing_table_is_store_unavailable(aws: MotoServer) -> None:
    with pytest.raises(StoreUnavailable, match="ResourceNotFoundException"):
        DynamoStateStore(boto3.client("dynamodb"), "no-such-table").load()


def test_a_guarded_write_fails_when_the_site_heartbeated_after_the_read(ddb: Any) -> None:
    s = store(ddb)
    assert s.save(0, rich_state(1), None, unchanged=SiteUnchanged(Site.PRIMARY, None))  # no record yet: ok
    s.record_heartbeat(heartbeat("primary", T0), T0)
    _, primary, _ = s.load()
    assert primary is not None
    guard = SiteUnchanged(Site.PRIMARY, primary.received_at)
    assert s.save(1, rich_state(2), _transition(), unchanged=guard)
    s.record_heartbeat(heartbeat("primary", T0 + 5), T0 + 5)  # lands after the read
    before = scan_all(ddb, TABLE)
    assert not s.save(2, rich_state(3), _transition(at=T0 + 20, epoch=9), unchanged=guard)
    assert s.last_conflict == "a heartbeat from the primary arrived after the state was read"
    assert scan_all(ddb, TABLE) == before
    assert not s.save(2, rich_state(3), None, unchanged=SiteUnchanged(Site.STANDBY, T0))  # no standby item
    assert s.last_conflict == "a heartbeat from the standby arrived after the state was read"
    assert not s.save(1, rich_state(2), None)
    assert s.last_conflict == "the control item is no longer at version 1"
    assert s.save(2, rich_state(3), None, unchanged=SiteUnchanged(Site.PRIMARY, T0 + 5))
    assert s.last_conflict is None


def _primary_lease_state(version: int, site: LeaseSite = LeaseSite.PRIMARY, epoch: int = 1) -> ControlState:
    return ControlState(version=version, lease=Lease(site, epoch, T0))


def test_a_heartbeat_read_before_the_lease_was_taken_is_judged_again(ddb: Any) -> None:
    """The fence: a tick takes the lease from the primary between a heartbeat's read and its
    write. The heartbeat must not be written against the old lease (its answer would renew a
    lease already gone); it is read again and answered with the new one."""
    s, tick = store(ddb), store(boto3.client("dynamodb"))
    assert s.save(0, _primary_lease_state(1), None)
    s.record_heartbeat(heartbeat("primary", T0, seq=1, boot="b0000000000000001"), T0)
    _, primary, _ = tick.load()
    assert primary is not None
    taken: list[bool] = []

    def clock() -> float:  # runs after the heartbeat's read, before its write
        if not taken:
            guard = SiteUnchanged(Site.PRIMARY, primary.received_at)
            moved = _primary_lease_state(2, LeaseSite.NONE, 2)
            taken.append(tick.save(1, moved, _transition(at=T0 + 9, epoch=2), unchanged=guard))
        return T0 + 10

    accepted = s.accept_heartbeat(heartbeat("primary", T0 + 10, seq=2, boot="b0000000000000001"), clock)
    assert taken == [True]  # the tick's write went first...
    assert accepted.state.version == 2 and accepted.state.lease.site == LeaseSite.NONE  # ...and was seen
    assert s.load()[1] == accepted.record


def test_a_heartbeat_is_not_stopped_by_a_write_that_takes_nothing_from_it(ddb: Any) -> None:
    """One PutItem per heartbeat: a tick that only records its probe lands in between, and the
    heartbeat is still written at once, answered with the lease it read (the same lease)."""
    s, tick = store(ddb), store(boto3.client("dynamodb"))
    assert s.save(0, _primary_lease_state(1), None)
    s.record_heartbeat(heartbeat("primary", T0, seq=1, boot="b0000000000000001"), T0)
    calls = s.calls

    def clock() -> float:
        if s.calls == calls + 1:  # once, between this heartbeat's read and its write
            assert tick.save(1, replace(_primary_lease_state(2), probe_ok_streak=1), None)
        return T0 + 10

    accepted = s.accept_heartbeat(heartbeat("primary", T0 + 10, seq=2, boot="b0000000000000001"), clock)
    assert s.calls == calls + 2  # one read, one write: no retry
    assert (accepted.state.version, accepted.state.lease.site) == (1, LeaseSite.PRIMARY)
    assert tick.load()[0].version == 2  # the tick's write stands


def test_a_fenced_site_keeps_its_fence_and_its_replay_guard(ddb: Any) -> None:
    s = store(ddb)
    assert s.save(0, _primary_lease_state(1), None)
    s.record_heartbeat(heartbeat("primary", T0, seq=1, boot="b0000000000000001"), T0)
    _, primary, _ = s.load()
    assert primary is not None
    guard = SiteUnchanged(Site.PRIMARY, primary.received_at)
    assert s.save(1, _primary_lease_state(2, LeaseSite.NONE, 2), _transition(), unchanged=guard)
    s.record_heartbeat(heartbeat("primary", T0 + 10, seq=2, boot="b0000000000000001"), T0 + 10)
    (item,) = [i for i in scan_all(ddb, TABLE) if i["pk"]["S"] == "SITE"]
    assert item["fence"] == {"N": "2"} and item["seq"] == {"N": "2"}
    before = scan_all(ddb, TABLE)
    with pytest.raises(HeartbeatReplay):  # replay protection unchanged by the fence
        s.record_heartbeat(heartbeat("primary", T0 + 11, seq=2, boot="b0000000000000001"), T0 + 11)
    assert scan_all(ddb, TABLE) == before
