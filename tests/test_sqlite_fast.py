"""SQLite's driver path: the saves of one event-loop turn share a transaction without a
savepoint each, so a refused or failed save must undo exactly its own writes (or, when that
cannot be known, fail the whole turn rather than commit half a save)."""

from __future__ import annotations

import sqlite3

import pytest

from bot.sqlite_fast import SqliteFastPath, TurnLost
from bot.storage import ConversationStore, SaveResult
from dialogs.state import ConversationState


@pytest.fixture
def stores(tmp_path):
    """The store under test and another process's view of the same file."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    store, other_process = ConversationStore(url), ConversationStore(url)
    for user in "abc":
        assert (
            store.save(f"t:{user}", "t", user, ConversationState(step="start"), 0, "m0") is SaveResult.SAVED
        )
    yield store, other_process
    store.close()
    other_process.close()


# A message id kept in the conversation's row, and one marked in seen_message (too long for the row).
IN_ROW, IN_TABLE = "m1", "m1" + "x" * 100


def _save(store, user, step, version, message_id):
    return store.save(
        f"t:{user}", "t", user, ConversationState(step=step), version, message_id, defer_commit=True
    )


def _steps(store):
    return {user: store.load(f"t:{user}") for user in "abc"}


@pytest.mark.parametrize("m1", [IN_ROW, IN_TABLE])
def test_refused_saves_amid_a_turn_undo_their_own_marks_and_keep_the_others(stores, m1):
    store, other_process = stores
    assert _save(store, "a", "one", 1, m1) is SaveResult.SAVED
    assert _save(store, "b", "stale", 7, m1) is SaveResult.CONFLICT  # its mark taken back
    assert _save(store, "a", "again", 2, m1) is SaveResult.DUPLICATE  # the turn's own mark stays
    assert _save(store, "c", "exists", 0, m1) is SaveResult.CONFLICT  # created already
    assert _save(store, "b", "two", 1, m1) is SaveResult.SAVED  # the refused mark is gone
    store.commit_pending()
    assert _steps(other_process) == {
        "a": (ConversationState(step="one"), 2),
        "b": (ConversationState(step="two"), 2),
        "c": (ConversationState(step="start"), 1),
    }
    assert not other_process.seen("t:c", m1)
    assert other_process.seen("t:a", m1) and other_process.seen("t:b", m1)


@pytest.mark.parametrize("m1", [IN_ROW, IN_TABLE])
def test_a_save_failing_in_sqlite_midway_undoes_itself_and_keeps_the_turns_other_saves(stores, m1):
    store, other_process = stores
    fast = store._fast
    assert isinstance(fast, SqliteFastPath)
    fast.connection.execute(  # the conversation's write fails after its message id was marked
        "CREATE TEMP TRIGGER fail BEFORE UPDATE ON conversation WHEN NEW.id = 't:b' "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    assert _save(store, "a", "one", 1, m1) is SaveResult.SAVED
    with pytest.raises(sqlite3.Error, match="disk trouble"):
        _save(store, "b", "one", 1, m1)
    assert _save(store, "c", "one", 1, m1) is SaveResult.SAVED
    store.commit_pending()
    assert {user: state.step for user, (state, _) in _steps(other_process).items()} == {
        "a": "one",
        "b": "start",
        "c": "one",
    }
    assert not other_process.seen("t:b", m1)  # a redelivery runs it again
    fast.connection.execute("DROP TRIGGER fail")
    assert _save(store, "b", "one", 1, m1) is SaveResult.SAVED
    store.commit_pending()
    assert other_process.load("t:b") == (ConversationState(step="one"), 2)


@pytest.mark.parametrize("m1", [IN_ROW, IN_TABLE])
def test_a_save_interrupted_midway_fails_the_whole_turn_and_leaves_the_store_usable(stores, monkeypatch, m1):
    store, other_process = stores
    write = SqliteFastPath._write

    def interrupted(db, values, expected_version):
        write(db, values, expected_version)  # written, but nobody can tell
        if values["b_id"] == "t:b":
            raise KeyboardInterrupt
        return SaveResult.SAVED

    monkeypatch.setattr(store._fast, "_write", interrupted)
    assert _save(store, "a", "one", 1, m1) is SaveResult.SAVED
    with pytest.raises(KeyboardInterrupt):
        _save(store, "b", "one", 1, m1)
    assert _save(store, "c", "one", 1, m1) is SaveResult.SAVED
    assert store.has_pending_commit
    with pytest.raises(TurnLost):  # nobody of this turn may be told their answer is saved
        store.commit_pending()
    assert not store.has_pending_commit
    nothing_changed = {user: (ConversationState(step="start"), 1) for user in "abc"}
    assert _steps(other_process) == nothing_changed
    assert not any(other_process.seen(f"t:{user}", m1) for user in "abc")
    assert _steps(store) == nothing_changed
    # The next turn runs as usual.
    assert _save(store, "a", "one", 1, m1) is SaveResult.SAVED
    store.commit_pending()
    assert other_process.load("t:a") == (ConversationState(step="one"), 2)


def _fill_the_row(store, user) -> int:
    """Answer ids "f01", "f02"… until the row's marks (m0's first) leave no room for one more:
    the next save moves them all to seen_message. Returns the conversation's version."""
    from bot.seen_marks import SEEN_ROW_CHARS
    from bot.sqlite_fast import sqlite_time

    line = len(f"{sqlite_time(0)}\tf01\n")
    fits = (SEEN_ROW_CHARS - len(f"{sqlite_time(0)}\tm0\n")) // line
    for version in range(1, fits + 1):
        assert _save(store, user, "full", version, f"f{version:02d}") is SaveResult.SAVED
    return fits + 1


def test_marks_failing_to_move_to_seen_message_fail_the_whole_turn(stores):
    store, other_process = stores
    full = _fill_the_row(store, "b")
    store.commit_pending()
    store._fast.connection.execute(
        "CREATE TEMP TRIGGER fail BEFORE INSERT ON seen_message WHEN NEW.key = 't:b#m0' "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    with pytest.raises(sqlite3.Error, match="disk trouble"):  # its row was written already
        _save(store, "b", "moved", full, "new")
    with pytest.raises(TurnLost):
        store.commit_pending()
    assert _steps(other_process)["a"] == (ConversationState(step="start"), 1)
    assert _steps(other_process)["b"] == (ConversationState(step="full"), full)
    assert not other_process.seen("t:b", "new") and other_process.seen("t:b", "m0")
    store._fast.connection.execute("DROP TRIGGER fail")
    assert _save(store, "b", "moved", full, "new") is SaveResult.SAVED
    store.commit_pending()
    answered = ["m0", *(f"f{version:02d}" for version in range(1, full)), "new"]
    assert all(other_process.seen("t:b", message_id) for message_id in answered)


def test_a_failure_with_no_other_save_in_the_turn_frees_the_database(stores, monkeypatch):
    store, other_process = stores
    monkeypatch.setattr(store._fast, "_write", lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        _save(store, "a", "one", 1, "m1")
    assert not store.has_pending_commit
    store.commit_pending()  # nothing was lost but the failed save itself
    assert other_process.save("t:a", "t", "a", ConversationState(step="w"), 1, "m2") is SaveResult.SAVED


def test_row_times_are_written_as_sqlalchemy_writes_a_datetime():
    import random
    from datetime import UTC, datetime, timedelta

    from bot.sqlite_fast import sqlite_time

    epoch = datetime(1970, 1, 1)
    moments = [0, 999_999, 1_000_000, 1_765_000_000_999_999, 1_765_000_001_000_000]
    moments += [random.randrange(0, 4_000_000_000_000_000) for _ in range(2000)]
    moments += [moments[-1] + step for step in range(0, 3_000_000, 997)]  # seconds in a row, cached
    for micros in moments:
        expected = (epoch + timedelta(microseconds=micros)).replace(tzinfo=UTC)
        assert sqlite_time(micros) == expected.replace(tzinfo=None).isoformat(" ", "microseconds"), micros


def test_a_saved_rows_times_read_back_through_sqlalchemy(stores):
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from bot.schema import ConversationRow, SeenMessage

    store, other_process = stores
    before = datetime.now(UTC)
    # Its marks fill the row, then move to seen_message with the next save.
    full = _fill_the_row(store, "a")
    assert _save(store, "a", "one", full, "new") is SaveResult.SAVED
    store.commit_pending()
    after = datetime.now(UTC)
    with Session(other_process.engine) as session:
        row = session.get(ConversationRow, "t:a")
        moved = session.get(SeenMessage, f"t:a#f{full - 1:02d}").at
    assert before <= moved <= row.updated_at == row.seen_since <= after
    assert after - before < timedelta(seconds=5)
