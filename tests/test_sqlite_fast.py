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


def _save(store, user, step, version, message_id):
    return store.save(
        f"t:{user}", "t", user, ConversationState(step=step), version, message_id, defer_commit=True
    )


def _steps(store):
    return {user: store.load(f"t:{user}") for user in "abc"}


def test_refused_saves_amid_a_turn_undo_their_own_marks_and_keep_the_others(stores):
    store, other_process = stores
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    assert _save(store, "b", "stale", 7, "m1") is SaveResult.CONFLICT  # its mark taken back
    assert _save(store, "a", "again", 2, "m1") is SaveResult.DUPLICATE  # the turn's own mark stays
    assert _save(store, "c", "exists", 0, "m1") is SaveResult.CONFLICT  # created already
    assert _save(store, "b", "two", 1, "m1") is SaveResult.SAVED  # the refused mark is gone
    store.commit_pending()
    assert _steps(other_process) == {
        "a": (ConversationState(step="one"), 2),
        "b": (ConversationState(step="two"), 2),
        "c": (ConversationState(step="start"), 1),
    }
    assert not other_process.seen("t:c", "m1")
    assert other_process.seen("t:a", "m1") and other_process.seen("t:b", "m1")


def test_a_save_failing_in_sqlite_midway_undoes_itself_and_keeps_the_turns_other_saves(stores):
    store, other_process = stores
    fast = store._fast
    assert isinstance(fast, SqliteFastPath)
    fast.connection.execute(  # the conversation's write fails after its message id was marked
        "CREATE TEMP TRIGGER fail BEFORE UPDATE ON conversation WHEN NEW.id = 't:b' "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    with pytest.raises(sqlite3.Error, match="disk trouble"):
        _save(store, "b", "one", 1, "m1")
    assert _save(store, "c", "one", 1, "m1") is SaveResult.SAVED
    store.commit_pending()
    assert {user: state.step for user, (state, _) in _steps(other_process).items()} == {
        "a": "one",
        "b": "start",
        "c": "one",
    }
    assert not other_process.seen("t:b", "m1")  # a redelivery runs it again
    fast.connection.execute("DROP TRIGGER fail")
    assert _save(store, "b", "one", 1, "m1") is SaveResult.SAVED
    store.commit_pending()
    assert other_process.load("t:b") == (ConversationState(step="one"), 2)


def test_a_save_interrupted_midway_fails_the_whole_turn_and_leaves_the_store_usable(stores, monkeypatch):
    store, other_process = stores
    write = SqliteFastPath._write

    def interrupted(db, values, expected_version):
        write(db, values, expected_version)  # written, but nobody can tell
        if values["b_id"] == "t:b":
            raise KeyboardInterrupt
        return SaveResult.SAVED

    monkeypatch.setattr(store._fast, "_write", interrupted)
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    with pytest.raises(KeyboardInterrupt):
        _save(store, "b", "one", 1, "m1")
    assert _save(store, "c", "one", 1, "m1") is SaveResult.SAVED
    assert store.has_pending_commit
    with pytest.raises(TurnLost):  # nobody of this turn may be told their answer is saved
        store.commit_pending()
    assert not store.has_pending_commit
    nothing_changed = {user: (ConversationState(step="start"), 1) for user in "abc"}
    assert _steps(other_process) == nothing_changed
    assert not any(other_process.seen(f"t:{user}", "m1") for user in "abc")
    assert _steps(store) == nothing_changed
    # The next turn runs as usual.
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    store.commit_pending()
    assert other_process.load("t:a") == (ConversationState(step="one"), 2)


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
    assert _save(store, "a", "one", 1, "m1") is SaveResult.SAVED
    store.commit_pending()
    after = datetime.now(UTC)
    with Session(other_process.engine) as session:
        updated = session.get(ConversationRow, "t:a").updated_at
        marked = session.get(SeenMessage, "t:a#m1").at
    assert before <= updated == marked <= after
    assert after - before < timedelta(seconds=5)
