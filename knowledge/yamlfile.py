"""YAML parsed with libyaml when PyYAML has it: the same safe loader, about ten times faster.

Every catalog, flow and the FAQ file is parsed at start-up; with PyYAML's pure-Python
parser that was most of a cold start (faq.yaml alone ~0.2 s of CPU).
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(source: Any) -> Any:
    """`yaml.safe_load` (of a str or an open file), through libyaml when available."""
    return yaml.load(source, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)
