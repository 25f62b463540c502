"""Side effects the flows name (`action:`, `after:`, `on_start:`) and the commands outside flows.

Each action is `async (engine, state, turn) -> None`: it talks to the ports the engine
was given and then decides where the conversation goes. Actions never log personal data.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from dialogs import payloads
from dialogs.conversation import Conversation, Registry, Turn
from dialogs.messages import Button
from dialogs.ports import Address, BackendUnavailable, Declaration, paper_deadline
from dialogs.state import ConversationState, Pending, PendingType
from dialogs.texts import Texts, agency_label, render

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- small helpers


START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_start_payload(payload: str) -> dict[str, str]:
    """`/start school_THCS-LeLoi` -> referral; `/start h-<token>` -> hotline handoff. Invalid -> nothing.

    Telegram deep links allow 64 characters of A-Za-z0-9_-; other channels pass the same.
    """
    payload = (payload or "").strip()
    if not payload or not START_PAYLOAD.match(payload):
        return {}
    if payload.startswith(("h-", "handoff-")):
        return {"handoff": payload.split("-", 1)[1]}
    if payload.startswith(("school_", "s-", "ref-", "ref_")):
        code = re.split(r"[-_]", payload, maxsplit=1)[1]
        label = Texts.default()("referral_label_school", code=code)
        return {"referral": code, "referral_label": label, "school": code}
    return {"referral": payload, "referral_label": Texts.default()("referral_label", code=payload)}


def drop_field(state: ConversationState, path: str) -> None:
    old = state.get_value(path)
    state.drop_value(path)
    for file in files_in(old):
        forget_file(file)


def files_in(value: Any) -> list[str]:
    if isinstance(value, str) and value.endswith(".jpg"):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in files_in(v)]
    return []


def forget_file(path: str) -> None:
    """Delete a stored photo that the user replaced or abandoned (photos are personal data)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        log.warning("could not delete a replaced upload")


async def discard_flow_uploads(engine: Conversation, state: ConversationState) -> None:
    submitted = {p for d in state.meta.get("declarations", []) for p in d.get("photos", [])}
    # The form's photos, and the ID-front photo of a card read but not yet used (dialogs/cardfill.py).
    for file in files_in({"photos": state.values.get("photos"), "card": state.flags.card_proposal}):
        if file not in submitted:
            forget_file(file)


def build_declaration(engine: Conversation, state: ConversationState) -> Declaration:
    v = state.values
    flow = engine.flow(state)
    identity = v.get("id") or {}
    guardian = state.meta.get("guardian") or {}
    kind = flow.kind if flow and flow.kind else "individual"
    return Declaration(
        kind=kind,
        social_insurance_code=v["social_insurance_code"],
        full_name=v["full_name"],
        id_kind=identity.get("kind"),
        id_number=identity.get("number"),
        phone=cast(str, v.get("phone") or guardian.get("phone")),
        email=v.get("email") or (guardian.get("email") if kind == "child" else None),
        address=Address(
            province_code=v["province"]["code"],
            province=v["province"]["name"],
            ward_code=v["ward"]["code"],
            ward=v["ward"]["name"],
            street=v["street"],
        ),
        agency_code=v["agency"]["code"],
        photos=dict(v.get("photos") or {}),
        date_of_birth=v.get("date_of_birth"),
        relationship=v.get("relationship"),
        guardian_social_insurance_code=guardian.get("social_insurance_code") if kind == "child" else None,
        guardian_full_name=guardian.get("full_name") if kind == "child" else None,
        school=state.meta.get("school"),
    )


async def say_backend_unavailable(engine: Conversation, turn: Turn) -> None:
    turn.say(engine.texts("backend_unavailable"), [Button(engine.texts("retry"), "retry")])


# ---------------------------------------------------------------- registration


async def show_agency(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    """Like the app's Bước 5 screen: the chosen office with its phone and address when known."""
    from dialogs.address_fields import describe_agency

    agency = state.values.get("agency")
    if agency:
        turn.say(describe_agency(agency))


async def check_id_verification(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    """004 (Bước 3): no ID photos when the citizen is verified against the national population database."""
    identity = state.values.get("id") or {}
    try:
        verified = await engine.services.backend.id_verified(identity.get("number", ""))
    except BackendUnavailable:
        verified = False  # ask for the photos: always acceptable to the office
    state.flags.id_verified = verified
    if verified:
        for kind in ("id_front", "id_back", "passport"):
            drop_field(state, f"photos.{kind}")
        turn.say(engine.texts("id_verified"))


async def look_up_social_insurance_code(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    """The app's «tra cứu mã số BHXH» (002, Phụ lục 01 mục 4.1): name, date of birth and
    province give the code. The three steps before this one in the flow ask them (a flow
    says whose: the citizen's, a child's). Found: the code is filled in and the flow goes on
    (`next`); not found: back to typing it (`on_no`), with the look-up a button away."""
    flow = engine.flow(state)
    step = engine.step(state)
    assert flow is not None and step is not None
    position = flow.index[step.id]
    name_step, born_step, province_step = flow.steps[position - 3 : position]
    name = state.get_value(name_step.field_path)
    born = date.fromisoformat(state.get_value(born_step.field_path))
    province = state.get_value(province_step.field_path)
    try:
        code = await engine.services.backend.lookup_social_insurance_code(name, born, int(province["code"]))
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return
    if code is None:
        # A code an earlier look-up filled in belongs to someone else's name and date now.
        if state.get_value("social_insurance_code") == state.flags.looked_up_code:
            drop_field(state, "social_insurance_code")
        turn.say(
            engine.texts(
                "code_lookup.not_found",
                name=name,
                born=born.strftime("%d/%m/%Y"),
                province=province.get("name", ""),
            )
        )
        assert step.on_no is not None  # the flow's look-up step says where "not found" goes
        await engine.enter(state, turn, flow.step(step.on_no))
        return
    state.set_value("social_insurance_code", code)
    state.flags.looked_up_code = code
    turn.say(engine.texts("code_lookup.found", name=name, code=code))
    await engine.advance(state, turn)


async def submit_declaration(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    declaration = build_declaration(engine, state)
    key = f"{state.run_id}:{state.flow}"
    # From the first attempt the key stands for this content: a reply lost in an outage may
    # mean the office has it, and a changed form sent again would get the first one back.
    state.flags.submit_attempted = True
    try:
        submission = await engine.services.backend.submit(declaration, idempotency_key=key)
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return
    state.flags.receipt = submission.receipt
    # The declaration is with the office now: going "back" must not reopen the form.
    state.history = []
    await engine.advance(state, turn)


async def verify_declaration_otp(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    code = state.values.pop("otp", None)
    receipt = state.flags.receipt or ""
    try:
        check = await engine.services.backend.verify_declaration_otp(receipt, code or "")
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return
    if check.ok:
        await engine.advance(state, turn)
        return
    await say_otp_failure(engine, state, turn, check.reason, check.attempts_left)


async def say_otp_failure(
    engine: Conversation, state: ConversationState, turn: Turn, reason: str, left: int
) -> None:
    key = reason if reason in ("wrong", "expired", "locked") else "none"
    turn.say(engine.texts(f"otp.{key}", left=left))
    await engine.ask(state, turn)


async def resend_declaration_otp(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    try:
        sent = await engine.services.backend.send_declaration_otp(state.flags.receipt or "")
    except BackendUnavailable:
        await say_backend_unavailable(engine, turn)
        return
    await say_otp_sent(engine, state, turn, sent)


async def say_otp_sent(engine: Conversation, state: ConversationState, turn: Turn, sent: Any) -> None:
    if sent.sent:
        turn.say(engine.texts("otp.sent", phone=sent.phone_masked or "").replace("  ", " "))
    elif sent.reason == "too_soon":
        turn.say(engine.texts("otp.too_soon", seconds=sent.retry_after_s))
    else:
        turn.say(engine.texts("otp.not_sent"))
    await engine.ask(state, turn)


async def finish_declaration(engine: Conversation, state: ConversationState, turn: Turn) -> None:
    """The result screen: receipt, the Tờ khai PDF, and what to do within 10 days."""
    step = engine.step(state)
    declaration = build_declaration(engine, state)
    receipt = state.flags.receipt or ""
    agency = dict(state.values.get("agency") or {})
    document = None
    try:
        document = await engine.services.documents.declaration_pdf(receipt, declaration, agency)
    except Exception:  # the declaration is submitted whatever happens to the PDF
        log.exception("rendering the declaration PDF failed")
    _remember(engine, state, declaration, agency, document)
    state.flags.paper_deadline = paper_deadline(engine.services.clock())
    text = (
        render(step.prompt, **engine.context(state))
        if step and step.prompt
        else engine.texts("receipt_only", receipt=receipt)
    )
    after = state.meta.pop("after_finish", None)
    engine.end_flow(state)
    turn.say(text, document=document)
    if after and after in engine.flows:
        await engine.start_flow(state, turn, after)
        return
    turn.say(engine.texts("menu_prompt"), _buttons_after(engine, state, declaration))


def _remember(
    engine: Conversation, state: ConversationState, declaration: Declaration, agency: dict, document: Any
) -> None:
    """What outlives the flow: the declaration's record (status, /mydata) and, for one's own
    registration confirmed by the OTP just now, the guardian a child's registration starts from."""
    now = engine.services.clock().isoformat(timespec="seconds")
    record = {
        "receipt": state.flags.receipt or "",
        "kind": declaration.kind,
        "full_name": declaration.full_name,
        "agency": agency,
        "phone": declaration.phone,
        "submitted_at": now,
        "document": str(document) if document else None,
        "photos": list(declaration.photos.values()),
    }
    state.meta.setdefault("declarations", []).append(record)
    if declaration.kind == "individual":
        state.meta["guardian"] = {
            "social_insurance_code": declaration.social_insurance_code,
            "full_name": declaration.full_name,
            "phone": declaration.phone,
            "email": declaration.email,
            "province": state.values.get("province"),
            "ward": state.values.get("ward"),
            "street": state.values.get("street"),
            "agency": agency,
            "confirmed_at": now,
        }


def _buttons_after(engine: Conversation, state: ConversationState, declaration: Declaration) -> list[Button]:
    buttons = engine.menu_buttons()
    if not state.meta.get("reminders_stopped"):
        buttons.append(Button(engine.texts("notices.no_reminder_button"), "reminders:stop"))
    if declaration.kind == "child":
        buttons.insert(0, Button(engine.texts("another_child_button"), "flow:child_registration"))
    return buttons


# ---------------------------------------------------------------- commands outside flows

STATUSES = ("awaiting_otp", "received", "approved", "rejected")


async def show_status(engine: Conversation, state: ConversationState, turn: Turn, arg: str) -> None:
    records = state.meta.get("declarations", [])
    if not records:
        turn.say(engine.texts("status.nothing"), engine.menu_buttons())
        return
    lines = [engine.texts("status.header")]
    for record in records:
        try:
            status = await engine.services.backend.status(record["receipt"])
        except BackendUnavailable:
            status = None
        name = status.status if status else None
        label = engine.texts(f"status.{name if name in STATUSES else 'unknown'}")
        line = engine.texts(
            "status.line", receipt=record["receipt"], name=record.get("full_name", ""), label=label
        )
        if status and status.reason:
            line += "\n  " + engine.texts("status.reason", reason=status.reason)
        if name == "received" and record.get("submitted_at"):
            submitted = datetime.fromisoformat(record["submitted_at"])
            line += "\n  " + engine.texts("status.paper_deadline", deadline=paper_deadline(submitted))
        agency = record.get("agency") or {}
        line += "\n  " + engine.texts(
            "status.agency",
            agency=agency_label(agency),
            address=agency.get("address"),
            phone=agency.get("phone"),
        )
        lines.append(line)
    turn.say("\n".join(lines), engine.menu_buttons())
    if engine.step(state) is not None:
        await engine.ask(state, turn, prefix=engine.texts("faq_then_continue"))


async def _answer_card_number(
    engine: Conversation, state: ConversationState, turn: Turn, pending: Pending, yes: bool
) -> None:
    """The CCCD's own QR disagreed with the typed number: take the card's number if the user says so."""
    if yes:
        state.values["id"] = {"kind": "cccd", "number": pending.value}
        turn.say(engine.texts("card_number_fixed", number=pending.value))
        await check_id_verification(engine, state, turn)
    await engine.advance(state, turn)


async def _stop_reminders(engine: Conversation, state: ConversationState, turn: Turn, arg: str) -> None:
    """`reminders:stop`: the user does not want the paper-form reminder."""
    state.meta["reminders_stopped"] = True
    turn.say(engine.texts("notices.reminders_stopped"))
    if engine.step(state) is not None:
        await engine.ask(state, turn, prefix=engine.texts("faq_then_continue"))


async def _reminders_button(
    engine: Conversation, state: ConversationState, turn: Turn, payload: payloads.Payload
) -> None:
    await _stop_reminders(engine, state, turn, "")


def register(registry: Registry) -> None:
    """Hand every action, command, button and yes/no answer of this module to the engine."""
    registry.actions.update(
        {
            "show_agency": show_agency,
            "check_id_verification": check_id_verification,
            "look_up_social_insurance_code": look_up_social_insurance_code,
            "submit_declaration": submit_declaration,
            "verify_declaration_otp": verify_declaration_otp,
            "resend_declaration_otp": resend_declaration_otp,
            "finish_declaration": finish_declaration,
        }
    )
    registry.commands.update(
        {
            "status": show_status,
            "stopreminders": _stop_reminders,
        }
    )
    registry.buttons[payloads.Reminders] = _reminders_button
    registry.confirms[PendingType.CARD_NUMBER] = _answer_card_number
