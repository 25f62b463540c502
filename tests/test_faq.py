"""The FAQ answers what the circulars say, however a parent types it, and declines the rest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli_faq import render
from knowledge.faq import (
    OUT_OF_SCOPE,
    EvalCase,
    FaqDataError,
    FaqEntry,
    FaqIndex,
    FaqMatch,
    FaqResult,
    load_entries,
)
from knowledge.text import normalize_question

SEEDS = {p.name for p in (Path(__file__).resolve().parents[2] / "shared" / "seeds").glob("*.txt")} or {
    "000_5471ec6d83125a32.txt",
    "001_bc76c01ed9613e38.txt",
    "002_870a9ec1b09021c7.txt",
    "003_c91de2f7d25a64e2.txt",
    "004_5f26911e065daac4.txt",
}


@pytest.fixture(scope="module")
def faq() -> FaqIndex:
    return FaqIndex.default()


# --- the questions from the issue -------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("mã bhxh là số nào", "ma_so_bhxh_where"),
        ("ko có smartphone dk dc ko", "no_smartphone_web"),
        ("bao giờ có mật khẩu", "first_password"),
        ("quên mật khẩu vssid", "forgot_password"),
        ("tải vssid trên iphone", "install_ios"),
    ],
)
def test_parent_questions_get_the_answer_from_the_circulars(
    faq: FaqIndex, question: str, entry_id: str
) -> None:
    result = faq.ask(question)
    assert result.outcome == "answer"
    assert result.match is not None and result.match.entry.id == entry_id


def test_child_without_cccd_is_pointed_to_registration_through_the_parent(faq: FaqIndex) -> None:
    result = faq.ask("con tôi chưa có cccd thì sao")
    ids = [m.entry.id for m in ([result.match] if result.match else result.suggestions)]
    assert ids and ids[0].startswith("child_")
    assert "giấy khai sinh" in faq.get(ids[0]).answer


def test_typing_without_accents_finds_the_same_entry(faq: FaqIndex) -> None:
    with_marks = faq.ask("Mã số BHXH nằm ở đâu trên thẻ BHYT?")
    without = faq.ask("ma so bhxh nam o dau tren the bhyt")
    assert with_marks.match and without.match
    assert with_marks.match.entry.id == without.match.entry.id == "ma_so_bhxh_where"


def test_a_typo_in_a_domain_word_is_forgiven(faq: FaqIndex) -> None:
    result = faq.ask("cai vssid tren iphoen")
    assert result.best is not None and result.best.entry.id == "install_ios"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        # two letters swapped, though another known word ("bhtn") is as close by ratio
        ("mat the bhty roi", "mat the bhyt roi"),
        ("emai de lam gi", "email de lam gi"),
    ],
)
def test_typos_are_read_as_meant(faq: FaqIndex, typed: str, meant: str) -> None:
    assert faq.normalize(typed) == meant


@pytest.mark.parametrize(
    "question", ["thời tiết hà nội ngày mai", "xin visa đi Hàn Quốc", "giá vàng hôm nay", "asdfgh"]
)
def test_out_of_scope_questions_are_refused(faq: FaqIndex, question: str) -> None:
    result = faq.ask(question)
    assert result.outcome == "refuse"
    assert result.to_json() == {"question": question, "match": None, "suggestions": []}


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("đổi mật khẩu", "change_password"),  # also a subset of "đổi mật khẩu tiktok"
        ("cài vssid trên android", "install_android"),  # one word off "cài vneid"
        # Without the app's name, in a chat about VssID: not "cài tiktok", "tải zalo".
        ("cài trên iphone", "install_ios"),
        ("cài trên android", "install_android"),
        ("tải trên ch play", "install_android"),
        ("làm vssid cho con có cần giấy khai sinh không", "child_requirements"),
    ],
)
def test_a_short_question_of_ours_is_not_lost_to_a_similar_outside_topic(
    faq: FaqIndex, question: str, entry_id: str
) -> None:
    result = faq.ask(question)
    assert result.match is not None and result.match.entry.id == entry_id


@pytest.mark.parametrize("question", ["quên mật khẩu gmail", "đổi mật khẩu wifi", "làm lại giấy khai sinh"])
def test_the_same_words_about_another_service_are_refused(faq: FaqIndex, question: str) -> None:
    assert faq.ask(question).outcome == "refuse"


def test_an_ambiguous_one_word_question_offers_up_to_three_choices(faq: FaqIndex) -> None:
    result = faq.ask("mk?")
    assert result.outcome == "suggest"
    assert 2 <= len(result.suggestions) <= 3
    assert {m.entry.id for m in result.suggestions} <= {
        "first_password",
        "forgot_password",
        "change_password",
    }


def test_a_pasted_wall_of_text_is_answered_without_crashing(faq: FaqIndex) -> None:
    assert faq.ask("giá vàng sjc hôm nay tăng mạnh " * 500).outcome == "refuse"
    assert faq.ask("quên mật khẩu vssid " * 500).outcome != "refuse"


def test_empty_or_punctuation_only_input_is_refused_not_crashed(faq: FaqIndex) -> None:
    assert faq.ask("").outcome == "refuse"
    assert faq.ask("???").outcome == "refuse"


def test_json_shape_is_the_one_the_issue_fixes(faq: FaqIndex) -> None:
    answered = faq.ask("otp có mấy số").to_json()
    assert set(answered) == {"question", "match", "suggestions"}
    assert set(answered["match"]) == {"id", "score", "answer"}
    assert 0 <= answered["match"]["score"] <= 100
    suggested = faq.ask("mk?").to_json()
    assert suggested["match"] is None
    assert all(set(s) == {"id", "question", "score"} for s in suggested["suggestions"])


def test_get_unknown_id_names_it(faq: FaqIndex) -> None:
    with pytest.raises(KeyError, match="no_such_entry"):
        faq.get("no_such_entry")


# --- normalisation and the mid-form question check --------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("Ko có SĐT thì đk đc ko?", "khong co sdt thi dang ky duoc khong"),
        ("gọi 1900 9068", "goi 19009068"),
        ("Bảo hiểm xã hội số là j", "vssid la gi"),
        ("quên mk", "quen mat khau"),
        ("thẻ bảo hiểm y tế", "the bhyt"),
        ("quên mất mã số bhxh", "quen ma so bhxh"),  # lost the number, not a password
    ],
)
def test_normalize_question(typed: str, normalized: str) -> None:
    assert normalize_question(typed) == normalized


def test_phone_numbers_match_however_they_are_grouped() -> None:
    assert normalize_question("0906.090.075") == normalize_question("0906 090 075") == "0906090075"


@pytest.mark.parametrize(
    "text",
    [
        "mã bhxh là gì",
        "ko có cccd thì sao",
        "nộp ở đâu",
        "bao giờ có mk",
        "dùng hộ chiếu được không",
        "duyệt chưa",
        "ok?",
    ],
)
def test_questions_typed_mid_form_are_recognised(faq: FaqIndex, text: str) -> None:
    assert faq.looks_like_question(text)


@pytest.mark.parametrize(
    "text", ["0912345678", "Trần Văn An", "không", "có", "chưa", "12 Lê Lợi, phường Bến Nghé"]
)
def test_field_values_and_yes_no_answers_are_not_questions(faq: FaqIndex, text: str) -> None:
    assert not faq.looks_like_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "Nguyễn Thu Hà",
        "Đào Thị Mây",
        "Thôn 3, xóm Đầu",
        "Nguyễn Thị Sao",
        "Lô J, KCN Tân Tạo",
        "Lâm Thị Hả",
        "Mai Thị Gì",
        "Hồ Văn Nào",
        "Đặng Văn Hà Hà",
    ],
)
def test_names_and_addresses_with_question_words_are_not_plainly_questions(faq: FaqIndex, text: str) -> None:
    # Mid-form, only a plain question makes the bot doubt a free-text value ("Sao" and "J"
    # are "thế nào" and "gì" in teencode, not in a name or an address).
    assert not faq.plainly_a_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "lương hưu bao giờ có",
        "em muốn hỏi chút",
        "cho hoi ma so thue",
        "ok?",
        "đổi dc ko",
        "ghi thế nào",
        "giấy khai sinh mất thì sao",
        "mất thẻ rồi phải làm gì",
        "cần gì vậy",
    ],
)
def test_question_phrases_are_plainly_questions(faq: FaqIndex, text: str) -> None:
    assert faq.plainly_a_question(text)


# --- the knowledge base itself (what a reviewer relies on) ------------------------------


def test_every_entry_names_its_source_or_says_it_is_general_advice() -> None:
    for entry in load_entries():
        cited = {name for name in SEEDS if name in entry.source}
        assert cited or entry.general_advice, entry.id
        if entry.general_advice:
            assert "Lời khuyên chung" in entry.source, entry.id


def test_answers_are_plain_text_for_every_channel() -> None:
    for entry in load_entries():
        assert not re.search(r"\*\*|__|^#|^\s*[-*] |\[.+\]\(", entry.answer, re.MULTILINE), entry.id
        assert entry.answer == entry.answer.strip() and len(entry.answer) < 900, entry.id


def test_the_issue_checklist_is_covered() -> None:
    # an entry merged into another is covered by it (its id lives on among `formerly`)
    ids = {i for e in load_entries() for i in (e.id, *e.formerly)}
    required = {
        "what_is_vssid", "install_android", "install_ios", "no_smartphone_web", "what_to_prepare",
        "ma_so_bhxh_where", "ma_so_bhxh_lookup", "name_with_accents", "photo_requirements", "choose_agency",
        "email_purpose", "submit", "otp_code", "otp_not_received", "to_khai_mau_01", "first_password", "login",
        "change_password", "one_device", "card_at_clinic", "public_services", "reissue_bhyt_card",
        "reissue_so_bhxh", "pension_move", "change_benefit_payment", "child_registration",
        "id_photo_not_needed", "passport_no_cccd", "rejected", "hotline",
    }  # fmt: skip
    assert required <= ids


def test_facts_the_circulars_give_are_in_the_answers(faq: FaqIndex) -> None:
    assert "10 số cuối" in faq.get("ma_so_bhxh_where").answer
    assert "6 chữ số" in faq.get("otp_code").answer
    assert "10 ngày" in faq.get("to_khai_mau_01").answer
    assert "6 tháng" in faq.get("change_password").answer
    hotline = faq.get("hotline").answer
    for number in ("1900 9068", "3785 0110", "0255 3828919", "0243 7223968", "0906 090 075"):
        assert number in hotline


def test_broken_data_is_reported_with_the_entry_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yaml"
    bad.write_text(
        "entries:\n  - id: x\n    questions: [a]\n    answer: ''\n    source: s\n", encoding="utf-8"
    )
    with pytest.raises(FaqDataError, match=r"\(x\).*answer"):
        load_entries(bad)
    with pytest.raises(FaqDataError):
        FaqIndex.from_entries([])


def test_an_index_built_from_other_entries_answers_from_them() -> None:
    index = FaqIndex.from_entries([PARKING, HOURS])
    assert index.ask("gui xe o dau vay").match.entry.id == "parking"


PARKING = FaqEntry(
    "parking", ("Gửi xe ở đâu?", "Bãi đỗ xe ở chỗ nào?"), "Gửi xe ở tầng hầm.", "test", None, False
)
HOURS = FaqEntry("hours", ("Mở cửa mấy giờ?", "Giờ làm việc thế nào?"), "8 giờ.", "test", None, False)


def _naive_bayes(index: FaqIndex, question: str) -> dict[str, float]:
    return {index.entries[c.entry].id: c.naive_bayes for c in index.analyse(question).components}


def test_training_questions_teach_how_people_word_an_entry() -> None:
    """In the phrasings "mấy giờ" belongs to the opening hours; a labelled question teaches
    that people ask it about the car park too, and naive Bayes leans that way."""
    plain = FaqIndex.from_entries([PARKING, HOURS])
    trained = FaqIndex.from_entries(
        [PARKING, HOURS], training=[EvalCase("parking", "xe máy mấy giờ thì được vào bãi")]
    )
    question = "mấy giờ xe được vào"
    assert _naive_bayes(plain, question)["parking"] < 0.5 < _naive_bayes(trained, question)["parking"]


def test_out_of_scope_training_questions_teach_what_is_not_ours() -> None:
    question = "gửi tiền tiết kiệm ở đâu lãi cao"
    plain = FaqIndex.from_entries([PARKING, HOURS], ["thời tiết"])
    trained = FaqIndex.from_entries(
        [PARKING, HOURS],
        ["thời tiết"],
        training=[EvalCase(OUT_OF_SCOPE, "lãi suất tiết kiệm ngân hàng nào cao")],
    )
    assert trained.analyse(question).ours_log_odds < plain.analyse(question).ours_log_odds


def test_a_training_question_for_a_missing_entry_is_reported() -> None:
    with pytest.raises(FaqDataError, match="no entry 'parkng'"):
        FaqIndex.from_entries([PARKING, HOURS], training=[EvalCase("parkng", "xe để đâu")])


# --- command line -----------------------------------------------------------------------

runner = CliRunner()


def test_cli_prints_the_answer_for_a_person() -> None:
    out = runner.invoke(app, ["faq", "mã bhxh là số nào"])
    assert out.exit_code == 0
    assert "10 số cuối" in out.stdout


def test_the_installed_command_answers_one_question_as_the_command_line_app_does() -> None:
    """`vssid-bot faq "…"` (one question, the form programs call) prints what the typer app
    prints for it, answer or refusal."""
    for question in ("mã bhxh là số nào", "thời tiết hôm nay"):
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "faq", question], capture_output=True, text=True, check=True
        )
        assert done.stdout == runner.invoke(app, ["faq", question]).stdout


def test_cli_refusal_gives_the_hotline() -> None:
    out = runner.invoke(app, ["faq", "thời tiết hôm nay"])
    assert out.exit_code == 0 and "1900 9068" in out.stdout


def test_cli_refusal_names_the_close_entries_after_the_hotline(faq: FaqIndex) -> None:
    entry = faq.get("reissue_so_bhxh")
    refused = FaqResult("sổ bị mối ăn", match=None, related=(FaqMatch(entry, 60.0),))
    text = render(refused)
    assert text.index("1900 9068") < text.index(entry.questions[0])


def test_cli_json_prints_one_object() -> None:
    out = runner.invoke(app, ["faq", "--json", "bao giờ có mật khẩu"])
    obj = json.loads(out.stdout)
    assert obj["match"]["id"] == "first_password"
    assert "mật khẩu" in out.stdout  # ensure_ascii=False: Vietnamese stays readable


def test_cli_json_reads_stdin_one_object_per_line_in_order() -> None:
    questions = ["mã bhxh là số nào", "thời tiết hôm nay", "mk?"]
    out = runner.invoke(app, ["faq", "--json"], input="\n".join(questions) + "\n")
    lines = out.stdout.splitlines()
    assert [json.loads(line)["question"] for line in lines] == questions
    assert json.loads(lines[1])["match"] is None


def test_cli_without_question_or_json_explains_with_an_example() -> None:
    out = runner.invoke(app, ["faq"])
    assert out.exit_code == 2
    assert "Ví dụ" in out.output


def test_the_running_bot_loads_neither_the_fitting_code_nor_scikit_learn() -> None:
    """Evaluation and fitting live in knowledge/faq/training.py (scikit-learn is the `train`
    extra): building the assistant and answering a question must not import them."""
    probe = (
        "import sys; from bot.assistant import build_assistant; from knowledge.faq import FaqIndex; "
        "FaqIndex.default().ask('quên mật khẩu vssid'); "
        "print(sorted(m for m in sys.modules if m == 'knowledge.faq.training' or m.startswith('sklearn')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- what parents actually type (issue 18) ----------------------------------------------


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        # short questions that name our subject are answered, not listed
        ("mã bhxh", "ma_so_bhxh_where"),
        ("otp ko về", "otp_not_received"),
        ("quên pass", "forgot_password"),
        ("Mã số BHXH xem ở đâu?", "ma_so_bhxh_where"),
        ("ma so bhxh xem o dau vay", "ma_so_bhxh_where"),
        ("ma bhxh o dau", "ma_so_bhxh_where"),
        # dictated acronyms, chat English
        ("vê ét ét ai đi là cái gì thế", "what_is_vssid"),
        ("register acc vssid sao vậy ad", "start_registration"),
        # the answers that now fit this chat and 2025
        ("gửi rồi có sửa được không", "submit"),
        ("nhà trọ thì ghi địa chỉ nào", "address_field"),
        ("nộp tờ khai ở đâu", "to_khai_mau_01"),
        ("con tôi 16 tuổi có cccd rồi thì đăng ký vssid thế nào", "child_has_cccd"),
        ("con tôi 16 tuổi có cccd rồi", "child_has_cccd"),
    ],
)
def test_what_parents_type_is_answered_outright(faq: FaqIndex, question: str, entry_id: str) -> None:
    result = faq.ask(question)
    assert result.outcome == "answer", result.suggestions
    assert result.match is not None and result.match.entry.id == entry_id


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("vê ét ét ai đi", "vssid"),
        ("bê hát xê hát", "bhxh"),
        ("bê hát y tê", "bhyt"),
        ("mã ô tê pê", "otp"),
        ("căng cước", "cccd"),
        ("login", "dang nhap"),
        ("register", "dang ky"),
        ("quên pass acc", "quen mat khau tai khoan"),
        ("cty", "cong ty"),
        ("oai phai", "wifi"),
    ],
)
def test_spoken_and_english_forms_meet_ours(faq: FaqIndex, typed: str, meant: str) -> None:
    assert faq.normalize(typed) == meant


def test_two_questions_in_one_message_answer_the_first_and_offer_the_second(faq: FaqIndex) -> None:
    result = faq.ask("Quên mật khẩu vssid thì lấy lại sao? Còn đổi số điện thoại đăng ký được không")
    assert result.outcome == "answer" and result.match is not None
    assert result.match.entry.id == "forgot_password"
    assert result.see_also, "the second question's entry is offered after the answer"
    assert result.to_json()["suggestions"] == []  # the JSON shape is unchanged


def test_the_answers_say_what_to_do_in_this_chat(faq: FaqIndex) -> None:
    assert "«làm lại»" in faq.get("submit").answer  # sent is sent: start again here
    address = faq.get("address_field").answer
    assert "quận/huyện" not in address.split("Từ năm 2025")[0]  # not asked since 2025
    assert "phường/xã" in address
    assert "công ty" in faq.get("to_khai_mau_01").answer  # workers hand it to their employer
    assert "đã có CCCD" in faq.get("child_requirements").answer


def test_merged_entries_keep_their_old_ids(faq: FaqIndex) -> None:
    assert faq.get("ma_so_bhxh_lookup") is faq.get("ma_so_bhxh_where")
    assert faq.get("employee_via_employer") is faq.get("to_khai_mau_01")
    assert "«Không nhớ mã số BHXH»" in faq.get("ma_so_bhxh_lookup").answer


def test_eval_counts_either_label_of_a_two_question_message(tmp_path: Path, faq: FaqIndex) -> None:
    from knowledge.faq.training import evaluate

    cases = [
        EvalCase("hotline|forgot_password", "quên mật khẩu vssid"),
        EvalCase("employee_via_employer", "nộp tờ khai ở đâu"),  # an old id of a merged entry
        EvalCase("login|hotline", "quên mật khẩu vssid"),
    ]
    report = evaluate(faq, cases)
    assert (report.answered_correct, report.answered_wrong) == (2, 1)


def test_cli_eval_reports_each_file_and_the_pool(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("forgot_password\tquên mật khẩu vssid\nout_of_scope\tgiá vàng hôm nay\n", encoding="utf-8")
    b.write_text("otp_code|otp_not_received\totp ko về\n", encoding="utf-8")
    done = runner.invoke(app, ["faq", "--eval", "--eval-file", str(a), "--eval-file", str(b)])
    assert done.exit_code == 0, done.output
    assert "== a.tsv" in done.output and "== b.tsv" in done.output
    assert "a.tsv: 1, 100.0% / 0.0%" in done.output and "pooled: 2, 100.0% / 0.0%" in done.output
    as_json = runner.invoke(app, ["faq", "--eval", "--json", "--eval-file", str(a), "--eval-file", str(b)])
    lines = [json.loads(line) for line in as_json.output.splitlines()]
    assert [line["file"] for line in lines] == ["a.tsv", "b.tsv"]
    assert lines[1]["answered_correct"] == 1 and lines[0]["refusal_rate"] == 1.0
