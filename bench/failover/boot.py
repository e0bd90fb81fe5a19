"""The standby's boot and the instance price, read from figures.toml (the one place they live).

The simulator steps one second at a time, so every duration is a whole number of seconds. A
figure that is missing, not a whole number, out of range, or without a source is refused with
an error that names it; nothing falls back to a default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

FIGURES = Path(__file__).with_name("figures.toml")

# section -> the stages it must hold, in boot order
REQUIRED = {
    "standby": ("ec2_start", "os_boot", "k3s_ready", "agent_pod", "argocd_sync", "ec2_stop"),
    "bot": ("pod_start", "gateway_connect", "stop"),
}
MAX_STAGE_S = 3600


class FiguresError(ValueError):
    """A figure in figures.toml is missing or out of range; the message names it."""


@dataclass(frozen=True)
class Stage:
    key: str  # "standby.k3s_ready"
    seconds: int
    what: str
    source: str
    on_path: bool = True


@dataclass(frozen=True)
class Price:
    instance_type: str
    region: str
    usd_per_hour: float
    minimum_billed_s: int
    source: str

    def cost(self, billed_s: float) -> float:
        return billed_s * self.usd_per_hour / 3600.0


@dataclass(frozen=True)
class BootModel:
    """Durations the simulator uses, derived from the stages.

    `argocd_on_path` puts the Argo CD catch-up on the critical path of every policy (the case of
    a Git change while the standby was stopped)."""

    stages: MappingProxyType[str, Stage]
    price: Price
    argocd_on_path: bool = False

    def s(self, key: str) -> int:
        return self.stages[key].seconds

    @property
    def ec2_start_s(self) -> int:
        return self.s("standby.ec2_start")

    @property
    def ec2_stop_s(self) -> int:
        return self.s("standby.ec2_stop")

    @property
    def node_ready_s(self) -> int:
        """`running` until the node can run pods (plus Argo CD's catch-up when it is on the path)."""
        argocd = self.s("standby.argocd_sync") if self.argocd_on_path else 0
        return self.s("standby.os_boot") + self.s("standby.k3s_ready") + argocd

    @property
    def agent_ready_s(self) -> int:
        """`running` until the standby's agent sends its first heartbeat."""
        return self.node_ready_s + self.s("standby.agent_pod")

    @property
    def bot_start_s(self) -> int:
        """The agent starts the bot until the bot answers on Discord (either site)."""
        return self.s("bot.pod_start") + self.s("bot.gateway_connect")

    @property
    def bot_stop_s(self) -> int:
        return self.s("bot.stop")

    @property
    def seed_bot_ready_s(self) -> int:
        """`running` until the seed's standby bot answers: K3s restarts the bot's pod by itself
        (replicas 1 in Git, no agent, no lease)."""
        return self.node_ready_s + self.bot_start_s

    @property
    def our_critical_path_s(self) -> int:
        """StartInstances until our standby's bot answers, when its first heartbeat gets the lease
        at once (a failover already moved the lease to it)."""
        return self.ec2_start_s + self.agent_ready_s + self.bot_start_s


def _need(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise FiguresError(f"{where}.{key} is missing")
    return table[key]


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = _need(table, key, where)
    if not isinstance(value, str) or not value.strip():
        raise FiguresError(f"{where}.{key} must be a non-empty string")
    return value


def _whole_seconds(table: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = _need(table, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FiguresError(f"{where}.{key} must be a whole number of seconds ({low}-{high}), got {value!r}")
    if not low <= value <= high:
        raise FiguresError(f"{where}.{key} = {value} is out of range: {low}-{high} seconds")
    return value


def _stage(section: str, name: str, table: Any) -> Stage:
    where = f"{section}.{name}"
    if not isinstance(table, dict):
        raise FiguresError(f"{where} must be a table with seconds, what and source")
    on_path = table.get("on_path", True)
    if not isinstance(on_path, bool):
        raise FiguresError(f"{where}.on_path must be true or false, got {on_path!r}")
    return Stage(
        key=where,
        seconds=_whole_seconds(table, "seconds", where, 0, MAX_STAGE_S),
        what=_text(table, "what", where),
        source=_text(table, "source", where),
        on_path=on_path,
    )


def _price(table: Any) -> Price:
    if not isinstance(table, dict):
        raise FiguresError("price must be a table")
    usd = _need(table, "usd_per_hour", "price")
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not math.isfinite(usd) or not 0 < usd <= 100:
        raise FiguresError(f"price.usd_per_hour must be a number in (0, 100] USD, got {usd!r}")
    return Price(
        instance_type=_text(table, "instance_type", "price"),
        region=_text(table, "region", "price"),
        usd_per_hour=float(usd),
        minimum_billed_s=_whole_seconds(table, "minimum_billed_s", "price", 0, 3600),
        source=_text(table, "source", "price"),
    )


def parse(doc: dict[str, Any], *, argocd_on_path: bool = False) -> BootModel:
    stages: dict[str, Stage] = {}
    for section, names in REQUIRED.items():
        tables = doc.get(section)
        if not isinstance(tables, dict):
            raise FiguresError(f"section [{section}] is missing (needs: {', '.join(names)})")
        for name in names:
            if name not in tables:
                raise FiguresError(f"{section}.{name} is missing")
            stages[f"{section}.{name}"] = _stage(section, name, tables[name])
    if "price" not in doc:
        raise FiguresError("section [price] is missing")
    return BootModel(stages=MappingProxyType(stages), price=_price(doc["price"]), argocd_on_path=argocd_on_path)


def load(path: Path = FIGURES, *, argocd_on_path: bool = False) -> BootModel:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise FiguresError(f"cannot read the boot figures {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FiguresError(f"{path} is not valid TOML: {exc}") from None
    try:
        return parse(doc, argocd_on_path=argocd_on_path)
    except FiguresError as exc:
        raise FiguresError(f"{path}: {exc}") from None
