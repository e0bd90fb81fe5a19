"""Small persistent state on the bot's volume (a PVC in Kubernetes): how often it started and which
command set was last synced to Discord, so restarts do not re-sync commands (Discord rate-limits that)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("hfo_bot.state")
STATE_FILE = "state.json"


@dataclass
class BotState:
    starts: int = 0
    last_start: str = ""
    last_site: str = ""
    synced_commands: str = ""


class StateStore:
    def __init__(self, directory: Path) -> None:
        self._path = directory / STATE_FILE

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> BotState:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return BotState()
        except (OSError, ValueError) as exc:
            log.warning("state file %s unreadable (%s); starting from empty state", self._path, exc)
            return BotState()
        if not isinstance(raw, dict):
            log.warning("state file %s is not a JSON object; starting from empty state", self._path)
            return BotState()
        known = {k: raw[k] for k in BotState.__dataclass_fields__ if k in raw}
        try:
            state = BotState(**known)
        except TypeError:
            return BotState()
        if not isinstance(state.starts, int):
            state.starts = 0
        return state

    def save(self, state: BotState) -> None:
        """Write atomically (temp file + rename), so a kill mid-write never leaves half a file."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".state-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(state), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
