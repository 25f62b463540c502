"""Back-pressure as a waiting line: told "busy", a message goes in by turns, not by luck."""

from __future__ import annotations

from bot.channels.busy import LINE_FRONT, WaitingLine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_newcomer_queues_behind_the_parents_already_told_to_wait_even_once_there_is_room():
    line = WaitingLine(gone_after_s=10, clock=Clock())
    assert line.refuse(("a", "m1"), full=True)
    assert line.refuse(("b", "m1"), full=True)
    # The queue has room again, but a and b were first: c waits behind them.
    assert line.refuse(("c", "m1"), full=False)
    assert not line.refuse(("a", "m1"), full=False)
    assert not line.refuse(("b", "m1"), full=False)
    assert not line.refuse(("c", "m1"), full=False)
    assert not line.refuse(("d", "m1"), full=False)  # nobody waits: straight in


def test_a_message_without_an_id_goes_in_only_when_nobody_waits_and_there_is_room():
    line = WaitingLine(gone_after_s=10, clock=Clock())
    assert not line.refuse(None, full=False)
    assert line.refuse(None, full=True)
    assert len(line) == 0  # it cannot hold a place
    assert line.refuse(("a", "m1"), full=True)
    assert line.refuse(None, full=False)  # a waits: no slipping in ahead of it
    assert not line.refuse(("a", "m1"), full=False)
    assert not line.refuse(None, full=False)


def test_while_the_queue_is_full_nobody_goes_in_and_then_the_front_of_the_line_goes_first():
    line = WaitingLine(gone_after_s=10, clock=Clock())
    parents = [(f"p{n}", "m1") for n in range(LINE_FRONT + 5)]
    for parent in parents:
        assert line.refuse(parent, full=True)
    assert all(line.refuse(parent, full=True) for parent in parents)  # full: all wait
    last = parents[-1]
    assert line.refuse(last, full=False)  # room, but the back of the line waits its turn
    assert not line.refuse(parents[0], full=False)  # the front goes in


def test_a_parent_who_stopped_asking_gives_up_their_place():
    clock = Clock()
    line = WaitingLine(gone_after_s=10, clock=clock)
    assert line.refuse(("closed-tab", "m1"), full=True)
    clock.now = 5
    assert line.refuse(("b", "m1"), full=True)
    clock.now = 11  # the first never came back; b did not wait that long yet
    assert len(line) == 2
    assert not line.refuse(("b", "m1"), full=False)
    assert len(line) == 0
