"""The engine's words (dialogs/texts.yaml) and the label helpers every template may call.

Reading and rendering is dialogs.catalog's (the one loader); this module registers the
helpers and names the engine's own catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialogs.catalog import Catalog, catalog, holds, register, render

__all__ = ["Catalog", "Texts", "default_texts", "holds", "render"]

HERE = Path(__file__).parent


def _label(key: str) -> Any:
    return default_texts().raw(f"labels.{key}")


def id_kind_label(kind: Any) -> str:
    return (
        str(_label("id_kinds").get(str(kind)) or _label("id_kind_unknown"))
        if kind
        else _label("id_kind_unknown")
    )


def agency_label(agency: Any) -> str:
    if not isinstance(agency, dict) or not agency.get("code"):
        return str(_label("agency_unknown"))
    if agency.get("label"):  # the directory's own label (offices without an official code show no code)
        return agency["label"]
    return f"[{agency['code']}] {agency.get('name', '')}".strip()


def relationship_label(value: Any) -> str:
    return str(_label("relationships").get(str(value), str(value or "")))


def _agency_examples(values: Any) -> str:
    """What to type at the agency step, from the user's own province (flows' prompts)."""
    from dialogs.address_fields import agency_examples

    return agency_examples(values if isinstance(values, dict) else {})


def vn_date(value: Any) -> str:
    """'2015-09-03' -> '03/09/2015', as Vietnamese forms write dates; anything else as is."""
    text = str(value or "")
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4:
        return f"{parts[2]}/{parts[1]}/{parts[0]}"
    return text


register(
    globals={
        "id_kind_label": id_kind_label,
        "agency_label": agency_label,
        "relationship_label": relationship_label,
        "agency_examples": _agency_examples,
    },
    filters={"vn_date": vn_date},
)


class Texts(Catalog):
    """The engine's phrases: one catalog among the others (dialogs.catalog reads them all)."""

    @staticmethod
    def default() -> Catalog:
        return default_texts()


def default_texts() -> Catalog:
    """dialogs/texts.yaml: everything the engine itself says."""
    return catalog(HERE / "texts.yaml")
