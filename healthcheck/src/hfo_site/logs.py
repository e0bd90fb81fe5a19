"""One JSON object per log line on stderr, with the ``extra`` fields of each call as keys.

Nothing logged here ever carries a secret: callers pass codes, counts, URLs without
credentials and error classes, never headers, tokens or message bodies.
"""

from __future__ import annotations

import json
import logging
import sys
import time

WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, separators=(",", ":"))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would log every public request (and any flood) line by line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The AWS SDK's wire-level debug logs print each signed request (the canonical request and its
    # headers, x-amz-security-token included) and bodies: at HFO_LOG_LEVEL=DEBUG they would put the
    # state credentials' session token in the state containers' logs. Warnings and errors still pass.
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
