"""``hfo-site health`` and ``hfo-site agent``: one image, two containers of one Pod; ``hfo-site state
restore|sync``: the init container and the sidecar of a gated workload with a state directory."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from hfo_site import __version__
from hfo_site.config import ConfigError, load_agent_settings, load_health_settings
from hfo_site.logs import setup_logging
from hfo_site.secrets import SecretError
from hfo_site.state.cli import add_parser as add_state_parser
from hfo_site.state.cli import main as state_main

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfo-site",
        description="hybrid-failover site side. Configuration comes from HFO_* environment variables "
        "(docs/site.md#configuration).",
    )
    parser.add_argument("--version", action="version", version=f"hfo-site {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{health,agent,state}")
    sub.add_parser("health", help="the signed health service (ports 8080, 8081 on loopback, 9100)")
    sub.add_parser("agent", help="the site agent: heartbeats, lease, workload (port 9101)")
    add_state_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "state":
        return state_main(args)
    try:
        if args.command == "health":
            health = load_health_settings(os.environ)
            setup_logging(health.log_level)
            from hfo_site.health_main import run_health

            asyncio.run(run_health(health))
        else:
            agent = load_agent_settings(os.environ)
            setup_logging(agent.log_level)
            from hfo_site.agent_main import run_agent

            asyncio.run(run_agent(agent))
    except (ConfigError, SecretError) as exc:
        print(f"hfo-site {args.command}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # a port already taken, an address that does not exist here
        print(f"hfo-site {args.command}: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
