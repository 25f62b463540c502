"""The checks the office makes when it decides on a received declaration.

The stub accepts any well-formed declaration and only checks it at approval, like the real
portal: the mã số BHXH and name against the people it knows, no second account, the ID and
date of birth when it knows them, and for a child a guardian with an account and an age
under 18.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from sqlmodel import Session

from bot.backend.people import ADULT_AGE, SeedPerson, age, digits
from bot.backend.store import AccountRow, account_key
from dialogs.ports import Declaration
from knowledge.text import fold

# texts.yaml's `reasons` entry for a key, filled with the parameters.
Reason = Callable[..., str]


def approval_problem(
    s: Session, decl: Declaration, today: date, people: Mapping[str, SeedPerson], reason: Reason
) -> str | None:
    """The reason to refuse the file, or None."""
    code = decl.social_insurance_code
    person = people.get(code)
    account = s.get(AccountRow, account_key(s, code))
    if person is not None:
        known_name = person.full_name
    elif account is not None:
        known_name = account.full_name
    else:
        return reason("unknown_code", code=code)
    if fold(decl.full_name) != fold(known_name):
        return reason("name_mismatch", code=code)
    if account is not None:
        return reason("already_has_account", code=code)
    if person is not None:
        if decl.id_number and person.id_number and digits(decl.id_number) != person.id_number:
            return reason("id_mismatch", code=code)
        if decl.date_of_birth and decl.date_of_birth != person.date_of_birth:
            return reason("dob_mismatch", code=code)
    if decl.kind == "child":
        return _child_problem(s, decl, today, person, reason)
    return None


def _child_problem(
    s: Session, decl: Declaration, today: date, person: SeedPerson | None, reason: Reason
) -> str | None:
    guardian = decl.guardian_social_insurance_code or ""
    if not guardian or s.get(AccountRow, account_key(s, guardian)) is None:
        return reason("guardian_without_account", code=guardian or "?")
    born = decl.date_of_birth or (person.date_of_birth if person else None)
    if born is not None and age(born, today) >= ADULT_AGE:
        return reason("child_not_minor")
    return None
