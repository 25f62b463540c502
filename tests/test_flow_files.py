"""Flow files are checked when they load: a typo names the file and line, never fails mid-chat."""

from __future__ import annotations

import pytest

from dialogs.flow import FlowError, load_flow, load_flows

GOOD = """\
id: t
title: T
steps:
  - id: name
    field: full_name
    parser: full_name
    prompt: Họ tên?
  - id: pick
    kind: choice
    field: relationship
    options:
      - {label: Con đẻ, value: con_de}
  - id: done
    kind: end
    prompt: Xong.
"""


def _flow(tmp_path, text: str):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_flows_load():
    assert {"registration", "child_registration", "install_guide", "account_help"} <= set(load_flows())


def test_a_well_formed_flow_loads(tmp_path):
    flow = load_flow(_flow(tmp_path, GOOD))
    assert [s.kind for s in flow.steps] == ["text", "choice", "end"]


@pytest.mark.parametrize(
    ("good", "bad", "line", "says"),
    [
        (
            "    parser: full_name\n",
            "    parser: full_name\n    prasers: x\n",
            7,
            "step 'name': unknown key 'prasers'",
        ),
        (
            "      - {label: Con đẻ, value: con_de}\n",
            "      - {label: Con đẻ, valeu: con_de}\n",
            12,
            "unknown key 'valeu'",
        ),
        ("    kind: end\n", "    kind: ending\n", 14, "step 'done': unknown kind 'ending'"),
        # a key another kind takes is still unknown here: options belong to a choice
        ("    prompt: Xong.\n", "    prompt: Xong.\n    options: []\n", 16, "unknown key 'options'"),
        ("title: T\n", "title: T\ntitel: T\n", 3, "flow 't': unknown key 'titel'"),
        ("    prompt: Họ tên?\n", "    prompt: Họ tên {{ v.x \n", 7, "prompt"),
    ],
)
def test_a_typo_names_the_file_and_line(tmp_path, good, bad, line, says):
    assert good in GOOD
    path = _flow(tmp_path, GOOD.replace(good, bad, 1))
    with pytest.raises(FlowError) as refused:
        load_flow(path)
    assert f"{path}:{line}: " in str(refused.value) and says in str(refused.value), str(refused.value)


def test_a_step_going_nowhere_names_its_line(tmp_path):
    path = _flow(tmp_path, GOOD.replace("    kind: choice\n", "    kind: choice\n    next: nowhere\n"))
    with pytest.raises(FlowError, match=rf"{path}:8: .*'pick'.*'nowhere'"):
        load_flow(path)
