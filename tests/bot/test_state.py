"""The bot's small persistent state on its volume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hfo_bot.config import load
from hfo_bot.runner import record_start
from hfo_bot.state import BotState, StateStore


def test_round_trip_and_no_temp_files_left(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.save(BotState(starts=3, last_start="2026-11-23T15:00:00Z", last_site="standby", synced_commands="ab"))
    assert store.load() == BotState(3, "2026-11-23T15:00:00Z", "standby", "ab")
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["state.json"]


def test_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    assert StateStore(tmp_path).load() == BotState()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"starts": "many"}', '{"starts": 2, "unknown": 1}'])
def test_damaged_file_never_stops_the_bot(tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "state.json").write_text(content)
    state = StateStore(tmp_path).load()
    assert isinstance(state.starts, int)
    if content.startswith('{"starts": 2'):
        assert state.starts == 2  # unknown keys from a newer version are ignored, known ones kept


def test_record_start_counts_starts(tmp_path: Path) -> None:
    config = load({"HFO_SITE": "standby", "POD_NAME": "bot-0", "HFO_BOT_STATE_DIR": str(tmp_path)})
    store = StateStore(tmp_path)
    record_start(store, config)
    record_start(store, config)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["starts"] == 2
    assert saved["last_site"] == "standby"
    assert saved["last_start"].endswith("Z")


def test_unwritable_state_is_a_warning_not_a_crash(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = load({"HFO_SITE": "primary", "POD_NAME": "bot-0"})
    with caplog.at_level(logging.WARNING, logger="hfo_bot"):
        record_start(StateStore(blocker / "sub"), config)
    assert "cannot write state" in caplog.text
