"""grade.py: the rubric arithmetic, tolerant reading of result and answer files, and the adapter checks.

Fake adapters are written with safetensors' numpy API, so no torch is needed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import adapters
import grade
import runtime
from conftest import run_script
from runtime import UserError
from tasks import TASKS, LabelFileLayout

TARGETS = ["q_proj", "v_proj"]
RANK = 4
ADAPTER_CONFIG = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": 8, "lora_dropout": 0.0,
                  "target_modules": TARGETS, "base_model_name_or_path": "/models/gemma-2b", "bias": "none"}
GOLD = ["1", "0", "1", "1", "0", "0", "1", "0", "1", "1"]


def lora_tensors(rank: int = RANK, hidden: int = 32, zero_b: bool = False, seed: int = 0) -> Dict[str, object]:
    """Tensors named and shaped like peft's LoRA for two layers of a Gemma: lora_A (r, in), lora_B (out, r)."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(2):
        for module in TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((rank, hidden)).astype(np.float32)
            b = np.zeros((hidden, rank), np.float32) if zero_b else rng.standard_normal((hidden, rank))
            tensors[f"{prefix}.lora_B.weight"] = b.astype(np.float32)
    return tensors


def write_adapter(folder: Path, tensors: Optional[dict] = None, config: Optional[dict] = None) -> Path:
    save_file = pytest.importorskip("safetensors.numpy").save_file
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora_tensors() if tensors is None else tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG if config is None else config))
    return folder


def write_pre_data(pre_data: Path, name: str, n_dev: int = 10) -> None:
    task = TASKS[name]
    train = [{"instruction": task.instruction, "input": f"text {i}", "output": str(i % 2)} for i in range(20)]
    dev = [{"instruction": task.instruction, "input": f"dev text {i}", "output": ""} for i in range(n_dev)]
    for split, items in (("train", train), ("val", train[:4]), ("dev", dev)):
        runtime.write_json(pre_data / name / f"{name}_{split}.json", items)


def write_labels(path: Path, labels: List[str], layout: LabelFileLayout = LabelFileLayout()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(layout.format(labels), encoding="utf-8")
    return path


def with_mistakes(gold: List[str], wrong: List[int]) -> List[str]:
    return [("0" if g == "1" else "1") if i in wrong else g for i, g in enumerate(gold)]


@pytest.fixture
def project(tmp_path):
    """A complete submission for CoLA in tmp_path (pre_data, adapter, answers, result 8/10 right); its settings."""
    args = ["--pre_data_dir", str(tmp_path / "pre_data"), "--saved_model_dir", str(tmp_path / "saved_model"),
            "--result_dir", str(tmp_path / "questionB"), "--answer_dir", str(tmp_path / "answers")]
    write_pre_data(tmp_path / "pre_data", "CoLA")
    write_adapter(tmp_path / "saved_model" / "CoLA")
    write_labels(tmp_path / "answers" / "result_CoLA.txt", GOLD)
    write_labels(tmp_path / "questionB" / "result_CoLA.txt", with_mistakes(GOLD, [2, 5]))
    return tmp_path, args


def settings_of(args: List[str], *more: str):
    return runtime.load_settings(args + list(more))


# --- arithmetic ------------------------------------------------------------------------------------------

def test_full_marks_for_structure_and_70_times_accuracy(project):
    _, args = project
    report = grade.grade_task(settings_of(args), "CoLA")
    assert report["pre_data"] == {"points": 10, "of": 10, "reasons": []}
    assert report["adapter"] == {"points": 20, "of": 20, "reasons": [], "notes": []}
    accuracy = report["accuracy"]
    assert accuracy["metrics"]["correct"] == 8 and accuracy["metrics"]["n"] == 10 and accuracy["reasons"] == []
    assert accuracy["points"] == pytest.approx(56) and report["total"] == pytest.approx(86)
    assert accuracy["summary"].startswith("8/10 = 80.00 %")
    assert accuracy["mistakes"] == [{"item": 2, "expected": "1", "got": "0"}, {"item": 5, "expected": "0", "got": "1"}]


def test_total_is_the_mean_over_data_sets(project):
    tmp_path, args = project
    write_pre_data(tmp_path / "pre_data", "QQP")
    qqp_gold = ["0", "1"] * 5
    write_labels(tmp_path / "answers" / "result_QQP_64.txt", qqp_gold)    # another name the exam may use
    write_labels(tmp_path / "questionB" / "result_QQP.txt", with_mistakes(qqp_gold, [0, 1, 2, 3, 4]))
    report = json.loads(run_script("grade.py", *args, "--json").stdout)
    by_name = {r["data_set"]: r for r in report["data_sets"]}
    assert sorted(by_name) == ["CoLA", "QQP"]
    assert by_name["CoLA"]["total"] == pytest.approx(86)
    assert by_name["QQP"]["adapter"]["points"] == 0 and by_name["QQP"]["accuracy"]["points"] == pytest.approx(35)
    assert by_name["QQP"]["total"] == pytest.approx(45) and report["total"] == pytest.approx((86 + 45) / 2)
    assert by_name["QQP"]["accuracy"]["answer_file"].endswith("result_QQP_64.txt")
    human = run_script("grade.py", *args).stdout
    assert "grade: total 65.50 / 100 (mean of CoLA, QQP)" in human
    assert "5/10 = 50.00 %" in human and "score 45.00 / 100" in human and "score 86.00 / 100" in human


def test_data_set_setting_grades_only_that_one(project):
    _, args = project
    report = json.loads(run_script("grade.py", *args, "--json", "--data_set", "cola").stdout)
    assert [r["data_set"] for r in report["data_sets"]] == ["CoLA"] and report["total"] == pytest.approx(86)


def test_human_report_shows_first_mistakes_and_the_k_of_n_line(project):
    tmp_path, args = project
    write_labels(tmp_path / "questionB" / "result_CoLA.txt", with_mistakes(GOLD, [0, 1, 3, 4, 6, 7, 9]))
    out = run_script("grade.py", *args).stdout
    shown = re.findall(r"item\s+(\d+): expected (\d), got (\S+)", out)
    assert shown == [("0", "1", "0"), ("1", "0", "1"), ("3", "1", "0"), ("4", "0", "1"), ("6", "1", "0")]
    assert re.search(r"^  3/10 = 30\.00 %   MCC -?\d\.\d{3}   F1 \d\.\d{3}", out, re.M)
    assert "pre_data JSON   10.00 / 10" in out and "LoRA adapter    20.00 / 20" in out
    assert "accuracy        21.00 / 70" in out
    assert out.rstrip().endswith("grade: total 51.00 / 100 (mean of CoLA)")


# --- result and answer layouts ---------------------------------------------------------------------------

LAYOUTS = [LabelFileLayout(), LabelFileLayout(index_start=0), LabelFileLayout(index_start=1),
           LabelFileLayout(header="index\tprediction", index_start=0), LabelFileLayout(header="label")]


@pytest.mark.parametrize("answer_layout", LAYOUTS)
@pytest.mark.parametrize("result_layout", LAYOUTS)
def test_any_layout_pair_scores_the_same(project, answer_layout, result_layout):
    tmp_path, args = project
    write_labels(tmp_path / "answers" / "result_CoLA.txt", GOLD, answer_layout)
    write_labels(tmp_path / "questionB" / "result_CoLA.txt", with_mistakes(GOLD, [2, 5]), result_layout)
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["metrics"]["correct"] == 8 and accuracy["metrics"]["n"] == 10 and accuracy["reasons"] == []


def test_label_words_in_the_result(project):
    tmp_path, args = project
    words = {"1": "yes", "0": "No"}
    (tmp_path / "questionB" / "result_CoLA.txt").write_text("\n".join(words[g] for g in GOLD) + "\n\n")
    assert grade.grade_task(settings_of(args), "CoLA")["accuracy"]["points"] == pytest.approx(70)


def test_fewer_lines_count_as_wrong_and_are_reported(project):
    tmp_path, args = project
    write_labels(tmp_path / "questionB" / "result_CoLA.txt", GOLD[:7])
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["metrics"]["n"] == 10 and accuracy["metrics"]["correct"] == 7
    assert accuracy["points"] == pytest.approx(49)
    assert any("has 7 answers for 10 questions: missing ones count as wrong" in r for r in accuracy["reasons"])
    assert [m["item"] for m in accuracy["mistakes"]] == [7, 8, 9] and accuracy["mistakes"][0]["got"] is None


def test_more_lines_are_ignored_and_reported(project):
    tmp_path, args = project
    write_labels(tmp_path / "questionB" / "result_CoLA.txt", GOLD + ["1", "0", "1"])
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["metrics"]["n"] == 10 and accuracy["points"] == pytest.approx(70)
    assert any("has 13 answers for 10 questions: the extra ones are ignored" in r for r in accuracy["reasons"])


@pytest.mark.parametrize("content", ["", "\n\n", "garbage\n", "index\tlabel\n", "\x00\xff binary", "maybe\n" * 10])
def test_unusable_result_files_score_zero_without_a_crash(project, content):
    tmp_path, args = project
    (tmp_path / "questionB" / "result_CoLA.txt").write_text(content, encoding="utf-8")
    report = grade.grade_task(settings_of(args), "CoLA")
    assert report["accuracy"]["points"] == 0 and report["accuracy"]["reasons"]
    assert report["total"] == 30


def test_unreadable_lines_are_wrong_in_place(project):
    tmp_path, args = project
    lines = list(GOLD)
    lines[3] = "perhaps"
    (tmp_path / "questionB" / "result_CoLA.txt").write_text("\n".join(lines) + "\n")
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["metrics"]["correct"] == 9 and accuracy["metrics"]["invalid"] == 1
    assert any("1 unreadable lines, e.g. line 4: 'perhaps' is not a label" in r for r in accuracy["reasons"])


def test_missing_result_or_answer_file(project):
    tmp_path, args = project
    (tmp_path / "questionB" / "result_CoLA.txt").unlink()
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["points"] == 0 and "run python predict.py" in accuracy["reasons"][0]
    (tmp_path / "answers" / "result_CoLA.txt").unlink()
    accuracy = grade.grade_task(settings_of(args), "CoLA")["accuracy"]
    assert accuracy["points"] == 0 and "no answer file result_CoLA*.txt" in accuracy["reasons"][0]


def test_nothing_to_grade_is_a_user_error(tmp_path):
    args = ["--pre_data_dir", str(tmp_path / "p"), "--answer_dir", str(tmp_path / "a")]
    with pytest.raises(UserError, match="nothing to grade"):
        grade.main(settings_of(args))
    result = run_script("grade.py", *args, check=False)
    assert result.returncode == 2 and "nothing to grade" in result.stderr


def test_structure_is_graded_without_answer_files(project):
    tmp_path, args = project
    (tmp_path / "answers" / "result_CoLA.txt").unlink()
    report = json.loads(run_script("grade.py", *args, "--json").stdout)
    assert [r["data_set"] for r in report["data_sets"]] == ["CoLA"] and report["total"] == 30


# --- pre_data --------------------------------------------------------------------------------------------

def breaks(pre_data: Path) -> dict:
    def rewrite(split, items):
        runtime.write_json(pre_data / "CoLA" / f"CoLA_{split}.json", items)

    good = {"instruction": "i", "input": "x", "output": "1"}
    return {
        "missing dev": lambda: (pre_data / "CoLA" / "CoLA_dev.json").unlink(),
        "not JSON": lambda: (pre_data / "CoLA" / "CoLA_train.json").write_text("[{"),
        "empty list": lambda: rewrite("train", []),
        "an object, not a list": lambda: rewrite("dev", good),
        "extra key": lambda: rewrite("train", [dict(good, label="1")]),
        "missing key": lambda: rewrite("dev", [{"instruction": "i", "input": "x"}]),
        "number output": lambda: rewrite("train", [dict(good, output=1)]),
        "train label not 0/1": lambda: rewrite("train", [good, dict(good, output="yes")]),
        "not UTF-8": lambda: (pre_data / "CoLA" / "CoLA_dev.json").write_bytes('[{"input": "caf\xe9"}]'.encode("latin-1")),
    }


@pytest.mark.parametrize("fault", list(breaks(Path("."))))
def test_broken_pre_data_loses_its_10_points(project, fault):
    tmp_path, args = project
    breaks(tmp_path / "pre_data")[fault]()
    report = grade.grade_task(settings_of(args), "CoLA")
    assert report["pre_data"]["points"] == 0 and report["pre_data"]["reasons"], fault
    assert report["total"] == pytest.approx(76)


# --- the adapter -----------------------------------------------------------------------------------------

def adapter_verdict(args: List[str]) -> tuple:
    reasons, notes = adapters.problems(runtime.adapter_dir(settings_of(args), "CoLA"), "CoLA")
    return " | ".join(reasons), notes


def test_well_formed_adapter_passes(project):
    tmp_path, args = project
    assert adapters.problems(runtime.adapter_dir(settings_of(args), "CoLA"), "CoLA") == ([], [])


def test_untrained_adapter_keeps_its_points_with_a_note(project):
    tmp_path, args = project
    write_adapter(tmp_path / "saved_model" / "CoLA", lora_tensors(zero_b=True))
    report = grade.grade_task(settings_of(args), "CoLA")
    assert report["adapter"]["points"] == 20 and report["adapter"]["reasons"] == []
    assert report["adapter"]["notes"] == ["every lora_B is zero: this adapter is untrained (it changes nothing)"]
    assert "note: every lora_B is zero" in run_script("grade.py", *args).stdout


def _np():
    return pytest.importorskip("numpy")


ADAPTER_FAULTS = {
    "no tensors": (lambda: {}, "0 lora_A and 0 lora_B"),
    "zero-size tensors": (lambda: {"m.q_proj.lora_A.weight": _np().zeros((RANK, 0), _np().float32),
                                   "m.q_proj.lora_B.weight": _np().zeros((0, RANK), _np().float32)}, "hold no numbers"),
    "lora_A without lora_B": (lambda: {k: v for k, v in lora_tensors().items() if "lora_B" not in k}, "0 lora_B"),
    "full model copy": (lambda: dict(lora_tensors(), **{"model.layers.0.mlp.up_proj.weight": _np().ones((8, 8), _np().float32)}),
                        "non-LoRA tensors"),
    "merged model, no LoRA": (lambda: {"model.embed_tokens.weight": _np().ones((8, 8), _np().float32)}, "0 lora_A"),
    "wrong rank": (lambda: lora_tensors(rank=RANK * 2), f"do not have rank r = {RANK}"),
    "rank in the wrong place": (lambda: {k: v.T.copy() for k, v in lora_tensors(hidden=6).items()}, "do not have rank"),
    "one-dimensional": (lambda: {k: v[0].copy() for k, v in lora_tensors(hidden=RANK).items()}, "do not have rank"),
    "scalars": (lambda: {k: _np().ones((), _np().float32) for k in lora_tensors()}, "do not have rank"),
}


@pytest.mark.parametrize("fault", list(ADAPTER_FAULTS))
def test_malformed_adapter_weights_fail(project, fault):
    tmp_path, args = project
    make, why = ADAPTER_FAULTS[fault]
    write_adapter(tmp_path / "saved_model" / "CoLA", make())
    reasons, _ = adapter_verdict(args)
    assert why in reasons, reasons
    assert grade.grade_task(settings_of(args), "CoLA")["adapter"]["points"] == 0


@pytest.mark.parametrize("keep", [0, 5, 8, 40, -1, -16])
def test_truncated_adapter_fails(project, keep):
    tmp_path, args = project
    weights = tmp_path / "saved_model" / "CoLA" / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:keep])
    reasons, _ = adapter_verdict(args)
    assert "adapter_model.safetensors cannot be read" in reasons


def test_garbage_weights_fail(project):
    tmp_path, args = project
    (tmp_path / "saved_model" / "CoLA" / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00"
                                                                                 + b"\xff" * 16)
    assert "cannot be read" in adapter_verdict(args)[0]


@pytest.mark.parametrize("change, why", [
    ({"peft_type": "PREFIX_TUNING"}, "not LORA"),
    ({"r": 0}, "not a positive whole number"),
    ({"r": "16"}, "not a positive whole number"),
    ({"target_modules": []}, "names no target_modules"),
    ({"base_model_name_or_path": ""}, "names no base_model_name_or_path"),
])
def test_bad_adapter_config_fails(project, change, why):
    tmp_path, args = project
    write_adapter(tmp_path / "saved_model" / "CoLA", config=dict(ADAPTER_CONFIG, **change))
    assert why in adapter_verdict(args)[0]


@pytest.mark.parametrize("content, why", [(None, "adapter_config.json is missing"), ("{", "is not valid JSON"),
                                          ("[1, 2]", "is not a JSON object")])
def test_missing_or_unreadable_adapter_config_fails(project, content, why):
    tmp_path, args = project
    config = tmp_path / "saved_model" / "CoLA" / "adapter_config.json"
    if content is None:
        config.unlink()
    else:
        config.write_text(content)
    assert why in adapter_verdict(args)[0]
    assert grade.grade_task(settings_of(args), "CoLA")["adapter"]["points"] == 0


def test_missing_adapter_folder_or_weights_fail(project):
    tmp_path, args = project
    (tmp_path / "saved_model" / "CoLA" / "adapter_model.safetensors").unlink()
    assert "adapter_model.safetensors is missing" in adapter_verdict(args)[0]
    for path in (tmp_path / "saved_model" / "CoLA").iterdir():
        path.unlink()
    (tmp_path / "saved_model" / "CoLA").rmdir()
    assert "saved_model" in adapter_verdict(args)[0] and "does not exist" in adapter_verdict(args)[0]


def test_adapter_trained_for_another_data_set_is_in_the_wrong_place(project):
    tmp_path, args = project
    record = tmp_path / "saved_model" / "CoLA" / "run_record.json"
    record.write_text(json.dumps({"data_set": "QQP"}))
    assert "trained on QQP" in adapter_verdict(args)[0]
    record.write_text(json.dumps({"data_set": "CoLA"}))
    assert adapter_verdict(args) == ("", [])
    record.write_text("{ half a record")   # an unreadable run record is no reason to crash or to lose points
    assert adapter_verdict(args) == ("", [])
