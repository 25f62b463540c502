"""The BHXH office directory: the circulars' offices, search as users type, operator CSVs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knowledge import admin_units
from knowledge.agencies import DEFAULT_CSV, AgencyCsvError, AgencyDirectory
from knowledge.text import collapse_spaces

SEEDS = Path("/work/shared/seeds")
HEADER = "code,name,phone,address,province_code,parent_code,source\n"


@pytest.fixture
def directory() -> AgencyDirectory:
    return AgencyDirectory.from_csv(DEFAULT_CSV)


@pytest.mark.parametrize(
    ("code", "name", "phone", "province"),
    [
        ("079", "BHXH TP. Hồ Chí Minh", "(028) 39.979.039", 79),
        ("07919", "BHXH Quận 7", "(028) 37850110 - 37850108", 79),
        ("00131", "BHXH Quận Bắc Từ Liêm", "024.32242059", 1),
        ("001", "BHXH TP. Hà Nội", "0243.7223968", 1),
        ("051", "BHXH tỉnh Quảng Ngãi", "0255.3828919 - 0255.3603235", 51),
        ("031", "BHXH TP. Hải Phòng", "", 31),
    ],
)
def test_offices_named_in_the_circulars(directory, code, name, phone, province):
    agency = directory.get(code)
    assert agency is not None
    assert (agency.name, agency.phone, agency.province_code) == (name, phone, province)


def test_hcm_district_offices_listed_in_the_circular_are_all_there(directory):
    for code in ["07901", "07902", "07903", "07905", "07906", "07907", "07908", "07909"]:
        assert directory.get(code) is not None, code
    for code in ["07911", "07912", "07913", "07914", "07915", "07916", "07917", "07919"]:
        assert directory.get(code) is not None, code
    hong_bang = directory.search("hong bang")[0]
    assert hong_bang.province_code == 31 and hong_bang.parent_code == "031"


def test_every_2025_province_has_its_office(directory):
    for province in admin_units.provinces():
        office = directory.get(f"{province.code:03d}")
        assert office is not None, province.name
        assert directory.for_province(province.code)[0] == office


def _seed_text(name: str) -> str:
    return collapse_spaces((SEEDS / name).read_text(encoding="utf-8"))


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the circulars are not on this machine")
def test_phones_and_addresses_are_copied_from_the_cited_circular_never_invented(directory):
    for agency in directory:
        seed = agency.source.split(" ")[0]
        if agency.phone or agency.address:
            assert seed.endswith(".txt"), agency.code
            text = _seed_text(seed)
            for number in re.split(r"\s+-\s+", agency.phone) if agency.phone else []:
                assert number in text, (agency.code, number)
            if agency.address:
                assert agency.address in text, agency.code


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("quan 7", "07919"),
        ("quận 7", "07919"),
        ("q7", "07919"),
        ("Q.7", "07919"),
        ("07919", "07919"),
        ("[07919]", "07919"),
        ("bhxh quan 7", "07919"),
        ("bao hiem xa hoi quan 11", "07913"),
        ("quan 1", "07901"),
        ("hong bang", "031-hong-bang"),
        ("Hồng Bàng", "031-hong-bang"),
        ("hong bag", "031-hong-bang"),
        ("bac tu liem", "00131"),
        ("quan bac tu lim", "00131"),
        ("thu duc", "07903"),
        ("079", "079"),
        ("hcm", "079"),
        ("sai gon", "079"),
        ("ha noi", "001"),
    ],
)
def test_search_as_users_type(directory, typed, first):
    found = directory.search(typed)
    assert found, typed
    assert found[0].code == first
    assert len(found) <= 6


def test_quan_1_does_not_find_quan_12(directory):
    assert [a.code for a in directory.search("quan 1")] == ["07901"]


@pytest.mark.parametrize("typed", ["", "xyz", "quan", "bhxh", "quan 99"])
def test_search_finds_nothing_for_vague_or_unknown_text(directory, typed):
    assert directory.search(typed) == []


def test_labels(directory):
    assert directory.label(directory.get("07919")) == "[07919] BHXH Quận 7"
    # No source prints Hồng Bàng's code: users never see the local one as if official.
    assert directory.label(directory.get("031-hong-bang")) == "BHXH Quận Hồng Bàng"


def test_for_province_puts_the_province_office_first_then_district_offices(directory):
    codes = [a.code for a in directory.for_province(79)]
    assert codes[0] == "079"
    assert codes[1:17] == sorted(codes[1:17]) and all(c.startswith("079") for c in codes[1:17])
    assert codes[-1] == "077"  # the former Bà Rịa - Vũng Tàu office, now in Hồ Chí Minh


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agencies.csv"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (",BHXH X,,,79,,", "line 3: code is empty"),
        ("7919,BHXH X,,,79,,", "line 3: code '7919' must be 3 digits"),
        ("079,BHXH X,,,79,,", "line 3: code 079 already used on line 2"),
        ("07920,,,,79,,", "line 3: name is empty"),
        ("07920,BHXH X,,,HCM,,", "line 3: province_code 'HCM' must be a number"),
        ("07920,BHXH X,,,77,,", "line 3: province_code 77 is not one of the 34 provinces"),
        ("07920,BHXH X,call us,,79,,", "line 3: phone 'call us' is not a phone number"),
        ("07920,BHXH X,,,79,099,", "line 3: parent_code 099 is not a code in this file"),
    ],
)
def test_csv_import_reports_each_bad_row_with_its_line(tmp_path, row, problem):
    path = _write(tmp_path, HEADER + "079,BHXH TP. Hồ Chí Minh,,,79,,\n" + row + "\n")
    with pytest.raises(AgencyCsvError) as caught:
        AgencyDirectory.from_csv(path)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_csv_import_collects_all_problems_and_checks_the_header(tmp_path):
    with pytest.raises(AgencyCsvError) as caught:
        AgencyDirectory.from_csv(_write(tmp_path, "code,title\n079,x\n"))
    assert "missing column(s) name, province_code" in caught.value.problems[0]
    body = HEADER + ",a,,,79,,\n07920,,,,79,,\n"
    with pytest.raises(AgencyCsvError) as caught:
        AgencyDirectory.from_csv(_write(tmp_path, body))
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 3"]


def test_operator_csv_replaces_the_directory_via_env(tmp_path, monkeypatch):
    path = _write(tmp_path, HEADER + "048,BHXH TP. Đà Nẵng,0236 123 4567,,48,,operator\n")
    monkeypatch.setenv("VSSID_AGENCIES_CSV", str(path))
    AgencyDirectory.clear_cache()
    try:
        directory = AgencyDirectory.default()
        assert [a.code for a in directory] == ["048"]
        assert directory.get("07919") is None
    finally:
        AgencyDirectory.clear_cache()


def test_cli_import_validates_then_installs_into_the_data_dir(tmp_path, monkeypatch):
    from bot.cli import app

    monkeypatch.delenv("VSSID_AGENCIES_CSV", raising=False)
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "079,X,,,79,,\n079,Y,,,79,,\n", encoding="utf-8")
    result = runner.invoke(app, ["agencies", "import", str(bad), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "line 3: code 079 already used on line 2" in result.output
    assert not (tmp_path / "data" / "agencies.csv").exists()

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "048,BHXH TP. Đà Nẵng,,,48,,\n", encoding="utf-8")
    result = runner.invoke(app, ["agencies", "import", str(good), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    AgencyDirectory.clear_cache()
    try:
        listed = runner.invoke(app, ["agencies", "list", "--data-dir", str(tmp_path / "data")])
        assert listed.output.strip() == "[048] BHXH TP. Đà Nẵng"
    finally:
        AgencyDirectory.clear_cache()
