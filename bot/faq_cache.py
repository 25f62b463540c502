"""The FAQ index built once and kept on disk, so a fresh process answers in milliseconds.

Building `FaqIndex.default()` parses the knowledge files and fits its tables: seconds of
work that gives the same index every time until a knowledge file (data or code) changes.
The built index is pickled in the cache dir (bot/disk_cache.py), named by the SHA-256 of
every file of the `knowledge` package and the Python version; any change gives a new name,
so a stale index is never read (old files are removed when a new one is written). When it
cannot be read or written, the index is simply built as before.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import threading
from pathlib import Path
from typing import Any

import knowledge
from bot import disk_cache
from bot.disk_cache import cache_dir

__all__ = ["cache_dir", "faq_index", "knowledge_hash"]

KNOWLEDGE_DIR = Path(knowledge.__file__).resolve().parent


def knowledge_hash() -> str:
    """SHA-256 over the knowledge package's files (names and bytes) and the Python version."""
    return disk_cache.files_hash(KNOWLEDGE_DIR)


def faq_index(*, save_in_background: bool = False) -> Any:
    """`FaqIndex.default()`, read from the disk cache when the knowledge files are unchanged.

    A freshly built index is written before returning, or with `save_in_background` by a
    daemon thread (a server's warm-up: its start and shutdown never wait for the write,
    which is atomic, so an interrupted one leaves no half file)."""
    from knowledge.faq import FaqIndex

    key = knowledge_hash()
    index = disk_cache.read("faq-index", key)
    if isinstance(index, FaqIndex):
        return index
    index = FaqIndex.default()
    if save_in_background:
        threading.Thread(target=_save, args=(key, index), name="faq-cache", daemon=True).start()
    else:
        _save(key, index)
    return index


def _save(key: str, index: Any) -> None:
    disk_cache.write("faq-index", key, index, pickler=_Pickler)


class _Pickler(pickle.Pickler):
    """Pickles methods memoised per instance (`functools.lru_cache(...)(self.method)`) as the
    method and its cache size: the cache itself starts empty again when read back."""

    def reducer_override(self, obj: Any) -> Any:
        wrapped = getattr(obj, "__wrapped__", None)
        if isinstance(obj, functools._lru_cache_wrapper) and inspect.ismethod(wrapped):
            return _cached_method, (wrapped, obj.cache_parameters()["maxsize"])
        return NotImplemented


def _cached_method(method: Any, maxsize: int | None) -> Any:
    return functools.lru_cache(maxsize=maxsize)(method)
