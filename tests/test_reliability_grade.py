"""Issue 3, case 17: result and answer files in any reasonable layout are read, and anything odd is reported
exactly (which file, which line); grade.py never crashes. Torch-free."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _reliability import run

WORDS = {"yes-no": ("no", "yes"), "true-false": ("False", "True"), "Yes-No": ("No", "Yes")}


@pytest.fixture
def gold(synthetic_data) -> list:
    return (synthetic_data / "answers" / "result_CoLA.txt").read_text().split()


def grade(tmp_path: Path, result, answers):
    """grade.py --json on a result file and an answer file, each given as text or bytes (None: no such file)."""
    result_dir, answer_dir = tmp_path / "questionB", tmp_path / "answers"
    for folder, content in ((result_dir, result), (answer_dir, answers)):
        folder.mkdir(exist_ok=True)
        if content is not None:
            path = folder / "result_CoLA.txt"
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    run_result = run("grade.py", "--json", "--data_set", "CoLA", "--answer_dir", str(answer_dir),
                     "--result_dir", str(result_dir), "--pre_data_dir", str(tmp_path / "pre_data"),
                     "--saved_model_dir", str(tmp_path / "saved_model"))
    assert run_result.returncode == 0 and "Traceback" not in run_result.stderr, run_result
    return json.loads(run_result.stdout)["data_sets"][0]["accuracy"]


def plain(labels: list) -> str:
    return "\n".join(labels) + "\n"


def layouts(labels: list) -> dict:
    """The same answers in every layout a person or a tool might write."""
    plain = "\n".join(labels) + "\n"
    return {
        "plain": plain,
        "yes-no": "\n".join(WORDS["yes-no"][int(x)] for x in labels) + "\n",
        "Yes-No": "\n".join(WORDS["Yes-No"][int(x)] for x in labels) + "\n",
        "true-false": "\n".join(WORDS["true-false"][int(x)] for x in labels) + "\n",
        "header": "label\n" + plain,
        "index-header": "index\tprediction\n" + "".join(f"{i}\t{x}\n" for i, x in enumerate(labels)),
        "index": "".join(f"{i}\t{x}\n" for i, x in enumerate(labels)),
        "index-from-1-spaces": "".join(f"{i + 1} {x}\n" for i, x in enumerate(labels)),
        "spaces": "".join(f"  {x} \n" for x in labels),
        "crlf-bom": "\ufeff" + plain.replace("\n", "\r\n"),
        "no-final-newline": plain.rstrip("\n"),
        "trailing-blank-lines": plain + "\n\n  \n",
    }


@pytest.mark.parametrize("layout", list(layouts(["0", "1"])))
def test_result_file_layouts_score_like_the_plain_one(tmp_path, gold, layout):
    accuracy = grade(tmp_path, layouts(gold)[layout], plain(gold))
    assert accuracy["metrics"]["accuracy"] == 1.0 and accuracy["metrics"]["n"] == 150, accuracy
    assert accuracy["reasons"] == []


@pytest.mark.parametrize("layout", ["yes-no", "true-false", "header", "index-header", "index", "crlf-bom"])
def test_answer_file_layouts_score_like_the_plain_one(tmp_path, gold, layout):
    accuracy = grade(tmp_path, plain(gold), layouts(gold)[layout])
    assert accuracy["metrics"]["accuracy"] == 1.0 and accuracy["metrics"]["n"] == 150, accuracy
    assert accuracy["reasons"] == []


def test_blank_line_in_the_middle_counts_as_wrong_and_is_reported(tmp_path, gold):
    lines = list(gold)
    lines[9] = ""
    accuracy = grade(tmp_path, "\n".join(lines) + "\n", plain(gold))
    assert accuracy["metrics"]["correct"] == 149
    assert any("result_CoLA.txt" in r and "line 10 is blank" in r for r in accuracy["reasons"]), accuracy


def test_not_a_label_is_reported_with_its_line(tmp_path, gold):
    lines = list(gold)
    lines[4] = "2"
    accuracy = grade(tmp_path, "\n".join(lines) + "\n", plain(gold))
    assert accuracy["metrics"]["correct"] == 149 and accuracy["metrics"]["invalid"] == 1
    assert any("result_CoLA.txt" in r and "line 5: '2' is not a label" in r for r in accuracy["reasons"]), accuracy


@pytest.mark.parametrize("count", [0, 140, 160])
def test_fewer_or_more_lines_are_reported(tmp_path, gold, count):
    lines = (gold * 2)[:count]
    accuracy = grade(tmp_path, "\n".join(lines) + ("\n" if lines else ""), plain(gold))
    if count == 0:   # nothing to align: the file is refused with its cause
        assert accuracy["points"] == 0 and any("is empty: it holds no answers" in r for r in accuracy["reasons"])
        return
    assert accuracy["metrics"]["n"] == 150 and accuracy["metrics"]["correct"] == min(count, 150)
    what = "missing ones count as wrong" if count < 150 else "the extra ones are ignored"
    assert any(f"result_CoLA.txt has {count} answers for 150 questions: {what}" in r for r in accuracy["reasons"]), accuracy


def test_bytes_that_are_not_utf8_are_reported_not_a_crash(tmp_path, gold):
    raw = ("\n".join(gold) + "\n").encode()
    raw = raw.replace(b"\n", "\n\u00e9\n".encode("latin-1"), 1)      # line 2 is a lone \xe9
    accuracy = grade(tmp_path, raw, plain(gold))
    assert any("line 2" in r and "is not a label" in r for r in accuracy["reasons"]), accuracy


def test_index_out_of_order_is_reported(tmp_path, gold):
    lines = [f"{i}\t{x}" for i, x in enumerate(gold)]
    lines[3], lines[4] = lines[4], lines[3]
    accuracy = grade(tmp_path, "\n".join(lines) + "\n", plain(gold))
    assert any("line 4: index 4 where 3 was expected" in r and "matched by line" in r for r in accuracy["reasons"]), accuracy


def test_blank_and_bad_lines_in_the_answer_file_are_reported_and_left_out(tmp_path, gold):
    answers = list(gold)
    answers[0], answers[6] = "", "maybe"
    accuracy = grade(tmp_path, plain(gold), "\n".join(answers) + "\n")
    assert accuracy["metrics"]["n"] == 148 and accuracy["metrics"]["accuracy"] == 1.0
    assert any("answer file result_CoLA.txt: line 1 is blank; line 7: 'maybe' is not a label" in r
               for r in accuracy["reasons"]), accuracy


def test_missing_result_or_answer_file_is_reported(tmp_path, gold):
    accuracy = grade(tmp_path, None, plain(gold))
    assert any("result_CoLA.txt is missing: run python predict.py" in r for r in accuracy["reasons"]), accuracy
    (tmp_path / "other").mkdir()
    accuracy = grade(tmp_path / "other", plain(gold), None)
    assert any("no answer file result_CoLA*.txt" in r for r in accuracy["reasons"]), accuracy


@pytest.mark.parametrize("content, cause", [
    ("", "is empty: it holds no answers"),
    ("\n \n", "is empty: it holds no answers"),
    ("1\n0\n".encode("utf-16"), "is UTF-16"),
    ("0,1,1,0,1\n", "is comma-separated"),
])
def test_an_answer_file_that_cannot_be_read_says_why(tmp_path, gold, content, cause):
    accuracy = grade(tmp_path, plain(gold), content)
    assert accuracy["points"] == 0 and any(cause in r for r in accuracy["reasons"]), accuracy


def test_a_first_answer_in_a_spelling_grade_accepts_is_not_taken_for_a_header(tmp_path, gold):
    """'acceptable' is both a column name and an answer (1): as a first line it is the first answer."""
    words = ["acceptable" if g == "1" else "unacceptable" for g in gold]
    accuracy = grade(tmp_path, plain(words), plain(gold))
    assert accuracy["metrics"]["correct"] == 150, accuracy


def test_labels_data_process_accepts_are_read_by_grade_too(tmp_path, gold):
    accuracy = grade(tmp_path, plain([g + ".0" for g in gold]), plain(gold))   # pandas' floats: 1.0 / 0.0
    assert accuracy["metrics"]["correct"] == 150, accuracy


def test_an_answer_file_named_in_another_spelling_is_found(tmp_path, gold):
    """data_process accepts sst2 for SST-2; an answer file result_sst2.txt is SST-2's, not ignored."""
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "result_cola.txt").write_text(plain(gold))
    result = tmp_path / "questionB" / "result_CoLA.txt"
    result.parent.mkdir()
    result.write_text(plain(gold))
    report = json.loads(run("grade.py", "--json", "--answer_dir", str(answers), "--result_dir", str(result.parent),
                            "--pre_data_dir", str(tmp_path / "pre_data"),
                            "--saved_model_dir", str(tmp_path / "saved_model")).stdout)
    assert [r["data_set"] for r in report["data_sets"]] == ["CoLA"]
    assert report["data_sets"][0]["accuracy"]["metrics"]["correct"] == 150


def answers_and_results(tmp_path, gold) -> tuple:
    """answers/result_CoLA.txt with the gold labels, an empty questionB/, and grade.py's folder arguments."""
    answers, results = tmp_path / "answers", tmp_path / "questionB"
    answers.mkdir()
    results.mkdir()
    (answers / "result_CoLA.txt").write_text(plain(gold))
    where = ["--answer_dir", str(answers), "--result_dir", str(results), "--pre_data_dir", str(tmp_path / "pre_data"),
             "--saved_model_dir", str(tmp_path / "saved_model")]
    return results, where


def test_a_data_set_with_work_but_no_answer_file_is_named_not_dropped_silently(tmp_path, gold):
    results, where = answers_and_results(tmp_path, gold)
    (results / "result_CoLA.txt").write_text(plain(gold))
    (results / "result_QQP.txt").write_text(plain(gold))
    out = run("grade.py", *where).stdout
    assert "note: QQP has work here (result file) but no answer file result_QQP*.txt" in out, out


def test_a_result_file_that_is_a_link_loop_is_reported_not_a_traceback(tmp_path, gold):
    results, where = answers_and_results(tmp_path, gold)
    (results / "result_CoLA.txt").symlink_to(results / "result_CoLA.txt")
    done = run("grade.py", "--data_set", "CoLA", *where)
    assert "Traceback" not in done.stderr and done.returncode in (0, 2), done.stderr
    assert "result_CoLA.txt" in done.stdout + done.stderr
