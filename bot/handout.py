"""Clear copies of a sealed PDF for the local terminal user (`vssid-bot chat`).

Every stored PDF is sealed (bot/crypto.py), but the terminal's JSON-lines contract hands
out a path other programs open (`"document": "<path>"`). So the terminal gets a clear copy:
`<data dir>/handouts/<keyed hash of the conversation>/to-khai-<receipt>.pdf`, 0600 in the
0700 data dir (the same local user who runs the bot and holds the key can read it; nobody
else can). A copy is made only when a reply carries the PDF, is replaced by the next one,
and goes with the conversation (/delete), with the declaration's retention purge, and at
`vssid-bot keys rotate` (the sealed original stays; asking /status again makes a new copy).
A copy outlives the `chat` process on purpose: a program that reads the output after the
process has ended (the usual `subprocess.run`) must still find the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.crypto import Keyring, open_file
from bot.private import private_dir, write_private

HANDOUTS_DIR = "handouts"


def handouts_root(data_dir: Path) -> Path:
    return Path(data_dir) / HANDOUTS_DIR


def _conversation_dir(data_dir: Path, keyring: Keyring, conversation_id: str) -> Path:
    # A keyed hash: the folder name says nothing about whose conversation it is.
    return handouts_root(data_dir) / keyring.digest("handout:" + conversation_id)[:32]


def hand_out(data_dir: Path, keyring: Keyring, conversation_id: str, sealed: Path) -> Path:
    """A clear 0600 copy of the sealed file `sealed` for this conversation's terminal user."""
    directory = private_dir(_conversation_dir(data_dir, keyring, conversation_id))
    copy = directory / Path(sealed).name
    write_private(copy, open_file(sealed))
    return copy


def forget_conversation(data_dir: Path, keyring: Keyring, conversation_id: str) -> int:
    """/delete: the conversation's clear copies go. Returns how many files were removed."""
    directory = _conversation_dir(data_dir, keyring, conversation_id)
    if not directory.is_dir():
        return 0
    count = sum(1 for p in directory.iterdir() if p.is_file())
    shutil.rmtree(directory)
    return count


def forget_document(data_dir: Path, name: str) -> int:
    """Retention: every clear copy of one declaration's PDF (by its file name)."""
    root = handouts_root(data_dir)
    if not root.is_dir():
        return 0
    copies = [p for p in root.glob(f"*/{name}") if p.is_file()]
    for copy in copies:
        copy.unlink(missing_ok=True)
    return len(copies)


def forget_all(data_dir: Path) -> None:
    """Key rotation: the copies are named under the old key's hash; the originals stay sealed."""
    shutil.rmtree(handouts_root(data_dir), ignore_errors=True)
