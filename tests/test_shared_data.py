"""data_process on the real GLUE files in ../shared/data (see its SOURCES.md); skipped where they are absent.

The files are copied into tmp_path under the names the exam uses (<ds>_train.tsv, <ds>_dev.tsv), never into the
project. Expected values come from SOURCES.md and from an independent reading of each file (a plain tab split,
or Python's csv module for QQP's quoting), not from data_process itself.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import List

import pytest

import data_process
import tsv
import runtime
from conftest import run_script
from tasks import TASKS, model_input

COLA, QQP, SST2 = TASKS["CoLA"], TASKS["QQP"], TASKS["SST-2"]


def lines_of(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def stage(tmp_path: Path, task, train: Path, dev: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(train, data / f"{task.name}_train.tsv")
    shutil.copy(dev, data / f"{task.name}_dev.tsv")
    return data


def process(tmp_path: Path, task, train: Path, dev: Path, *args: str) -> dict:
    data = stage(tmp_path, task, train, dev)
    settings = runtime.load_settings(["--data_dir", str(data), "--pre_data_dir", str(tmp_path / "pre_data"), *args])
    data_process.process(task, data, settings)
    return {split: json.loads(runtime.pre_data_file(settings, task.name, split).read_text(encoding="utf-8"))
            for split in ("train", "val", "dev")}


def written(result, split: str) -> int:
    return int(re.search(rf"wrote\s+(\d+) {split} ", result.stdout).group(1))


# --- CoLA ------------------------------------------------------------------------------------------------

def test_cola_raw_train_every_row_accounted_for(shared_data, tmp_path, outputs):
    train_file, dev_file = shared_data / "CoLA" / "in_domain_train.tsv", shared_data / "CoLA" / "out_of_domain_dev.tsv"
    data = stage(tmp_path, COLA, train_file, dev_file)
    result = run_script("data_process.py", *outputs, "--data_dir", str(data))
    assert "[CoLA]" in result.stdout and "[QQP]" not in result.stdout
    assert "8551 rows read" in result.stdout and "skipped" not in result.stdout
    n_train, n_val, n_dev = written(result, "train"), written(result, "val"), written(result, "dev")
    assert (n_train, n_val, n_dev) == (4000, 400, 516)

    rows = [line.split("\t") for line in lines_of(train_file)]
    assert len(rows) == 8551 and {len(r) for r in rows} == {4}
    in_file = Counter((r[3], r[1]) for r in rows)
    pre = tmp_path / "pre_data" / "CoLA"
    out = {split: json.loads((pre / f"CoLA_{split}.json").read_text(encoding="utf-8")) for split in ("train", "val")}
    used = Counter((e["input"], e["output"]) for e in out["train"] + out["val"])
    assert not used - in_file                      # every example is a row of the file, with its own label
    not_sampled = in_file - used
    assert sum(not_sampled.values()) == 8551 - 4000 - 400    # read == written + holdout + not sampled
    zeros = sum(r[1] == "0" for r in rows)
    held_zeros = round(400 * zeros / 8551)                 # stratified: the file's share of 0 in both samples
    assert sum(e["output"] == "0" for e in out["val"]) == held_zeros
    held = {e["input"] for e in out["val"]}
    rest = [r for r in rows if r[3] not in held]           # a holdout text never goes to training, in any copy
    assert not held & {e["input"] for e in out["train"]} and len(rest) < 8551 - 400   # CoLA repeats some sentences
    assert sum(e["output"] == "0" for e in out["train"]) == round(4000 * sum(r[1] == "0" for r in rest) / len(rest))


def test_cola_out_of_domain_dev_quirks(shared_data, tmp_path):
    dev_file = shared_data / "CoLA" / "out_of_domain_dev.tsv"
    assert not dev_file.read_bytes().endswith(b"\n")       # the quirk under test is still there
    out = process(tmp_path, COLA, shared_data / "CoLA" / "in_domain_train.tsv", dev_file)
    expected = [line.split("\t")[3] for line in lines_of(dev_file)]
    assert len(out["dev"]) == 516 and [e["input"] for e in out["dev"]] == expected
    assert out["dev"][-1]["input"] == "John talked to Bill about himself."   # the row without a final newline
    position = next(i for i, line in enumerate(lines_of(dev_file)) if line == "s_97\t1\t \tWho always drinks milk?")
    assert out["dev"][position]["input"] == "Who always drinks milk?"        # the " " annotation did not leak
    assert all(e["output"] == "" for e in out["dev"])


@pytest.mark.parametrize("name, count", [("in_domain_dev.tsv", 527), ("glue/dev.tsv", 1043)])
def test_cola_labelled_dev_files_lose_their_labels(shared_data, tmp_path, name, count):
    dev_file = shared_data / "CoLA" / name
    out = process(tmp_path, COLA, shared_data / "CoLA" / "in_domain_train.tsv", dev_file)
    assert [e["input"] for e in out["dev"]] == [line.split("\t")[3] for line in lines_of(dev_file)]
    assert len(out["dev"]) == count and {e["output"] for e in out["dev"]} == {""}


def test_cola_glue_test_layout_as_dev(shared_data, tmp_path):
    dev_file = shared_data / "CoLA" / "glue" / "test.tsv"
    lines = lines_of(dev_file)
    assert lines[0] == "index\tsentence"
    out = process(tmp_path, COLA, shared_data / "CoLA" / "in_domain_train.tsv", dev_file)
    assert len(out["dev"]) == 1063
    assert [e["input"] for e in out["dev"]] == [line.split("\t", 1)[1] for line in lines[1:]]
    assert out["dev"][0]["input"] == "Bill whistled past the house."


def test_cola_train_keeps_literal_quotes_and_the_unannotated_zero(shared_data):
    rows, bad, n = tsv.read_rows(COLA, shared_data / "CoLA" / "in_domain_train.tsv", labelled=True)
    assert (len(rows), bad, n) == (8551, {}, 8551)
    by_line = {row.line: row for row in rows}
    assert by_line[3057].texts == ['Susan whispered "Shut up".']
    assert by_line[3058].texts == ['Susan whispered "Shut up" at them.']
    r67 = [row for row in rows if row.texts == ["That he ever went there alone is certain."]]
    assert [row.label for row in r67] == ["0"]
    assert Counter(row.label for row in rows) == Counter(line.split("\t")[1] for line in
                                                         lines_of(shared_data / "CoLA" / "in_domain_train.tsv"))


# --- QQP -------------------------------------------------------------------------------------------------

def test_qqp_train_subset_noheader(shared_data, tmp_path, capsys):
    train_file = shared_data / "QQP" / "train_subset_noheader.tsv"
    out = process(tmp_path, QQP, train_file, shared_data / "QQP" / "test.tsv")
    printed = capsys.readouterr().out
    assert "23497 rows read; skipped 1 unreadable: line 1 (5 fields instead of 6)" in printed
    assert (len(out["train"]), len(out["val"]), len(out["dev"])) == (4000, 400, 9)

    rows, bad, n = tsv.read_rows(QQP, train_file, labelled=True)
    assert (len(rows), list(bad), n) == (23496, [1], 23497)
    assert Counter(row.label for row in rows) == {"0": 14749, "1": 8747}
    with open(train_file, encoding="utf-8", newline="") as f:   # the reference reading: a CSV reader, tab-separated
        reference = [fields for fields in csv.reader(f, delimiter="\t")][1:]
    assert [row.texts for row in rows] == [[fields[3].strip(), fields[4].strip()] for fields in reference]
    assert [row.label for row in rows] == [fields[5] for fields in reference]
    raw_fields = [line.split("\t")[3:5] for line in lines_of(train_file)[1:]]
    assert sum(field.startswith('"') for pair in raw_fields for field in pair) == 946
    texts = {text for row in rows for text in row.texts}
    assert 'Is "rightness" just a judgment of an observer or is it ever a property of an action?' in texts

    used = Counter((e["input"], e["output"]) for e in out["train"] + out["val"])
    in_file = Counter((model_input(QQP, row.texts), row.label) for row in rows)
    assert not used - in_file and sum((in_file - used).values()) == 23496 - 4400


def test_qqp_glue_heads(shared_data, tmp_path):
    qqp = shared_data / "QQP"
    assert lines_of(qqp / "train.tsv")[0] == lines_of(qqp / "dev.tsv")[0] == \
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    out = process(tmp_path, QQP, qqp / "train.tsv", qqp / "dev.tsv", "--holdout_size", "2")
    assert (len(out["train"]), len(out["val"]), len(out["dev"])) == (7, 2, 9)
    assert out["dev"][0]["input"] == ("Question 1: Why are African-Americans so beautiful?\n"
                                      "Question 2: Why are hispanics so beautiful?")
    assert {e["output"] for e in out["dev"]} == {""}
    first_train = lines_of(qqp / "train.tsv")[1].split("\t")
    assert first_train[5] == "0"   # the head keeps the tab that the subset lost
    assert model_input(QQP, first_train[3:5]) in [e["input"] for e in out["train"] + out["val"]]

    test = process(tmp_path / "test", QQP, qqp / "train.tsv", qqp / "test.tsv", "--holdout_size", "2")["dev"]
    lines = lines_of(qqp / "test.tsv")
    assert lines[0] == "id\tquestion1\tquestion2"
    assert [e["input"] for e in test] == [model_input(QQP, line.split("\t")[1:]) for line in lines[1:]]


# --- SST-2 -----------------------------------------------------------------------------------------------

def test_sst2_train_dev_and_test(shared_data, tmp_path):
    sst = shared_data / "SST-2"
    out = process(tmp_path, SST2, sst / "train.tsv", sst / "dev.tsv")
    rows, bad, n = tsv.read_rows(SST2, sst / "train.tsv", labelled=True)
    assert (len(rows), bad, n) == (67349, {}, 67349)
    assert Counter(row.label for row in rows) == {"0": 29780, "1": 37569}
    assert (len(out["train"]), len(out["val"])) == (4000, 400)
    assert sum(e["output"] == "0" for e in out["val"]) == round(400 * 29780 / 67349)
    used = Counter((e["input"], e["output"]) for e in out["train"] + out["val"])
    in_file = Counter((line.split("\t")[0].strip(), line.split("\t")[1]) for line in lines_of(sst / "train.tsv")[1:])
    assert not used - in_file
    assert any(line.split("\t")[0].endswith(" ") for line in lines_of(sst / "train.tsv")[1:])   # the quirk is there
    assert not any(e["input"] != e["input"].strip() for split in out.values() for e in split)

    dev_lines = lines_of(sst / "dev.tsv")
    assert dev_lines[0] == "sentence\tlabel" and len(out["dev"]) == 872
    assert [e["input"] for e in out["dev"]] == [line.split("\t")[0].strip() for line in dev_lines[1:]]

    test = process(tmp_path / "test", SST2, sst / "train.tsv", sst / "test.tsv")["dev"]
    test_lines = lines_of(sst / "test.tsv")
    assert test_lines[0] == "index\tsentence" and len(test) == 1821
    assert [e["input"] for e in test] == [line.split("\t")[1].strip() for line in test_lines[1:]]
    assert {e["output"] for e in test} == {""}
