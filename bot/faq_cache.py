"""The FAQ index built once and kept on disk, so a fresh process answers in milliseconds.

Building `FaqIndex.default()` parses the knowledge files and fits its tables: seconds of
work that gives the same index every time until a knowledge file (data or code) changes.
The built index is pickled under the cache dir, named by the SHA-256 of every file of the
`knowledge` package and the Python version; any change gives a new name, so a stale index
is never read (old files are removed when a new one is written).

Cache dir: `VSSID_CACHE_DIR`, else `$XDG_CACHE_HOME/vssid-bot`, else `~/.cache/vssid-bot`;
created 0700, files 0600 (a pickle is code to whoever can write it: only this user can).
When it cannot be read or written, the index is simply built as before.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import logging
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import knowledge
from bot.private import private_dir, write_private

log = logging.getLogger(__name__)

KNOWLEDGE_DIR = Path(knowledge.__file__).resolve().parent
_SUFFIXES = {".py", ".yaml", ".yml", ".tsv", ".json", ".csv", ".txt"}


def cache_dir() -> Path:
    explicit = os.environ.get("VSSID_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vssid-bot"


def knowledge_hash() -> str:
    """SHA-256 over the knowledge package's files (names and bytes) and the Python version."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(KNOWLEDGE_DIR.rglob("*")):
        if path.suffix in _SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(KNOWLEDGE_DIR).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def faq_index(*, save_in_background: bool = False) -> Any:
    """`FaqIndex.default()`, read from the disk cache when the knowledge files are unchanged.

    A freshly built index is written before returning, or with `save_in_background` by a
    daemon thread (a server's warm-up: its start and shutdown never wait for the write,
    which is atomic, so an interrupted one leaves no half file)."""
    from knowledge.faq import FaqIndex

    try:
        directory = cache_dir()
        target = directory / f"faq-index-{knowledge_hash()}.pickle"
        with target.open("rb") as fh:
            # Our own file in a 0700 cache dir, named by the hash of the knowledge files: not input.
            index = pickle.load(fh)  # noqa: S301 - see above
        if isinstance(index, FaqIndex):
            return index
    except FileNotFoundError:
        pass
    except Exception as exc:  # unreadable or from another version: build it again
        log.info("FAQ index cache not used: %s", type(exc).__name__)
    index = FaqIndex.default()
    if save_in_background:
        threading.Thread(target=_save, args=(index,), name="faq-cache", daemon=True).start()
    else:
        _save(index)
    return index


def _save(index: Any) -> None:
    try:
        directory = private_dir(cache_dir())
        target = directory / f"faq-index-{knowledge_hash()}.pickle"
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(index)
        write_private(target, buffer.getvalue())
        for old in directory.glob("faq-index-*.pickle"):
            if old != target:
                old.unlink(missing_ok=True)
    except Exception as exc:
        log.info("FAQ index cache not written: %s", type(exc).__name__)


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
