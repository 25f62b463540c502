"""What start-up builds from the project's own files, built once and kept on disk.

The FAQ index (bot/faq_cache.py), the validated flows (`flows` below) and what the large
YAML files parse to (`parsed_yaml`, knowledge/yamlfile.py's keeper once `keep_parsed_yaml`
ran) are the same every time until a file they are built from changes. Each is pickled
under the cache dir, named by a SHA-256 of those files (names and bytes) and the versions of
Python and pydantic; any change gives a new name, so a stale one is never read (older files
of the same kind are removed when a new one is written). The PDF fonts cut down
(bot/documents.py) are kept under its `fonts/`, named the same way.

Cache dir: `VSSID_CACHE_DIR`, else `$XDG_CACHE_HOME/vssid-bot`, else `~/.cache/vssid-bot`;
created 0700, files 0600 (a pickle is code to whoever can write it: only this user can).
When it cannot be read or written, things are simply built as before.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.private import private_dir, write_private

if TYPE_CHECKING:
    from dialogs.flow import Flow

log = logging.getLogger(__name__)

_SUFFIXES = {".py", ".yaml", ".yml", ".tsv", ".json", ".csv", ".txt"}


def cache_dir() -> Path:
    explicit = os.environ.get("VSSID_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vssid-bot"


def files_hash(root: Path, *versions: str) -> str:
    """SHA-256 over the files under `root` (names and bytes), the Python version and `versions`."""
    digest = hashlib.sha256(sys.version.encode())
    for version in versions:
        digest.update(version.encode() + b"\0")
    for path in sorted(root.rglob("*")):
        if path.suffix in _SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def read(kind: str, key: str) -> Any:
    """What `write(kind, key, …)` kept, or None (never written, unreadable, another version)."""
    try:
        with (cache_dir() / f"{kind}-{key}.pickle").open("rb") as fh:
            # Our own file in a 0700 cache dir, named by the hash of its inputs: not input.
            return pickle.load(fh)  # noqa: S301 - see above
    except FileNotFoundError:
        return None
    except Exception as exc:  # unreadable or from another version: built again
        log.info("%s cache not used: %s", kind, type(exc).__name__)
        return None


def write(kind: str, key: str, value: Any, pickler: Callable[..., pickle.Pickler] = pickle.Pickler) -> None:
    """Keep `value` as `kind` for `key` (atomically), removing older files of the same kind."""
    try:
        directory = private_dir(cache_dir())
        target = directory / f"{kind}-{key}.pickle"
        buffer = io.BytesIO()
        pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        write_private(target, buffer.getvalue())
        for old in directory.glob(f"{kind}-*.pickle"):
            if old != target:
                old.unlink(missing_ok=True)
    except Exception as exc:
        log.info("%s cache not written: %s", kind, type(exc).__name__)


@functools.cache
def flows() -> dict[str, Flow]:
    """`dialogs.flow.load_flows()`: the flow files read and validated (about a tenth of a second
    of a terminal chat's start), or their pickle when no file of `dialogs` changed since; once
    per process, like `load_flows`."""
    import pydantic

    import dialogs
    from dialogs.flow import load_flows

    key = files_hash(Path(dialogs.__file__).resolve().parent, pydantic.VERSION)
    found = read("flows", key)
    if isinstance(found, dict):
        return found
    built = load_flows()
    write("flows", key, built)
    return built


def parsed_yaml(name: str, text: str, parse: Callable[[str], Any]) -> Any:
    """`parse(text)`, or what it gave for the same text of the file `name` before."""
    kind = "yaml-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    key = hashlib.sha256(sys.version.encode() + b"\0" + text.encode()).hexdigest()[:32]
    found = read(kind, key)
    if found is not None:
        return found
    value = parse(text)
    write(kind, key, value)
    return value


def keep_parsed_yaml() -> None:
    """The catalogs and faq.yaml read back from the cache dir from now on in this process (the
    command line's choice: tests and library users parse them as before)."""
    from knowledge import yamlfile

    yamlfile.keeper = parsed_yaml
