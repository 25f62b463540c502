"""Vietnam's administrative units (2025 two-level: 34 provinces -> phường/xã/đặc khu),
matched fuzzily from what a parent types, plus conversion of pre-2025 addresses.

The one door the rest of the project uses; the rooms behind it:

- knowledge/units.py: the 2025 units (vietnam-provinces, GPL-3.0: every code and name we
  return comes from it), the pre-2025 provinces each absorbed, the keys names compare by;
- knowledge/unit_match.py: province and ward matching (aliases, abbreviations, typos);
- knowledge/old_address.py: pre-2025 "ward, district, province" addresses -> 2025 units;
- knowledge/vnau.py: the only reader of vietnamadminunits' (MIT) private data files and
  module globals (aliases of the 63 old provinces, the old parser, the old -> new mapping).
  We wrap its data; we never type it by hand.
"""

from __future__ import annotations

from . import old_address, unit_match
from .old_address import (
    convert_old_address,
    convert_old_address_elsewhere,
    convert_old_ward_name,
    former_districts,
    looks_like_old_address,
)
from .unit_match import example_ward, match_province, match_ward
from .units import (
    MAX_CANDIDATES,
    OldAddressConversion,
    Unit,
    UnitMatch,
    old_province_names,
    province,
    provinces,
    ward,
    wards,
)

__all__ = [
    "MAX_CANDIDATES",
    "OldAddressConversion",
    "Unit",
    "UnitMatch",
    "convert_old_address",
    "convert_old_address_elsewhere",
    "convert_old_ward_name",
    "example_ward",
    "former_districts",
    "looks_like_old_address",
    "match_province",
    "match_ward",
    "old_province_names",
    "preload",
    "province",
    "provinces",
    "ward",
    "wards",
]


def preload() -> None:
    """Load every index now (call once at start-up, e.g. in a thread) so no user waits ~0.6 s."""
    unit_match.warm_up()
    old_address.warm_up()
