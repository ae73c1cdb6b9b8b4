"""Issue 10, the second reliability round: no dev file misread, no half-updated pre_data, file-system errors in
one paragraph, no misreported grade. Each test fails on the code before that round. Torch-free."""
from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import _reliability
from _reliability import ROOT, assert_unchanged, error_message, run, snapshot


@pytest.fixture
def data(tmp_path, synthetic_data) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(synthetic_data / "data", folder)
    return folder


@pytest.fixture
def pre_data(tmp_path, data) -> Path:
    """pre_data from a good run, for the failures below to leave untouched."""
    out = tmp_path / "pre_data"
    result = process(data, out)
    assert result.returncode == 0, result
    return out


def process(data: Path, pre_data: Path, *args: str):
    """data_process on CoLA unless args name another data set (the last --data_set wins)."""
    return _reliability.process(data, pre_data, "--data_set", "CoLA", *args)


def fails_and_keeps(data: Path, pre_data: Path, *args: str, needles=()) -> str:
    return _reliability.fails_and_keeps(data, pre_data, "--data_set", "CoLA", *args, needles=needles)


def dev_sentences(data: Path) -> list:
    return [line.split("\t")[3] for line in (data / "CoLA_dev.tsv").read_text(encoding="utf-8").splitlines()]


def written(pre_data: Path, split: str, task: str = "CoLA") -> list:
    return json.loads((pre_data / task / f"{task}_{split}.json").read_text(encoding="utf-8"))


# --- 1. dev layouts proven, not guessed ----------------------------------------------------------------

@pytest.mark.parametrize("header,needle", [("idx\ttext", "'idx' in column 1, where every other row has a number"),
                                           ("row\tsentence_text", "'row' in column 1")])
def test_a_dev_header_the_reader_does_not_know_is_not_taken_for_a_row(data, pre_data, header, needle):
    sentences = dev_sentences(data)
    (data / "CoLA_dev.tsv").write_text(header + "\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences)))
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv, line 1", needle, "header this reader does not know",
                                             "shift every answer by one", "first line naming its columns"))


def test_a_one_word_header_over_a_column_of_sentences_is_not_taken_for_a_row(data, pre_data):
    sentences = dev_sentences(data)
    (data / "CoLA_dev.tsv").write_text("text\n" + "".join(s + "\n" for s in sentences))
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv, line 1", "single word 'text'", "header this reader"))


def test_a_headerless_dev_file_with_labels_where_the_text_belongs_is_refused(data, pre_data):
    """Labels and sentences in the other order: read as `id | sentence`, the 'sentences' would be the labels."""
    rows = [line.split("\t") for line in (data / "CoLA_train.tsv").read_text().splitlines()][:60]
    (data / "CoLA_dev.tsv").write_text("".join(f"{r[3]}\t{r[1]}\n" for r in rows))
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv", "column 2", "holds only 0 and 1: it looks like labels"))


def test_ids_where_the_questions_belong_are_refused(data, pre_data):
    (data / "QQP_dev.tsv").write_text("".join(f"{i}\t{100 + i}\t{200 + i}\n" for i in range(40)))
    message = fails_and_keeps(data, pre_data, "--data_set", "QQP", needles=("QQP_dev.tsv", "holds only numbers"))
    assert "looks like ids" in message


def test_a_known_header_and_a_plain_headerless_file_still_read(data, tmp_path):
    sentences = dev_sentences(data)
    (data / "CoLA_dev.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences)))
    assert process(data, tmp_path / "a").returncode == 0
    (data / "CoLA_dev.tsv").write_text("".join(f"{i}\t{s}\n" for i, s in enumerate(sentences)))
    assert process(data, tmp_path / "b").returncode == 0
    assert [e["input"] for e in written(tmp_path / "a", "dev")] == [e["input"] for e in written(tmp_path / "b", "dev")] \
        == sentences


# --- what is unambiguous is accepted ---------------------------------------------------------------------

def test_a_trailing_empty_column_and_float_labels_read_like_the_clean_file(data, tmp_path):
    assert process(data, tmp_path / "clean").returncode == 0
    train = data / "CoLA_train.tsv"
    rows = [line.split("\t") for line in train.read_text().splitlines()]
    train.write_text("".join(f"{r[0]}\t{r[1]}.0\t{r[2]}\t{r[3]}\t\n" for r in rows))   # 1.0 / 0.0 and a tab at the end
    dev = data / "CoLA_dev.tsv"
    dev.write_text("".join(line + "\t\n" for line in dev.read_text().splitlines()))
    result = process(data, tmp_path / "quirks")
    assert result.returncode == 0, result
    assert "ends with a tab (an empty last column): ignored" in result.stdout
    for split in ("train", "val", "dev"):
        assert written(tmp_path / "quirks", split) == written(tmp_path / "clean", split)


def test_sst2_is_a_name_for_sst_2(tmp_path, shared_data):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sst2_train.tsv").write_bytes((shared_data / "SST-2" / "train.tsv").read_bytes()[:20000])
    (data / "sst2_dev.tsv").write_bytes((shared_data / "SST-2" / "test.tsv").read_bytes()[:5000])
    result = run("data_process.py", "--data_dir", str(data), "--pre_data_dir", str(tmp_path / "out"), "--data_set",
                 "sst2", "--holdout_size", "20", "--max_samples", "50")
    assert result.returncode == 0, result
    assert (tmp_path / "out" / "SST-2" / "SST-2_train.json").is_file()


# --- encodings and line endings, named exactly -------------------------------------------------------

@pytest.mark.parametrize("spoil,needles", [
    (lambda t: t.encode("utf-16"), ("is UTF-16 text", "byte-order mark", "iconv -f UTF-16 -t UTF-8 CoLA_train.tsv")),
    (lambda t: t.encode("utf-16-le"), ("looks like UTF-16LE text without a byte-order mark", "iconv -f UTF-16LE")),
    (lambda t: t.encode("utf-16-be"), ("looks like UTF-16BE", "iconv -f UTF-16BE -t UTF-8")),
    (lambda t: t.replace("\n", "\r").encode(), ("old-Mac line endings (CR only", "tr '\\r' '\\n' < CoLA_train.tsv")),
    (lambda t: t.replace("cat", "c\x00t", 1).encode(), ("a NUL character", "damaged or not text")),
])
def test_encodings_and_line_endings_are_named_with_the_command_that_converts_them(data, pre_data, spoil, needles):
    train = data / "CoLA_train.tsv"
    train.write_bytes(spoil(train.read_text(encoding="utf-8")))
    fails_and_keeps(data, pre_data, needles=("CoLA_train.tsv",) + needles)


# --- 2. a run's outputs change together -------------------------------------------------------------------

def test_a_failure_between_two_files_leaves_every_old_file(data, pre_data, monkeypatch, capsys):
    """The disk fills up after the train file is written: the old train, holdout and dev files all stay."""
    sys.path.insert(0, str(ROOT))
    import runtime
    import data_process
    before = snapshot(pre_data)
    real_write = runtime.write_json
    calls = []

    def write_then_fail(path, obj):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, obj)

    monkeypatch.setattr(runtime, "write_json", write_then_fail)
    monkeypatch.setattr(sys, "argv", ["data_process.py", "--data_dir", str(data), "--pre_data_dir", str(pre_data),
                                      "--data_set", "CoLA", "--holdout_size", "50", "--seed", "7"])
    with pytest.raises(SystemExit) as stopped:
        runtime.run(data_process.main, "")
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "No space left on device" in message and "the files already there were not replaced" in message
    assert "Traceback" not in message
    assert_unchanged(pre_data, before)
    assert not [p.name for p in pre_data.iterdir() if p.name.startswith(".")]


def test_leftovers_of_a_killed_run_are_cleaned_and_an_interrupted_swap_is_undone(data, pre_data):
    good = snapshot(pre_data / "CoLA")
    (pre_data / "CoLA").rename(pre_data / "CoLA.old")                 # killed between the swap's two renames
    (pre_data / ".CoLA_train.json.x1y2.tmp").write_text("[{")          # killed while writing
    (pre_data / ".staging-QQP").mkdir()
    (pre_data / ".staging-QQP" / "QQP_train.json").write_text("[")
    result = process(data, pre_data, "--data_set", "QQP")              # another task: CoLA is only restored
    assert result.returncode == 0, result
    assert "removed unfinished files an interrupted run left" in result.stdout
    assert snapshot(pre_data / "CoLA") == good
    assert sorted(p.name for p in pre_data.iterdir()) == ["CoLA", "QQP"]


def test_outputs_get_ordinary_permissions(data, pre_data):
    umask = os.umask(0)
    os.umask(umask)
    for path in (pre_data / "CoLA").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_the_holdout_never_shares_a_text_with_training_even_with_duplicates(data, tmp_path):
    train = data / "CoLA_train.tsv"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines + lines) + "\n")                  # every row twice
    result = process(data, tmp_path / "out", "--max_samples", "0")
    assert result.returncode == 0, result
    held = {e["input"] for e in written(tmp_path / "out", "val")}
    assert held and not held & {e["input"] for e in written(tmp_path / "out", "train")}
    unique = len({line.split("\t")[3] for line in lines})
    assert f"note: {2 * len(lines) - unique} rows repeat the text of an earlier row" in result.stdout


# --- 3. file-system errors in one paragraph, in every script ---------------------------------------------

def test_pre_data_or_its_task_folder_being_a_file(data, tmp_path):
    blocked = tmp_path / "pre_data"
    blocked.write_text("not a folder")
    error_message(process(data, blocked), str(blocked), "a file is in the way where a folder is needed")
    assert blocked.read_text() == "not a folder"
    blocked.unlink()
    blocked.mkdir()
    (blocked / "CoLA").write_text("mine")
    error_message(process(data, blocked), str(blocked / "CoLA"), "a file is where this folder belongs",
                  "a part of this path is a file")
    assert (blocked / "CoLA").read_text() == "mine" and sorted(p.name for p in blocked.iterdir()) == ["CoLA"]


def test_a_dev_path_that_is_a_folder_or_a_broken_link(data, pre_data):
    dev = data / "CoLA_dev.tsv"
    dev.unlink()
    dev.mkdir()
    fails_and_keeps(data, pre_data, needles=(str(dev), "Is a directory", "this is a folder, where a file is needed"))
    dev.rmdir()
    dev.symlink_to(data / "gone.tsv")
    fails_and_keeps(data, pre_data, needles=(str(dev), "is a link to", "which does not exist"))


def test_a_saved_model_folder_that_is_a_file_stops_train_before_the_model_loads(pre_data, tmp_path):
    blocked = tmp_path / "saved_model"
    blocked.write_text("x")
    result = run("train.py", "--pre_data_dir", str(pre_data), "--saved_model_dir", str(blocked), "--data_set", "CoLA")
    error_message(result, str(blocked), "a file is in the way where a folder is needed")
    assert blocked.read_text() == "x"


@pytest.mark.parametrize("code,needle", [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only"),
                                         (errno.ENOSPC, "no space is left"), (errno.ENOTDIR, "is a file, not a folder"),
                                         (errno.EISDIR, "this is a folder"), (errno.ELOOP, "leads back to itself"),
                                         (errno.EDQUOT, "quota")])
def test_every_file_system_error_becomes_one_paragraph_naming_the_path(code, needle, capsys):
    sys.path.insert(0, str(ROOT))
    import runtime

    def main(settings):
        raise OSError(code, os.strerror(code), "/some/where/file.json")

    argv, sys.argv = sys.argv, ["script.py"]
    try:
        with pytest.raises(SystemExit) as stopped:
            runtime.run(main, "")
    finally:
        sys.argv = argv
    assert stopped.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("script.py: error: /some/where/file.json: ") and "\n" not in message
    assert needle in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_pre_data_folder(data, pre_data):
    before = snapshot(pre_data)
    pre_data.chmod(0o555)
    try:
        message = error_message(process(data, pre_data), str(pre_data), "ermission denied")
    finally:
        pre_data.chmod(0o755)
    assert_unchanged(pre_data, before)
    assert message


# --- 4. grade.py never misreports ------------------------------------------------------------------------

@pytest.fixture
def graded(tmp_path):
    """A result file of 150 answers and an answer folder; grade.py's report on them as JSON."""
    answers, results = tmp_path / "answers", tmp_path / "questionB"
    answers.mkdir()
    results.mkdir()
    gold = [str(i % 2) for i in range(150)]

    def report(result_lines, answer_files, *args):
        (results / "result_CoLA.txt").write_text("\n".join(result_lines) + "\n")
        for name, lines in answer_files.items():
            (answers / name).write_text("\n".join(lines) + "\n")
        return run("grade.py", "--answer_dir", str(answers), "--result_dir", str(results), "--data_set", "CoLA",
                   "--pre_data_dir", str(tmp_path / "pre_data"), "--saved_model_dir", str(tmp_path / "saved"),
                   "--json", *args)

    return gold, report


def test_a_first_line_that_is_neither_a_label_nor_a_header_is_a_wrong_answer(graded):
    gold, report = graded
    result = report(["maybe"] + gold[1:], {"result_CoLA.txt": gold})
    metrics = json.loads(result.stdout)["data_sets"][0]["accuracy"]["metrics"]
    assert metrics["correct"] == 149 and metrics["n"] == 150       # nothing shifted: one wrong answer


def test_an_obvious_header_is_still_a_header(graded):
    gold, report = graded
    result = report(["prediction"] + gold, {"result_CoLA.txt": gold})
    assert json.loads(result.stdout)["data_sets"][0]["accuracy"]["metrics"]["correct"] == 150


def test_two_candidate_answer_files_are_an_error_naming_both_and_a_setting_chooses(graded, tmp_path):
    gold, report = graded
    result = report(gold, {"result_CoLA.txt": gold, "result_CoLA_64.txt": ["1"] * 150})
    error_message(result, "2 answer files for CoLA", "result_CoLA.txt, result_CoLA_64.txt", "--answer_file")
    chosen = report(gold, {}, "--answer_file", str(tmp_path / "answers" / "result_CoLA_64.txt"))
    assert json.loads(chosen.stdout)["data_sets"][0]["accuracy"]["metrics"]["correct"] == 75


def test_an_answer_file_longer_than_the_result_is_scored_over_predict_count_lines(graded):
    gold, report = graded
    result = report(gold, {"result_CoLA.txt": gold + ["0", "1"] * 200})
    accuracy = json.loads(result.stdout)["data_sets"][0]["accuracy"]
    assert accuracy["metrics"]["accuracy"] == 1.0 and accuracy["metrics"]["n"] == 150
    assert "the answer file has 550 answers; scored over the first 150 (PREDICT_COUNT)" in accuracy["notes"][0]


@pytest.mark.parametrize("header", [
    b'{"m.lora_A.weight": {"dtype": "F32", "data_offsets": [0, 0]}, "m.lora_B.weight": {"dtype": "F32", "data_offsets": [0, 0]}}',
    b'{"m.lora_A.weight": {"dtype": "F32", "shape": "8x2", "data_offsets": [0, 0]}, '
    b'"m.lora_B.weight": {"dtype": "F32", "shape": "2x8", "data_offsets": [0, 0]}}',
    b"[1, 2]", b'{"w": {"dtype": "F32"}}', b'{"w": "x"}', b"\xff\xfe"])
def test_a_malformed_adapter_file_costs_points_with_a_reason_never_a_traceback(graded, tmp_path, header):
    import struct
    gold, report = graded
    adapter = tmp_path / "saved" / "CoLA"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "target_modules": ["q_proj"],
                                                             "base_model_name_or_path": "/m"}))
    (adapter / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    result = report(gold, {"result_CoLA.txt": gold})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    part = json.loads(result.stdout)["data_sets"][0]["adapter"]
    assert part["points"] == 0 and any("adapter_model.safetensors cannot be read" in r for r in part["reasons"])
