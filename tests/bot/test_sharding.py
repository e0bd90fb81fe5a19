"""StatefulSet ordinal -> shard ids (seed 001's mapping), and the SHARD_IDS override."""

from __future__ import annotations

import pytest
from hfo_bot.sharding import ShardConfigError, assign, format_shard_ids, ordinal_from_name, parse_shard_ids
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [("bot-0", 0), ("bot-12", 12), ("my-bot-3", 3), ("laptop", None), ("bot-", None), ("bot-1a", None)],
)
def test_ordinal_comes_from_the_trailing_number_of_the_pod_name(name: str, ordinal: int | None) -> None:
    assert ordinal_from_name(name) == ordinal


@pytest.mark.parametrize(("pod", "ids"), [("bot-0", (0, 1, 2, 3)), ("bot-1", (4, 5, 6, 7)), ("bot-2", (8, 9, 10, 11))])
def test_twelve_shards_four_per_pod_as_in_the_seed(pod: str, ids: tuple[int, ...]) -> None:
    got = assign({"SHARD_COUNT": "12", "SHARDS_PER_POD": "4"}, pod)
    assert got.shard_count == 12
    assert got.shard_ids == ids


def test_last_pod_takes_the_remainder() -> None:
    assert assign({"SHARD_COUNT": "10", "SHARDS_PER_POD": "4"}, "bot-2").shard_ids == (8, 9)


def test_a_pod_beyond_the_shards_is_refused_with_the_replica_count_to_use() -> None:
    with pytest.raises(ShardConfigError, match=r"ordinal 3 has no shards.*scale the StatefulSet to 3 replicas"):
        assign({"SHARD_COUNT": "12", "SHARDS_PER_POD": "4"}, "bot-3")


def test_single_shard_needs_no_ordinal() -> None:
    got = assign({}, "my-laptop")
    assert (got.shard_count, got.shard_ids) == (1, (0,))


def test_several_pods_need_an_ordinal() -> None:
    with pytest.raises(ShardConfigError, match="no StatefulSet ordinal"):
        assign({"SHARD_COUNT": "4", "SHARDS_PER_POD": "2"}, "my-laptop")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHARD_COUNT": "0"}, r"SHARD_COUNT=0 is out of range \(allowed: 1-65535\)"),
        ({"SHARD_COUNT": "many"}, r"SHARD_COUNT='many' is not an integer"),
        ({"SHARD_COUNT": "70000"}, r"SHARD_COUNT=70000 is out of range"),
        ({"SHARD_COUNT": "4", "SHARDS_PER_POD": "5"}, r"SHARDS_PER_POD=5 is out of range \(allowed: 1-4\)"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-4"}, r"out of range: shard ids go from 0 to 3"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "1,1"}, r"more than once"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, r"runs backwards"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0,,1"}, r"empty item"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "x"}, r"not a number or a range"),
    ],
)
def test_bad_settings_are_named_with_their_range(env: dict[str, str], message: str) -> None:
    with pytest.raises(ShardConfigError, match=message):
        assign(env, "bot-0")


def test_explicit_shard_ids_override_the_ordinal() -> None:
    got = assign({"SHARD_COUNT": "8", "SHARDS_PER_POD": "2", "SHARD_IDS": "5-7,0"}, "bot-1")
    assert got.shard_ids == (0, 5, 6, 7)
    assert got.describe() == "shards 0,5-7 of 8"


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_every_shard_runs_exactly_once_and_pod_zero_runs_shard_zero(count_per: tuple[int, int]) -> None:
    count, per = count_per
    pods = -(-count // per)
    seen: list[int] = []
    for ordinal in range(pods):
        seen.extend(assign({"SHARD_COUNT": str(count), "SHARDS_PER_POD": str(per)}, f"bot-{ordinal}").shard_ids)
    assert sorted(seen) == list(range(count))
    assert 0 in assign({"SHARD_COUNT": str(count), "SHARDS_PER_POD": str(per)}, "bot-0").shard_ids
    with pytest.raises(ShardConfigError):
        assign({"SHARD_COUNT": str(count), "SHARDS_PER_POD": str(per)}, f"bot-{pods}")


@given(st.sets(st.integers(0, 99), min_size=1))
def test_compact_form_parses_back_to_the_same_ids(ids: set[int]) -> None:
    ordered = tuple(sorted(ids))
    assert parse_shard_ids(format_shard_ids(ordered), 100) == ordered
