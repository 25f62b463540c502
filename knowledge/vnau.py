"""The one place that reaches into vietnamadminunits' private parts.

Why an adapter: the package's public API (`parse_address`, `convert_address`) is not enough.
Matching province aliases and converting pre-2025 addresses offline needs its data files
(`data/*.json`, `data/dataset.db`) and the tables its legacy parser keeps as module globals
(`parser_legacy.DICT_PROVINCE_DISTRICT...`), none of which it documents. A minor release
may move them, so pyproject.toml pins the version range these were read from and tested
with (1.0.x), and nothing else in the project touches the package: when it changes, only
this file changes.

Reading stays cheap: the data directory is found without importing the package (its
`__init__` pulls in geopy and shapely, ~0.6 s); only `legacy_parser()` pays that, lazily.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_IMPORT_LOCK = threading.Lock()


def data_dir() -> Path:
    # find_spec locates the package without executing its __init__ (which loads everything).
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("vietnamadminunits is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def data_json(name: str) -> dict[str, Any]:
    """One of the package's JSON data files (parser_from_2025.json, converter_2025.json)."""
    with open(data_dir() / name, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the package's SQLite copy of its data: much cheaper than its 2.6 MB legacy JSON
    when all we need is the old provinces' names or ward codes."""
    with closing(sqlite3.connect(f"file:{data_dir() / 'dataset.db'}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass(frozen=True)
class LegacyParser:
    parse: Any  # vietnamadminunits.parser.parse_address
    # Old province key -> district key -> {"district": name, ...}
    province_district: dict[str, dict[str, dict[str, Any]]]
    # Old province key -> district key -> ward key -> {"ward": name, "wardShort": name, ...}
    province_district_ward: dict[str, dict[str, dict[str, dict[str, Any]]]]


@cache
def legacy_parser() -> LegacyParser:
    """The pre-2025 address parser and its tables (~0.6 s on an idle machine: geopy, shapely)."""
    with _IMPORT_LOCK:
        from vietnamadminunits.parser import parse_address, parser_legacy

    return LegacyParser(
        parse_address,
        parser_legacy.DICT_PROVINCE_DISTRICT,
        parser_legacy.DICT_PROVINCE_DISTRICT_WARD_NO_ACCENTED,
    )
