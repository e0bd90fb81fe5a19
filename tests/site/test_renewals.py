"""The health service's memory of answered nonces and its pending grants (hfo_site.renewals)."""

from __future__ import annotations

from hfo_site.renewals import MAX_GRANT_EPOCHS, AnsweredNonces, Grant, PendingGrants


def test_a_nonce_is_known_from_its_first_answer_usable_once_and_forgotten_after_the_memory() -> None:
    memory = AnsweredNonces(memory_s=300.0, max_count=10)
    assert memory.lookup("a" * 16, 0.0) == ("unknown_nonce", None)
    memory.answered("a" * 16, 10.0)
    memory.answered("a" * 16, 12.0)  # asked again: the first (earlier, safer) time stays
    assert memory.lookup("a" * 16, 20.0) == ("ok", 10.0)
    assert memory.lookup("a" * 16, 20.0) == ("ok", 10.0)  # a lookup changes nothing
    memory.use("a" * 16)
    assert memory.lookup("a" * 16, 21.0) == ("nonce_used", None)
    memory.answered("b" * 16, 30.0)
    assert memory.lookup("b" * 16, 330.0) == ("ok", 30.0)
    assert memory.lookup("b" * 16, 330.1) == ("unknown_nonce", None)
    assert len(memory) == 0


def test_the_memory_is_bounded_in_count_oldest_first() -> None:
    memory = AnsweredNonces(memory_s=300.0, max_count=3)
    for i in range(5):
        memory.answered(f"{i}" * 16, float(i))
    assert len(memory) == 3
    assert memory.lookup("0" * 16, 5.0)[0] == "unknown_nonce"
    assert memory.lookup("4" * 16, 5.0) == ("ok", 4.0)


def test_pending_grants_keep_the_latest_end_per_epoch_and_drop_what_ran_out() -> None:
    grants = PendingGrants()
    grants.add(Grant("primary", 7, 100.0, 90))
    grants.add(Grant("primary", 7, 90.0, 90))  # an earlier end never replaces a later one
    grants.add(Grant("primary", 8, 150.0, 90))
    assert [(g.epoch, g.ends_at) for g in grants.live(50.0)] == [(7, 100.0), (8, 150.0)]
    assert [g.epoch for g in grants.live(100.0)] == [8]  # ended at 100: dropped
    for epoch in range(9, 9 + MAX_GRANT_EPOCHS + 2):
        grants.add(Grant("primary", epoch, 1000.0, 90))
    assert len(grants.live(0.0)) == MAX_GRANT_EPOCHS
    assert min(g.epoch for g in grants.live(0.0)) == 9 + 2  # the highest epochs are kept
