"""Which Discord shards this process runs.

A StatefulSet names its pods ``<name>-<ordinal>`` (bot-0, bot-1, ...). With ``SHARD_COUNT`` shards in total
and ``SHARDS_PER_POD`` shards per pod, pod ``k`` runs shards ``k*per .. k*per+per-1``: bot-0 always runs
shard 0, as Discord requires of the first connection. ``SHARD_IDS`` (``0-3`` or ``0,2,5-7``) overrides the
mapping for hand-made layouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SHARD_COUNT = 65535
_ORDINAL = re.compile(r"-(\d+)$")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class ShardConfigError(ValueError):
    """A shard setting is missing, malformed or inconsistent; the message names it and the allowed range."""


@dataclass(frozen=True)
class ShardAssignment:
    shard_count: int
    shard_ids: tuple[int, ...]

    def describe(self) -> str:
        return f"shards {format_shard_ids(self.shard_ids)} of {self.shard_count}"


def ordinal_from_name(name: str) -> int | None:
    """The StatefulSet ordinal at the end of a pod name (``bot-2`` -> 2), or None when there is none."""
    match = _ORDINAL.search(name.strip())
    return int(match.group(1)) if match else None


def parse_shard_ids(text: str, shard_count: int) -> tuple[int, ...]:
    """Parse ``0-3,7`` into (0, 1, 2, 3, 7); every id must be below ``shard_count`` and appear once."""
    ids: list[int] = []
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ShardConfigError(f"SHARD_IDS={text!r} is empty or has an empty item; use e.g. '0-3' or '0,2,5-7'")
    for part in parts:
        match = _RANGE.match(part)
        if not match:
            raise ShardConfigError(f"SHARD_IDS item {part!r} is not a number or a range like '4-7'")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ShardConfigError(f"SHARD_IDS range {part!r} runs backwards")
        if high >= shard_count:
            raise ShardConfigError(
                f"SHARD_IDS item {part!r} is out of range: shard ids go from 0 to {shard_count - 1} "
                f"(SHARD_COUNT={shard_count})"
            )
        ids.extend(range(low, high + 1))
    if len(set(ids)) != len(ids):
        raise ShardConfigError(f"SHARD_IDS={text!r} names a shard more than once")
    return tuple(sorted(ids))


def format_shard_ids(ids: tuple[int, ...]) -> str:
    """The compact form of a sorted id tuple: (0, 1, 2, 5) -> '0-2,5'."""
    out: list[str] = []
    start = prev = None
    for i in ids:
        if start is None:
            start = prev = i
        elif prev is not None and i == prev + 1:
            prev = i
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _int_setting(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ShardConfigError(f"{name}={raw!r} is not an integer (allowed: {low}-{high})") from None
    if not low <= value <= high:
        raise ShardConfigError(f"{name}={value} is out of range (allowed: {low}-{high})")
    return value


def assign(env: dict[str, str], pod_name: str) -> ShardAssignment:
    """Work out this pod's shards from ``SHARD_COUNT``, ``SHARDS_PER_POD`` or ``SHARD_IDS`` and its name."""
    shard_count = _int_setting("SHARD_COUNT", env.get("SHARD_COUNT", "1"), 1, MAX_SHARD_COUNT)
    explicit = env.get("SHARD_IDS", "").strip()
    if explicit:
        return ShardAssignment(shard_count, parse_shard_ids(explicit, shard_count))
    per_pod = _int_setting("SHARDS_PER_POD", env.get("SHARDS_PER_POD", str(shard_count)), 1, shard_count)
    ordinal = ordinal_from_name(pod_name)
    if ordinal is None:
        if per_pod < shard_count:
            raise ShardConfigError(
                f"pod name {pod_name!r} has no StatefulSet ordinal (like 'bot-0'), but SHARDS_PER_POD={per_pod} "
                f"< SHARD_COUNT={shard_count} needs one; set POD_NAME or SHARD_IDS"
            )
        ordinal = 0
    pods_needed = -(-shard_count // per_pod)
    first = ordinal * per_pod
    if first >= shard_count:
        raise ShardConfigError(
            f"pod ordinal {ordinal} has no shards: SHARD_COUNT={shard_count} with SHARDS_PER_POD={per_pod} "
            f"covers ordinals 0-{pods_needed - 1}; scale the StatefulSet to {pods_needed} replicas"
        )
    return ShardAssignment(shard_count, tuple(range(first, min(first + per_pod, shard_count))))
