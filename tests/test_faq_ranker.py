"""The FAQ matcher's learned parts: the vectoriser and naive Bayes match scikit-learn's, the
committed weights are what fitting on the tuning sets gives, and decide() follows the
re-ranker's order and the scope model's refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

from knowledge.faq import FAQ_PATH, Candidate, FaqIndex, load_anchors, load_entries, load_out_of_scope
from knowledge.faq import models as faq_ranker
from knowledge.faq.models import (
    FEATURES,
    NB_ALPHA,
    RANKER_PATH,
    SCOPE_FEATURES,
    NaiveBayes,
    Ranker,
    Scope,
    TfidfSpace,
)

QUESTIONS = [
    "con toi chua co can cuoc thi dang ky vssid the nao",
    "quen mat khau",
    "o",  # one letter: shorter than every n-gram
    "xyzzy qwerty",  # nothing the base knows
    "ma so bao hiem xa hoi o dau tren the bao hiem y te",
]
# Questions between near-synonym entries (made up here, not from the evaluation sets).
CLOSE_CALLS = {
    "dang nhap vssid bang gi": "login",
    "lam the nao de doi mat khau": "change_password",
    "con can giay to gi de dk": "child_requirements",
    "can chuan bi gi de dang ky": "what_to_prepare",
    "tra cuu ma so bhxh": "ma_so_bhxh_lookup",
    "ma so bhxh nam o dau": "ma_so_bhxh_where",
}


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    return FaqIndex.default()


def _sklearn_vectorisers(texts: list[str]) -> list[TfidfVectorizer]:
    return [
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit(texts),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+").fit(
            texts
        ),
    ]


@pytest.mark.parametrize("question", QUESTIONS)
def test_vectors_are_scikit_learns(index: FaqIndex, question: str) -> None:
    texts = index.tables.texts
    space = TfidfSpace(texts)
    ids, weights = space.vector(question)
    ours = np.zeros(space.size)
    ours[ids] = weights
    theirs = np.concatenate([v.transform([question]).toarray()[0] for v in _sklearn_vectorisers(texts)])
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


@pytest.mark.parametrize("table", ["dense", "sorted keys"])
def test_naive_bayes_ranks_as_scikit_learns(index: FaqIndex, table: str, monkeypatch) -> None:
    """Both ways of looking features up agree with scikit-learn: the dense table small bases
    get and the sorted keys of big ones."""
    monkeypatch.setattr(faq_ranker, "DENSE_CELLS", 10**12 if table == "dense" else 0)
    real = int(index.tables.text_start[len(index)])
    texts = index.tables.texts
    vectorisers = _sklearn_vectorisers(texts)
    rows = np.hstack([v.transform(texts[:real]).toarray() for v in vectorisers])
    owners = np.repeat(np.arange(len(index)), np.diff(index.tables.text_start[: len(index) + 1]))
    model = MultinomialNB(alpha=NB_ALPHA).fit(rows, owners)
    space = TfidfSpace(texts)
    bayes = NaiveBayes(space, [space.vector(t) for t in texts[:real]], owners, len(index))
    assert (bayes._dense is not None) == (table == "dense")
    everyone = list(range(len(index)))
    for question in QUESTIONS:
        x = np.hstack([v.transform([question]).toarray() for v in vectorisers])
        theirs = model.predict_joint_log_proba(x)[0]
        ours = bayes.log_likelihoods(space.vector(question), everyone)
        # equal up to one constant shared by all entries (the words no entry has)
        np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-6)


def test_committed_weights_are_a_fresh_fit_on_the_tuning_sets(tmp_path: Path) -> None:
    out = tmp_path / "ranker.json"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "faq", "--fit-ranker", "--ranker-file", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "saved to" in done.stdout
    fresh, committed = (json.loads(p.read_text(encoding="utf-8")) for p in (out, RANKER_PATH))
    assert fresh["trained_on"] == [
        "tests/data/faq_eval.tsv",
        "tests/data/faq_heldout.tsv",
        "tests/data/faq_tune2.tsv",
    ]
    for model in ("ranker", "scope"):
        # lbfgs stops at a tolerance: refits agree to about 1e-4 of a weight
        np.testing.assert_allclose(
            fresh[model]["coefficients"], committed[model]["coefficients"], rtol=1e-3, atol=1e-3
        )
        assert fresh[model]["intercept"] == pytest.approx(committed[model]["intercept"], abs=1e-3)
    assert committed["scope"]["features"] == list(SCOPE_FEATURES)


def test_the_ranker_decides_which_of_close_entries_is_first(index: FaqIndex) -> None:
    """Every non-refused question's first entry is the ranker's favourite among the candidates."""
    for question in [*QUESTIONS, *CLOSE_CALLS]:
        analysis = index.analyse(question)
        result = index.decide(question, analysis)
        if result.best is None:
            continue
        real, rows = index.ranker_inputs(analysis)
        logits = index.ranker.logits(rows)
        assert result.best.entry is index.entries[real[int(np.argmax(logits))]]


@pytest.mark.parametrize(("question", "expected"), CLOSE_CALLS.items())
def test_close_calls_are_answered_with_the_right_entry(index: FaqIndex, question: str, expected: str) -> None:
    result = index.ask(question)
    # index.get: an entry merged into another answers under the other's id
    assert result.outcome == "answer" and result.match.entry is index.get(expected)


def test_no_outright_answer_when_the_ranker_disagrees_with_the_scores() -> None:
    """A ranker preferring the least similar candidate moves it first and turns the
    answer into suggestions: the wiring, not the committed weights, is under test."""
    contrary = Ranker([-1.0 if f == "fuzzy" else 0.0 for f in Ranker.features], 0.0)
    index = FaqIndex(
        load_entries(FAQ_PATH), load_out_of_scope(FAQ_PATH), load_anchors(FAQ_PATH), ranker=contrary
    )
    result = index.ask("dang nhap vssid bang gi")
    assert result.outcome == "suggest"
    assert result.suggestions[0].entry.id != "login"
    assert len(result.suggestions) <= 3


# A scope model that finds every question foreign (probability ~ e^-50).
NEVER_OURS = Scope([0.0] * len(SCOPE_FEATURES), -50.0)


def _index_with(scope: Scope) -> FaqIndex:
    return FaqIndex(load_entries(FAQ_PATH), load_out_of_scope(FAQ_PATH), load_anchors(FAQ_PATH), scope=scope)


def test_the_scope_model_refuses_what_it_judges_foreign() -> None:
    """A scope model that finds every question foreign refuses even a plain question of
    ours; a permissive one leaves the rules alone: the wiring, not the weights."""
    question = "ma so bhxh nam o dau"
    assert _index_with(Scope.permissive()).ask(question).outcome == "answer"
    assert _index_with(NEVER_OURS).ask(question).outcome == "refuse"


def test_the_ranker_reads_the_candidates_scores_in_its_features_order() -> None:
    assert Candidate._fields[1:] == FEATURES


def test_weights_saved_for_other_features_are_refused_not_misread() -> None:
    saved = Ranker.neutral().to_json()
    saved["features"] = list(reversed(saved["features"]))
    with pytest.raises(ValueError, match="refit"):
        Ranker.from_json(saved)


@pytest.mark.parametrize("question", ["dk vssid", "đăng ký vssid", "lam tai khoan vssid"])
def test_a_short_question_in_an_entrys_own_words_reaches_it(index: FaqIndex, question: str) -> None:
    """Many entries hold every word of "đăng ký vssid"; the one with a phrasing of just
    those words must be a candidate, and its phrasing match is then complete."""
    assert index.ask(question).best.entry.id == "start_registration"
    position = index.entries.index(index.get("start_registration"))
    (candidate,) = [c for c in index.analyse(question).components if c.entry == position]
    assert candidate.phrasing_match == pytest.approx(1.0)


def test_a_question_the_scope_model_refuses_keeps_its_close_entries_aside() -> None:
    """Refused is refused (no match, no suggestions: the JSON and the evaluation see a
    refusal), but the entries that scored as suggestions would are kept for a person to
    pick; questions refused by the rules keep none."""
    never_ours = _index_with(NEVER_OURS)
    result = never_ours.ask("ma so bhxh nam o dau")
    assert result.outcome == "refuse"
    assert result.to_json()["match"] is None and result.to_json()["suggestions"] == []
    assert result.related[0].entry.id == "ma_so_bhxh_where"
    for foreign in ("quên mật khẩu facebook", "thời tiết hà nội hôm nay"):
        assert never_ours.ask(foreign).related == ()


@pytest.mark.parametrize(
    "question",
    [
        # other subjects in our words (made up here; the first is close to a tuning question)
        "rut bhxh mot lan can nhung giay to gi",
        "quen mat khau ung dung so lien lac cua truong",
        "cong ty khong dong bhxh cho toi thi kien o dau",
    ],
)
def test_questions_in_our_words_about_other_subjects_are_refused(index: FaqIndex, question: str) -> None:
    assert index.ask(question).outcome == "refuse"
