"""Logging set-up. Log lines never carry personal data: modules log ids and outcomes only."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO", quiet: bool = False) -> None:
    # Machine modes (JSON lines on stdout) log to stderr and only warnings.
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiohttp.access", "httpx", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
