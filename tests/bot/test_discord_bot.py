"""The discord.py bot object: its ``site`` command and the once-per-change slash command sync.

Building the bot opens no connection. ``tree.sync`` would call Discord's HTTP API, which cannot be reached
here; the sync test replaces only that one call with a recorder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hfo_bot.config import load
from hfo_bot.discord_bot import SiteBot, command_fingerprint, site_message
from hfo_bot.metrics import BotMetrics
from hfo_bot.state import BotState, StateStore


def _bot(tmp_path: Path, pod: str = "bot-0", **env: str) -> SiteBot:
    config = load({"HFO_SITE": "standby", "POD_NAME": pod, "HFO_BOT_STATE_DIR": str(tmp_path), **env})
    return SiteBot(config, BotMetrics(config.site, pod, config.shards.shard_count, 1), StateStore(tmp_path))


@pytest.mark.parametrize(
    ("site", "where"), [("primary", "home laptop (primary site)"), ("standby", "AWS standby (failover site)")]
)
def test_site_message_says_where_the_bot_runs(site: str, where: str) -> None:
    text = site_message(site, "bot-1", (4, 5, 6, 7), 12, 5)
    assert where in text
    assert "pod bot-1, shards 4-7 of 12, answering from shard 5" in text
    assert "answering" not in site_message(site, "bot-0", (0,), 1, None)


def test_site_command_is_registered_as_slash_and_prefix_command(tmp_path: Path) -> None:
    bot = _bot(tmp_path)
    slash = bot.tree.get_command("site")
    assert slash is not None and "site" in slash.description
    assert bot.get_command("site") is not None
    assert (bot.shard_count, bot.shard_ids) == (1, [0])


def test_sharded_bot_gets_its_shards_from_the_pod_name(tmp_path: Path) -> None:
    bot = _bot(tmp_path, pod="bot-1", SHARD_COUNT="4", SHARDS_PER_POD="2")
    assert (bot.shard_count, bot.shard_ids) == (4, [2, 3])


def test_fingerprint_changes_with_the_command_definitions(tmp_path: Path) -> None:
    specs = _bot(tmp_path).command_specs()
    same = _bot(tmp_path).command_specs()
    assert command_fingerprint(specs) == command_fingerprint(same)
    changed = [dict(specs[0], description="other")]
    assert command_fingerprint(changed) != command_fingerprint(specs)


class SyncRecorder:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> list[object]:
        self.calls += 1
        return []


def test_commands_sync_once_per_change_and_only_from_shard_zero(tmp_path: Path) -> None:
    first = _bot(tmp_path)
    recorder = SyncRecorder()
    first.tree.sync = recorder
    asyncio.run(first.setup_hook())
    assert recorder.calls == 1
    assert StateStore(tmp_path).load().synced_commands == command_fingerprint(first.command_specs())

    again = _bot(tmp_path)
    again.tree.sync = recorder
    asyncio.run(again.setup_hook())
    assert recorder.calls == 1  # unchanged: no second sync after a restart

    other = _bot(tmp_path / "other", pod="bot-1", SHARD_COUNT="2", SHARDS_PER_POD="1")
    other.tree.sync = recorder
    asyncio.run(other.setup_hook())
    assert recorder.calls == 1  # bot-1 does not run shard 0
    assert StateStore(tmp_path / "other").load() == BotState()

    disabled = _bot(tmp_path / "off", HFO_BOT_SYNC_COMMANDS="false")
    disabled.tree.sync = recorder
    asyncio.run(disabled.setup_hook())
    assert recorder.calls == 1
