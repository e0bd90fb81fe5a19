"""The discord.py bot: one ``/site`` slash command (and ``!site`` / ``@bot site``) that says where it runs.

Only built in online mode. Building it opens no connection; ``start`` does.
"""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands
from discord.ext import commands

from hfo_bot import discord_lease
from hfo_bot.config import BotConfig
from hfo_bot.lease_gate import LeaseGate
from hfo_bot.metrics import BotMetrics
from hfo_bot.sharding import format_shard_ids
from hfo_bot.state import StateStore

log = logging.getLogger("hfo_bot.discord")


def site_message(site: str, pod: str, shard_ids: tuple[int, ...], shard_count: int, guild_shard: int | None) -> str:
    """The answer of the ``site`` command."""
    where = "the home laptop (primary site)" if site == "primary" else "the AWS standby (failover site)"
    shard = f", answering from shard {guild_shard}" if guild_shard is not None else ""
    return f"Running on {where}: pod {pod}, shards {format_shard_ids(shard_ids)} of {shard_count}{shard}."


def command_fingerprint(specs: list[dict[str, object]]) -> str:
    """A stable hash of the command definitions, to sync them to Discord only when they change."""
    return hashlib.sha256(json.dumps(specs, sort_keys=True, default=str).encode()).hexdigest()[:16]


class SiteBot(commands.AutoShardedBot):
    def __init__(
        self, config: BotConfig, metrics: BotMetrics, store: StateStore, gate: LeaseGate | None = None
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned_or("!"),
            intents=discord.Intents.default(),  # no privileged intents needed
            shard_count=config.shards.shard_count,
            shard_ids=list(config.shards.shard_ids),
            help_command=None,
        )
        self.config = config
        self.metrics = metrics
        self.store = store
        if gate is not None and gate.aware:
            discord_lease.install(self.http, gate)  # docs/kubernetes.md#lease-aware-bot
        self._register()

    def _answer(self, guild_shard: int | None) -> str:
        c = self.config
        return site_message(c.site, c.pod_name, c.shards.shard_ids, c.shards.shard_count, guild_shard)

    def _register(self) -> None:
        @self.tree.command(name="site", description="Which site (home laptop or AWS standby) runs this bot")
        async def site_slash(interaction: discord.Interaction) -> None:
            shard = interaction.guild.shard_id if interaction.guild else None
            self.metrics.commands.labels(command="site").inc()
            await interaction.response.send_message(self._answer(shard), ephemeral=True)

        @commands.command(name="site")
        async def site_prefix(ctx: commands.Context[SiteBot]) -> None:
            shard = ctx.guild.shard_id if ctx.guild else None
            self.metrics.commands.labels(command="site").inc()
            await ctx.reply(self._answer(shard), mention_author=False)

        self.add_command(site_prefix)

    def command_specs(self) -> list[dict[str, object]]:
        return [cmd.to_dict(self.tree) for cmd in self.tree.get_commands()]

    async def setup_hook(self) -> None:
        """Sync slash commands once per change, from the pod that runs shard 0 only."""
        if not self.config.sync_commands or 0 not in self.config.shards.shard_ids:
            return
        fingerprint = command_fingerprint(self.command_specs())
        state = self.store.load()
        if state.synced_commands == fingerprint:
            log.info("slash commands unchanged (%s); not syncing", fingerprint)
            return
        try:
            await self.tree.sync()
        except (discord.HTTPException, app_commands.CommandSyncFailure) as exc:
            log.warning("slash command sync failed, will retry on next start: %s", exc)
            return
        state.synced_commands = fingerprint
        try:
            self.store.save(state)
        except OSError as exc:
            log.warning("cannot record the command sync in %s: %s", self.store.path, exc)
        log.info("slash commands synced (%s)", fingerprint)

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (%s)", self.user, self.config.shards.describe())
