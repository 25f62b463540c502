"""Logging set-up. Log lines never carry personal data: modules log ids and outcomes only."""

from __future__ import annotations

import logging
import sys

# Third-party loggers whose INFO/DEBUG lines are noise (fontTools: ~75 lines per PDF) or
# could carry what a request held (access logs with query strings, HTTP client URLs).
# They stay at WARNING whatever VSSID_LOG_LEVEL is.
NOISY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.server",
    "aiogram.event",
    "asyncio",
    "fontTools",
    "fpdf",
    "httpcore",
    "httpx",
    "PIL",
    "sqlalchemy.engine",
    "telegram",
)


def setup_logging(level: str = "INFO", quiet: bool = False) -> None:
    # Machine modes (JSON lines on stdout) log to stderr and only warnings.
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
