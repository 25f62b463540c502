"""A child's registration goes through the parent's (the guardian's) account: the guardian is
confirmed once by an OTP to their phone (then kept a while for the next child), or, with no
account yet, registered first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialogs import payloads
from dialogs.actions import say_backend_unavailable, say_otp_failure, say_otp_sent
from dialogs.conversation import Conversation, Registry, Turn
from dialogs.messages import Button
from dialogs.ports import BackendUnavailable
from dialogs.state import ConversationState

GUARDIAN_CONFIRMATION_TTL_S = 2 * 3600  # "several children one after another" in one sitting


def guardian_confirmed(engine: Conversation, state: ConversationState) -> bool:
    guardian = state.meta.get("guardian") or {}
    confirmed_at = guardian.get("confirmed_at")
    if not confirmed_at:
        return False

    age = (engine.services.clock() - datetime.fromisoformat(confirmed_at)).total_seconds()
    return 0 <= age <= GUARDIAN_CONFIRMATION_TTL_S


async def prepare_child_registration(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    """A guardian confirmed in this sitting goes straight to the child's form, address and agency pre-filled."""
    if not guardian_confirmed(engine, state):
        return
    guardian = state.meta["guardian"]
    state.values["guardian"] = {k: guardian.get(k) for k in ("social_insurance_code", "phone")}
    for key in ("province", "ward", "street", "agency"):
        if guardian.get(key):
            state.values[key] = guardian[key]
    turn.say(engine.texts("guardian.already_confirmed", code=guardian["social_insurance_code"]))
    flow = engine.flow(state)
    assert flow is not None
    await engine.enter(state, turn, flow.step("social_insurance_code"))


async def _send_guardian_code(engine: Conversation, state: ConversationState, turn: Turn) -> Any:
    """Ask the backend to text an OTP to the guardian's registered phone; None when it is down."""
    guardian = state.values.get("guardian") or {}
    try:
        return await engine.services.backend.send_account_otp(
            guardian.get("social_insurance_code", ""), guardian.get("phone", "")
        )
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return None


async def send_guardian_otp(engine: Conversation, state: ConversationState, turn: Turn) -> bool:
    sent = await _send_guardian_code(engine, state, turn)
    if sent is None:
        return False
    if sent.sent or sent.reason == "too_soon":
        if sent.reason == "too_soon":
            turn.say(engine.texts("guardian.otp_recent", seconds=sent.retry_after_s))
        return True
    flow = engine.flow(state)
    assert flow is not None  # an action of the child flow
    if sent.reason == "unknown":
        turn.say(
            engine.texts("guardian.unknown"),
            [Button(engine.texts("guardian.register_first_button"), "childfirst:register")],
        )
        await engine.enter(state, turn, flow.step("guardian_code"))
    elif sent.reason == "phone_mismatch":
        turn.say(engine.texts("guardian.phone_mismatch"))
        state.drop_value("guardian.phone")
        await engine.ask(state, turn)
    else:
        turn.say(engine.texts("guardian.locked"))
        await engine.ask(state, turn)
    return False


async def verify_guardian_otp(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    code = state.values.pop("otp", None)
    guardian = state.values.get("guardian") or {}
    try:
        check = await engine.services.backend.verify_account_otp(
            guardian.get("social_insurance_code", ""), code or ""
        )
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return
    if not check.ok:
        await say_otp_failure(engine, state, turn, check.reason, check.attempts_left)
        return
    state.meta["guardian"] = {
        **(state.meta.get("guardian") or {}),
        "social_insurance_code": guardian["social_insurance_code"],
        # The name on the VssID account, for the child's Tờ khai (what the app itself fills in).
        "full_name": check.full_name,
        "phone": guardian["phone"],
        "confirmed_at": engine.services.clock().isoformat(timespec="seconds"),
    }
    turn.say(engine.texts("guardian.confirmed"))
    await engine.advance(state, turn)


async def resend_guardian_otp(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    sent = await _send_guardian_code(engine, state, turn)
    if sent is not None:
        await say_otp_sent(engine, state, turn, sent)


async def _register_guardian_first(
    engine: Conversation, state: ConversationState, turn: Turn, payload: payloads.Payload
) -> None:
    engine.end_flow(state)
    state.meta["after_finish"] = "child_registration"
    await engine.start_flow(state, turn, "registration")


def register(registry: Registry) -> None:
    """Hand the guardian's actions and button to the engine."""
    registry.actions.update(
        {
            "prepare_child_registration": prepare_child_registration,
            "send_guardian_otp": send_guardian_otp,
            "verify_guardian_otp": verify_guardian_otp,
            "resend_guardian_otp": resend_guardian_otp,
        }
    )
    registry.buttons[payloads.RegisterGuardianFirst] = _register_guardian_first
