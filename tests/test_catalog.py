"""Every sentence a user reads lives in the YAML text catalogs, never as a literal in .py."""

from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "dialogs", "knowledge")
# Files whose Vietnamese literals have not moved to a catalog yet: none left. The list only
# shrinks (a clean file listed here fails the test too), so it stays empty.
NOT_YET: set[str] = set()


def _vietnamese(text: str) -> bool:
    """A letter with a Vietnamese mark (or đ/Đ): ASCII letters and symbols such as «» or — are not."""
    for ch in text:
        if ch in "đĐ":
            return True
        if ord(ch) > 127 and unicodedata.category(ch).startswith("L"):
            decomposed = unicodedata.normalize("NFD", ch)
            if len(decomposed) > 1 and decomposed[0].isascii():
                return True
    return False


def _literals(path: Path) -> list[tuple[int, str]]:
    """String literals with Vietnamese letters, docstrings (any bare string statement) excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bare = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in bare
        and _vietnamese(node.value)
    ]


def test_no_vietnamese_string_literal_in_product_code():
    found, clean_but_listed = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            literals = _literals(path)
            if name in NOT_YET:
                if not literals:
                    clean_but_listed.append(name)
                continue
            found += [f"{name}:{line}: {text[:60]!r}" for line, text in literals]
    assert not found, "Vietnamese literals (move them to a YAML text catalog):\n" + "\n".join(found)
    assert not clean_but_listed, f"no Vietnamese literal left: remove from NOT_YET: {clean_but_listed}"


def test_the_check_sees_a_vietnamese_literal_and_not_a_docstring(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text('"""Mô tả."""\n\nX = "Xin chào"\nY = "plain «ascii» — ok"\n', encoding="utf-8")
    assert [text for _, text in _literals(source)] == ["Xin chào"]
