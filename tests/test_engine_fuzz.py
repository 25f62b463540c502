"""Whatever a user types at whatever step: no crash, a reply, and nothing already entered is lost."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backend.stub import StubBackend
from bot.documents import PdfDocumentRenderer
from bot.photos import FilePhotoStore
from dialogs.engine import Engine, Services
from dialogs.messages import Inbound
from dialogs.state import ConversationState
from tests.chat_harness import CITIZEN, document_jpeg, portrait_jpeg

_ROOT = Path(tempfile.mkdtemp(prefix="vssid-fuzz-"))
_LOOP = asyncio.new_event_loop()


def _engine() -> Engine:
    return Engine(
        Services(
            backend=StubBackend(f"sqlite:///{_ROOT / 'stub.sqlite3'}"),
            photos=FilePhotoStore(_ROOT / "uploads"),
            documents=PdfDocumentRenderer(_ROOT / "documents"),
        )
    )


ENGINE = _engine()


def _script() -> list[Inbound]:
    answers = [
        Inbound("t", "u", text="/start"),
        Inbound("t", "u", button="flow:registration"),
        *(
            Inbound("t", "u", text=CITIZEN[k])
            for k in ("social_insurance_code", "full_name", "id_number", "phone")
        ),
        Inbound("t", "u", text=CITIZEN["province"]),
        Inbound("t", "u", text=CITIZEN["ward"]),
        Inbound("t", "u", text=CITIZEN["street"]),
        Inbound("t", "u", photo=portrait_jpeg()),
        Inbound("t", "u", photo=document_jpeg()),
        Inbound("t", "u", photo=document_jpeg()),
        Inbound("t", "u", text=CITIZEN["agency"]),
        Inbound("t", "u", button="skip"),
        Inbound("t", "u", button="summary:ok"),
    ]
    return answers


def _snapshots() -> list[ConversationState]:
    """The conversation state at every step of a registration, up to the commitment."""
    state = ConversationState()
    snapshots = []
    for inbound in _script():
        state, _ = _LOOP.run_until_complete(ENGINE.handle(state, inbound))
        snapshots.append(state.model_copy(deep=True))
    assert snapshots[-1].step == "commitment"
    return snapshots


SNAPSHOTS = _snapshots()


def _kept(before: ConversationState, after: ConversationState) -> list[str]:
    """Fields entered before the message that are gone or changed after it (except the one being asked)."""
    step = ENGINE.flows["registration"].step(before.step) if before.step else None
    allowed = (
        {step.field.split(".")[0], *(d.split(".")[0] for d in step.invalidates)}
        if step and step.field
        else set()
    )
    if after.pending is not None:
        return []  # a confirmation is being asked; nothing was dropped yet
    lost = []
    for key, value in before.values.items():
        if key.startswith("_") or key in allowed:
            continue
        if after.values.get(key) != value:
            lost.append(key)
    return lost


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0, max_value=len(SNAPSHOTS) - 1), text=st.text(max_size=120))
def test_arbitrary_text_at_any_step_never_crashes_or_loses_a_field(index, text):
    before = SNAPSHOTS[index].model_copy(deep=True)
    after, replies = _LOOP.run_until_complete(
        ENGINE.handle(before.model_copy(deep=True), Inbound("t", "u", text=text))
    )
    assert replies, "the user always gets an answer"
    assert all(r.text or r.buttons for r in replies)
    assert _kept(before, after) == []


@settings(max_examples=60, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(SNAPSHOTS) - 1), payload=st.text(max_size=40))
def test_arbitrary_button_payloads_never_crash(index, payload):
    before = SNAPSHOTS[index].model_copy(deep=True)
    after, replies = _LOOP.run_until_complete(
        ENGINE.handle(before.model_copy(deep=True), Inbound("t", "u", button=payload))
    )
    assert replies
    assert _kept(before, after) == []


@pytest.mark.parametrize("typed", ["¹", "٣", "2"])
def test_a_number_typed_for_a_list_of_choices_is_read_or_explained(typed):
    """ "¹" and "٣" count as digits to str.isdigit() but not to int(): no crash, an answer."""
    index = next(i for i, s in enumerate(SNAPSHOTS) if s.step == "agency")
    state, replies = _LOOP.run_until_complete(
        ENGINE.handle(SNAPSHOTS[index].model_copy(deep=True), Inbound("t", "u", text="Quận"))
    )
    assert state.pending is not None and state.pending.type == "choices" and replies
    after, replies = _LOOP.run_until_complete(ENGINE.handle(state, Inbound("t", "u", text=typed)))
    assert replies and all(r.text for r in replies)
    if typed == "2":  # the second choice was taken and the form moved on
        assert after.values["agency"] and after.step != "agency"
