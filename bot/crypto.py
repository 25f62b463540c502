"""Encryption at rest: AES-256-GCM (the `cryptography` library) under one data key.

The key is `VSSID_DATA_KEY` (32 bytes, url-safe base64) or, without it, the first line of
`data.key` in the data dir (0600), made on first start. `data.key` may hold older keys on
later lines: values they sealed still open, and `vssid-bot keys rotate` puts a new key
first and re-seals everything under it, then drops the old lines.

Sealed text is `enc1:<key id>:<base64url(nonce + ciphertext)>`; a sealed file starts with
`VSSENC1\\0`, the key id (4 bytes), the nonce and the ciphertext. The key id (the first
bytes of a hash of the key, not the key) says which key opens it. A file's associated data
is its folder and name (`<owner hash>/id_front-….jpg`, `documents/to-khai-<receipt>.pdf`):
a photo moved into another person's folder, or one declaration's PDF renamed to another's,
no longer opens. `open_file` is the one way the rest of the bot reads a stored photo or PDF
(in memory; the clear bytes never touch the disk). Plain values written
before encryption was on still read (`open_text` passes them through), and rotation
seals them.

Equality look-ups on sealed values use keyed hashes (`Keyring.digest`): HMAC-SHA256
under a key derived from the data key, so the database never holds the value itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.private import write_private

KEY_FILE = "data.key"
TEXT_PREFIX = "enc1:"
FILE_MAGIC = b"VSSENC1\0"
_NONCE = 12
_KEY_ID = 4


class _Nonces:
    """Fresh random 96-bit nonces, drawn from os.urandom a batch at a time: a getrandom call
    per sealed value cost as much as the encryption itself (every conversation save seals).
    Each nonce is handed out once: a list iterator's next is atomic, and a forked child
    draws a batch of its own (it must never hand out the parent's)."""

    BATCH = 256

    def __init__(self) -> None:
        self._batch: Iterator[bytes] = iter(())

    def take(self) -> bytes:
        nonce = next(self._batch, None)
        if nonce is None:
            pool = os.urandom(_NONCE * self.BATCH)
            self._batch = iter([pool[at : at + _NONCE] for at in range(0, len(pool), _NONCE)])
            nonce = next(self._batch)  # this batch's or another thread's: each is used once
        return nonce

    def forget(self) -> None:
        self._batch = iter(())


_nonces = _Nonces()
os.register_at_fork(after_in_child=_nonces.forget)


class DataKeyError(Exception):
    """A data key is malformed or missing for a sealed value; the message says which."""


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise DataKeyError(
            "a data key must be 32 bytes in url-safe base64 (44 characters), e.g. the output of "
            "`python -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`"
        )
    return raw


@dataclass(frozen=True)
class _Key:
    raw: bytes

    # Both made once per key: every conversation load and save seals or opens a value.
    @cached_property
    def id(self) -> bytes:
        return hashlib.sha256(b"vssid key id" + self.raw).digest()[:_KEY_ID]

    @cached_property
    def aead(self) -> AESGCM:
        return AESGCM(self.raw)


class Keyring:
    """The current key (seals) and older ones (still open)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise DataKeyError("no data key")
        self._keys = [_Key(k) for k in keys]
        self._by_id = {k.id: k for k in self._keys}
        self._current = self._keys[0]
        self._current_aead = self._current.aead
        self._text_head = f"{TEXT_PREFIX}{self._current.id.hex()}:"
        self._hash_key = hmac.new(self._current.raw, b"vssid lookup hash", hashlib.sha256).digest()

    @classmethod
    def from_texts(cls, texts: list[str]) -> Keyring:
        return cls([_decode_key(t) for t in texts if t.strip()])

    @property
    def key_count(self) -> int:
        return len(self._keys)

    # -- text values (database columns) ----------------------------------------------

    def seal_text(self, value: str) -> str:
        return self.seal_utf8(value.encode("utf-8"))

    def seal_utf8(self, value: bytes) -> str:
        """`seal_text` of a text already encoded as UTF-8 (a state's JSON as pydantic writes
        it): the same sealed text, without decoding it to encode it again."""
        nonce = _nonces.take()
        sealed = self._current_aead.encrypt(nonce, value, None)
        # base64.urlsafe_b64encode, in fewer passes (every conversation save seals its state):
        # two bytes.replace are about a third of bytes.translate's time on a state's length.
        body = binascii.b2a_base64(nonce + sealed, newline=False).replace(b"+", b"-").replace(b"/", b"_")
        return self._text_head + body.decode("ascii").rstrip("=")

    def open_text(self, value: str) -> str:
        """The plain text of a sealed value; a value that was never sealed comes back as it is."""
        if not value.startswith(TEXT_PREFIX):
            return value
        key_hex, _, body = value[len(TEXT_PREFIX) :].partition(":")
        key = self._key(bytes.fromhex(key_hex))
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return key.aead.decrypt(blob[:_NONCE], blob[_NONCE:], None).decode("utf-8")

    def is_current(self, value: str) -> bool:
        return value.startswith(self._text_head)

    # -- bytes (photos, PDFs) -------------------------------------------------------------

    def seal_bytes(self, data: bytes, aad: bytes | None = None) -> bytes:
        nonce = _nonces.take()
        return FILE_MAGIC + self._current.id + nonce + self._current_aead.encrypt(nonce, data, aad)

    def open_bytes(self, data: bytes, aad: bytes | None = None) -> bytes:
        if not data.startswith(FILE_MAGIC):
            return data
        rest = data[len(FILE_MAGIC) :]
        key = self._key(rest[:_KEY_ID])
        nonce, sealed = rest[_KEY_ID : _KEY_ID + _NONCE], rest[_KEY_ID + _NONCE :]
        return key.aead.decrypt(nonce, sealed, aad)

    def bytes_current(self, data: bytes) -> bool:
        return data.startswith(FILE_MAGIC + self._current.id)

    # -- files ---------------------------------------------------------------------------

    def write_file(self, path: Path, data: bytes) -> None:
        """Seal `data` into `path` (0600, atomically), bound to the file's folder and name."""
        write_private(Path(path), self.seal_bytes(data, file_aad(Path(path))))

    def read_file(self, path: Path) -> bytes:
        """The clear bytes of a file `write_file` made (a file never sealed comes back as it is)."""
        return self.open_bytes(Path(path).read_bytes(), file_aad(Path(path)))

    def __reduce__(self) -> tuple:
        # The photo store seals in worker processes (bot.cpu): the keys travel with it.
        return (Keyring, ([k.raw for k in self._keys],))

    # -- look-ups --------------------------------------------------------------------------

    def digest(self, value: str) -> str:
        """A keyed hash of `value` for equality look-ups (hex; the same value, the same digest)."""
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def _key(self, key_id: bytes) -> _Key:
        key = self._by_id.get(key_id)
        if key is None:
            raise DataKeyError(
                f"no data key with id {key_id.hex()}: the value was sealed under a key that is "
                "neither VSSID_DATA_KEY nor a line of data.key"
            )
        return key


def file_aad(path: Path) -> bytes:
    """What a sealed file is bound to: its folder (an owner's hash, `documents`) and name."""
    return f"vssid-file:{path.parent.name}/{path.name}".encode()


class SealedFileError(OSError):
    """A sealed file that cannot be opened (wrong key, moved, altered). An OSError, so callers
    that already handle a missing file (skip it, 404) handle this the same way."""


_FILE_KEYRINGS: dict[Path, Keyring] = {}


def use_for_files(data_dir: Path, keyring: Keyring) -> None:
    """Let `open_file` open files sealed under `data_dir` with `keyring` (the assistant's)."""
    _FILE_KEYRINGS[Path(data_dir).resolve()] = keyring


def _keyrings_for_file(path: Path) -> list[Keyring]:
    """The assistant's keyring for a file under its data dir, then the data dir's own keys
    (the nearest folder above holding `data.key`: also right after a rotation), then
    VSSID_DATA_KEY."""
    env_key = os.environ.get("VSSID_DATA_KEY", "")
    found: list[Keyring] = []
    for parent in path.resolve().parents:
        if parent in _FILE_KEYRINGS:
            found.append(_FILE_KEYRINGS[parent])
        if key_file(parent).is_file():
            return [*found, load_keyring(parent, env_key)]
    return [*found, Keyring.from_texts([env_key])] if env_key else found


def open_file(path: Path | str) -> bytes:
    """The clear bytes of a stored photo or PDF, read into memory (never written out in clear).

    Channels call this to send or serve a file; a file that was never sealed (written by a
    test, or before encryption) comes back as it is. Raises OSError when it is missing and
    `SealedFileError` (an OSError) when it cannot be opened.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(FILE_MAGIC):
        return data
    failure = "no data key above it nor VSSID_DATA_KEY"
    for keyring in _keyrings_for_file(path):
        try:
            return keyring.open_bytes(data, file_aad(path))
        except DataKeyError:
            failure = "sealed under another data key"
        except (InvalidTag, ValueError):
            failure = "altered, or moved from where it was sealed"
            break
    raise SealedFileError(f"{path.name} cannot be opened: {failure}")


def key_file(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE


def load_keyring(data_dir: Path, env_key: str = "") -> Keyring:
    """VSSID_DATA_KEY (plus older keys kept in data.key), else data.key, made on first use."""
    path = key_file(data_dir)
    saved = path.read_text(encoding="utf-8").split() if path.exists() else []
    if env_key:
        texts = [env_key, *(t for t in saved if t != env_key.strip())]
        return Keyring.from_texts(texts)
    if not saved:
        saved = [_create_key_file(path)]
    return Keyring.from_texts(saved)


def _create_key_file(path: Path) -> str:
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return path.read_text(encoding="utf-8").split()[0]
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


def write_key_file(data_dir: Path, texts: list[str]) -> None:
    write_private(key_file(data_dir), ("\n".join(texts) + "\n").encode())


def keyring_beside(path: Path) -> Keyring:
    """The keyring of the data dir holding `path` (VSSID_DATA_KEY from the environment first).

    For stores that are opened by path alone (outboxes, the stub's store): the same keys as
    the assistant's when they live in its data dir.
    """
    return load_keyring(Path(path).parent, os.environ.get("VSSID_DATA_KEY", ""))


def ephemeral_keyring() -> Keyring:
    """A key that lives as long as the process (in-memory stores)."""
    return Keyring([secrets.token_bytes(32)])
