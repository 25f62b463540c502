"""A FAQ result as plain text for a person (channels and terminals render no Markdown).

Kept apart from the command line (bot/cli_faq.py) so that `vssid-bot faq "question"`, the
form programs call once per question, answers without importing typer (a tenth of its start).
"""

from __future__ import annotations

import sys

from knowledge.faq import FaqMatch, FaqResult, message


def render(result: FaqResult) -> str:
    """Plain text for a person: channels and terminals render no Markdown."""
    if result.match is not None:
        entry = result.match.entry
        text = entry.answer
        if entry.general_advice:
            text += "\n" + message("general_advice")
        return text
    if result.suggestions:
        return _numbered(message("suggest"), result.suggestions)
    if result.related:
        return message("refuse") + "\n" + _numbered(message("related"), result.related)
    return message("refuse")


def _numbered(title: str, matches: tuple[FaqMatch, ...]) -> str:
    return "\n".join([title, *(f"{i}. {m.entry.questions[0]}" for i, m in enumerate(matches, 1))])


def print_answer(question: str) -> None:
    """The answer to one question on stdout, as `vssid-bot faq "question"` prints it."""
    from bot.faq_cache import faq_index

    sys.stdout.write(render(faq_index().ask(question)) + "\n")
    sys.stdout.flush()
