"""One JSON object per line for every request, so logs can be queried rather than grepped.

The access logger is ``bastion.serve.access``; each record carries its fields in
``record.fields``. Raw inputs appear only when the serve config asks for them — inputs can be
personal data, and adversarial payloads are better kept in the review queue, where access is
controlled.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["ACCESS_LOGGER", "JsonFormatter", "configure_logging"]

ACCESS_LOGGER = "bastion.serve.access"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", **record.fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: int = logging.INFO) -> None:
    """Send Bastion's server logs as JSON lines to stderr (idempotent)."""
    logger = logging.getLogger("bastion.serve")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
