"""``python -m hfo_bot [--offline]``: run the reference bot.

``--offline`` runs everything but the Discord gateway (no token needed, never ready): for tests, and to check
an image and its probes on a cluster before the token is sealed. Exit code 2 means bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hfo_bot.config import BotConfig, ConfigError, load, read_token
from hfo_bot.gateway import DiscordGateway, Gateway, OfflineGateway
from hfo_bot.lease_gate import LeaseGate
from hfo_bot.metrics import BotMetrics
from hfo_bot.runner import Runner
from hfo_bot.state import StateStore

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfo-bot", description="Reference Discord bot for hybrid-failover")
    parser.add_argument("--offline", action="store_true", help="run without connecting to Discord (never ready)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _gate(config: BotConfig) -> LeaseGate:
    lease = config.lease
    return LeaseGate(
        lease.url,
        config.site,
        margin_s=lease.margin_s,
        timeout_s=lease.timeout_s,
        check_every_s=lease.check_every_s,
        pause_s=lease.pause_s,
    )


def _gateway(config: BotConfig, offline: bool, metrics: BotMetrics, store: StateStore, gate: LeaseGate) -> Gateway:
    if offline:
        return OfflineGateway()
    token = read_token(config.token_file)
    from hfo_bot.discord_bot import SiteBot  # imported here: offline runs never load the Discord client

    def new_bot() -> SiteBot:
        return SiteBot(config, metrics, store, gate)

    return DiscordGateway(new_bot(), token.reveal(), config.shards.shard_ids, gate, renew=new_bot)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("hfo_bot")
    try:
        config = load()
        metrics = BotMetrics(config.site, config.pod_name, config.shards.shard_count, len(config.shards.shard_ids))
        store = StateStore(config.state_dir)
        gate = _gate(config)
        gateway = _gateway(config, args.offline, metrics, store, gate)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_CONFIG
    return asyncio.run(Runner(config, gateway, metrics, store, gate).serve())


if __name__ == "__main__":
    sys.exit(main())
