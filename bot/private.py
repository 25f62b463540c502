"""Files only the bot's own user can read: the data dir is 0700 and everything in it 0600.

Everything under the data dir is personal data or a secret (databases, photos of ID
cards, declaration PDFs, keys, outboxes). Files are created 0600 from the start (no window
where another local user could open them), and `secure_tree` tightens what someone else
created — an operator's `mkdir`, an older version, a copied backup — at every start.
SQLite gives its -wal and -shm files the mode of the database file, so creating the
database file 0600 before SQLite opens it (`private_file`) covers all three.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) 0700; an existing directory is tightened to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if it does not exist; an existing file is tightened to 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def private_sqlite(url: str) -> None:
    """Create a SQLite URL's database file 0600 before SQLite does (its WAL/SHM follow its mode)."""
    if not url.startswith("sqlite"):
        return
    database = url.split(":///", 1)[1] if ":///" in url else ""
    database = database.split("?", 1)[0]
    if database and database != ":memory:":
        path = Path(database).expanduser()
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            sibling = path.with_name(path.name + suffix)
            if sibling.exists():
                private_file(sibling)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically; the file is 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def secret_file(path: Path, make: int = 32) -> bytes:
    """The bytes kept in `path`, created once with `make` random bytes (0600) when it is missing.

    Two processes starting together agree: the file is created with O_EXCL and the loser
    reads the winner's.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        private_file(path)
        return path.read_bytes()
    value = secrets.token_bytes(make)
    with os.fdopen(fd, "wb") as out:
        out.write(value)
    return value


def secure_tree(root: Path) -> int:
    """Make `root` and every directory under it 0700 and every file 0600; how many modes changed.

    Symbolic links are left alone (never followed): chmod through one could reach outside.
    """
    changed = 0
    private_dir(root)
    for directory, dirs, files in os.walk(root):
        for name, mode in [(d, DIR_MODE) for d in dirs] + [(f, FILE_MODE) for f in files]:
            path = Path(directory) / name
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile (a temp file)
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
                    continue
                path.chmod(mode)
                changed += 1
    return changed
