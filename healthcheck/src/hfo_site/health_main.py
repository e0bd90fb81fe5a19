"""``hfo-site health``: wire settings, secrets, checks and the listeners, run until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp

from hfo_site.checks import Check, CheckRunner, KubernetesReplicasCheck, ReadyUrlCheck
from hfo_site.config import HealthSettings
from hfo_site.health_app import HealthState, serve
from hfo_site.metrics import HealthMetrics
from hfo_site.ratelimit import RateLimiter
from hfo_site.secrets import SecretFile, parse_keyring, parse_token

log = logging.getLogger("hfo_site.health")


async def run_health(settings: HealthSettings) -> None:
    keyring = SecretFile(settings.secret_file, parse_keyring, "HFO_HMAC_SECRET_FILE")
    token = SecretFile(settings.token_file, parse_token, "HFO_DETAILS_TOKEN_FILE")
    metrics = HealthMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connector = aiohttp.TCPConnector(limit=4, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        checks: list[Check] = []
        if settings.workload_ready_url:
            checks.append(ReadyUrlCheck(settings.workload_ready_url, session, settings.check_timeout_s))
        api_client = None
        if settings.backend.kind == "kubernetes":
            from hfo_site.k8s import WorkloadApi, make_api_client

            assert settings.backend.namespace is not None
            api_client = make_api_client(request_timeout_s=settings.check_timeout_s)
            checks.append(
                KubernetesReplicasCheck(WorkloadApi(api_client, settings.backend.namespace), settings.backend.workloads)
            )
        runner = CheckRunner(checks, settings.check_interval_s, settings.check_timeout_s, metrics)
        state = HealthState(
            site=settings.site,
            keyring=keyring,
            token=token,
            runner=runner,
            limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst, settings.rate_limit_clients),
            metrics=metrics,
            heartbeat_stale_s=settings.heartbeat_stale_s,
            client_ip_header=settings.client_ip_header,
            trusted_proxies=settings.trusted_proxies,
        )
        try:
            await serve(
                state,
                settings.bind,
                settings.port,
                settings.status_port,
                settings.metrics_port,
                stop,
                settings.shutdown_grace_s,
            )
        finally:
            if api_client is not None:
                api_client.close()
    log.info("health service stopped")
