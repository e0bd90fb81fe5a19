"""The boot model (figures.toml, the one place the durations live) and the prices (the project's
one price file, tools/cost/prices.toml, read through tools/cost/cost.py).

A figure that is missing, out of range, or without a source is refused with an error that names
it; nothing falls back to a default.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from hfo_drill.sim.model import BootModel

FIGURES = Path(__file__).with_name("figures.toml")
REPO = Path(__file__).resolve().parents[2]
COST_TOOL = REPO / "tools" / "cost" / "cost.py"

# section -> the stages it must hold
REQUIRED = {
    "standby": ("ec2_start", "os_boot", "k3s_ready", "agent_start", "image_pull", "argocd_sync", "ec2_stop"),
    "pod": ("start",),
    "bot": ("gateway_connect", "stop"),
}
RANGED = frozenset({"standby.k3s_ready"})
MAX_STAGE_S = 3600


class FiguresError(ValueError):
    """A figure in figures.toml (or a price) is missing or out of range; the message names it."""


@dataclass(frozen=True)
class Stage:
    key: str  # "standby.k3s_ready"
    low: int
    high: int
    what: str
    source: str
    on_path: bool = True

    @property
    def text(self) -> str:
        return f"{self.low}" if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class Price:
    """EC2 On-Demand price of the standby's default instance type, from tools/cost/prices.toml,
    and the idle monthly cost `make cost` computes for a heartbeat interval and tick."""

    instance_type: str
    region: str
    usd_per_hour: float
    minimum_billed_s: int
    source: str

    def cost(self, billed_s: float) -> float:
        return billed_s * self.usd_per_hour / 3600.0


@dataclass(frozen=True)
class Figures:
    stages: dict[str, Stage]  # read-only by convention (a plain dict, so that it pickles for --jobs)
    boot: BootModel
    price: Price


def _need(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise FiguresError(f"{where}.{key} is missing")
    return table[key]


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = _need(table, key, where)
    if not isinstance(value, str) or not value.strip():
        raise FiguresError(f"{where}.{key} must be a non-empty string")
    return value


def _whole_seconds(table: dict[str, Any], key: str, where: str) -> int:
    value = _need(table, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FiguresError(f"{where}.{key} must be a whole number of seconds (0-{MAX_STAGE_S}), got {value!r}")
    if not 0 <= value <= MAX_STAGE_S:
        raise FiguresError(f"{where}.{key} = {value} is out of range: 0-{MAX_STAGE_S} seconds")
    return value


def _stage(section: str, name: str, table: Any) -> Stage:
    where = f"{section}.{name}"
    if not isinstance(table, dict):
        raise FiguresError(f"{where} must be a table with seconds (or low and high), what and source")
    on_path = table.get("on_path", True)
    if not isinstance(on_path, bool):
        raise FiguresError(f"{where}.on_path must be true or false, got {on_path!r}")
    if where in RANGED:
        low, high = _whole_seconds(table, "low", where), _whole_seconds(table, "high", where)
        if low > high:
            raise FiguresError(f"{where}: low ({low}) must not be above high ({high})")
    else:
        low = high = _whole_seconds(table, "seconds", where)
    return Stage(where, low, high, _text(table, "what", where), _text(table, "source", where), on_path)


def parse(doc: dict[str, Any], price: Price, *, argocd_on_path: bool = False, image_changed: bool = False) -> Figures:
    stages: dict[str, Stage] = {}
    for section, names in REQUIRED.items():
        tables = doc.get(section)
        if not isinstance(tables, dict):
            raise FiguresError(f"section [{section}] is missing (needs: {', '.join(names)})")
        for name in names:
            if name not in tables:
                raise FiguresError(f"{section}.{name} is missing")
            stages[f"{section}.{name}"] = _stage(section, name, tables[name])

    def s(key: str) -> float:
        return float(stages[key].low)

    k3s = stages["standby.k3s_ready"]
    boot = BootModel(
        ec2_start_s=s("standby.ec2_start"),
        os_boot_s=s("standby.os_boot"),
        k3s_ready_s=(float(k3s.low), float(k3s.high)),
        pod_start_s=s("pod.start"),
        agent_start_s=s("standby.agent_start"),
        image_pull_s=s("standby.image_pull"),
        argocd_sync_s=s("standby.argocd_sync"),
        ec2_stop_s=s("standby.ec2_stop"),
        gateway_connect_s=s("bot.gateway_connect"),
        bot_stop_s=s("bot.stop"),
        image_changed=image_changed,
        argocd_on_path=argocd_on_path,
    )
    return Figures(stages, boot, price)


def load(
    path: Path = FIGURES, *, argocd_on_path: bool = False, image_changed: bool = False, price: Price | None = None
) -> Figures:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise FiguresError(f"cannot read the boot figures {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FiguresError(f"{path} is not valid TOML: {exc}") from None
    try:
        return parse(doc, price or ec2_price(), argocd_on_path=argocd_on_path, image_changed=image_changed)
    except FiguresError as exc:
        raise FiguresError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------- prices (make cost)


@functools.cache
def cost_tool() -> ModuleType:
    """tools/cost/cost.py, the `make cost` estimator (not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("hfo_cost_tool", COST_TOOL)
    if spec is None or spec.loader is None:
        raise FiguresError(f"cannot load the cost tool {COST_TOOL}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def ec2_price() -> Price:
    """The standby's default instance type in the example's default region, priced by
    tools/cost/prices.toml; EC2 bills per second while running, at least 60 s per start."""
    tool: Any = cost_tool()
    try:
        settings = tool.read_settings()
        prices = tool.load_prices()
        usd = prices["regions"][settings.region]["ec2_hour"][settings.instance_type]
    except (tool.CostInputError, KeyError) as exc:
        raise FiguresError(f"tools/cost/prices.toml: no EC2 price for the default standby ({exc})") from None
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not math.isfinite(usd) or usd <= 0:
        raise FiguresError(f"tools/cost/prices.toml: EC2 price {usd!r} must be a positive number")
    return Price(
        instance_type=settings.instance_type,
        region=settings.region,
        usd_per_hour=float(usd),
        minimum_billed_s=60,
        source=f"tools/cost/prices.toml ({prices['meta']['compiled']}), {prices['sources']['ec2']}",
    )


@functools.cache
def idle_month_usd(heartbeat_interval_s: float, tick_s: float) -> float:
    """What the AWS side costs per month while the standby is stopped, as `make cost` computes
    it for the modules' defaults with this heartbeat interval and tick (no free tier), less its
    pre-warm line: the benchmark counts the EC2 minutes of its own runs."""
    tool: Any = cost_tool()
    settings = tool.read_settings()
    minutes = max(1, round(tick_s / 60))
    settings = replace(settings, heartbeat_interval_s=float(heartbeat_interval_s), tick_interval_minutes=minutes)
    return float(tool.estimate(settings, tool.load_prices(), cadences=()).idle_total_without_prewarm)
