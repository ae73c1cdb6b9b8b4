"""INSTRUCTION and LABEL_WORDS: what the model is told and what it answers, while pre_data and the result
files keep the exam's 0 / 1."""
from __future__ import annotations

import json

import pytest

from conftest import run_script
from tasks import TASKS, instruction_for, label_words, read_label
from tiny_gemma import TINY_TRAINING


def test_label_words_are_parsed_and_checked():
    assert label_words("0,1") == ("0", "1")
    assert label_words(" no , yes ") == ("no", "yes")
    for bad in ("1", "yes,yes", "Yes,yes", "a,b,c", "not it,yes", ",1"):
        with pytest.raises(ValueError, match="LABEL_WORDS"):
            label_words(bad)


def test_the_instruction_names_the_answer_words():
    cola = TASKS["CoLA"]
    assert "Answer 1 if it is acceptable and 0 if it is not." in cola.instruction   # the exam's answers by default
    assert "Answer yes if it is acceptable and no if it is not." in instruction_for(cola, "", ("no", "yes"))
    custom = "Is this grammatical? Say {label1} or {label0}. {braces} stay."
    assert instruction_for(cola, custom, ("no", "yes")) == "Is this grammatical? Say yes or no. {braces} stay."


def test_free_answers_are_read_through_the_answer_words_first():
    assert read_label("Good.", ("bad", "good")) == "1" and read_label("bad", ("bad", "good")) == "0"
    assert read_label("yes", ("n", "y")) == "1"            # the usual spellings still count
    assert read_label("maybe", ("bad", "good")) is None


def test_an_unknown_label_words_setting_is_refused_before_any_work(tmp_path, outputs):
    result = run_script("data_process.py", *outputs, "--label_words", "yes", check=False)
    assert result.returncode == 2 and "LABEL_WORDS='yes'" in result.stderr and "--label_words 0,1" in result.stderr
    assert not (tmp_path / "pre_data").exists()


def test_exam_flow_with_other_words_keeps_0_and_1_in_files(tmp_path, tiny_gemma, synthetic_data, outputs):
    """The tiny Gemma learns to answer y / n (single tokens for its tokenizer); pre_data and the result file still
    hold 0 / 1; predicting with other words than the adapter learnt is refused, and so are words of two tokens."""
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
                       "--answer_dir", str(synthetic_data / "answers"), "--data_set", "CoLA", "--label_words", "n,y",
                       "--instruction", "Tell {label1} from {label0}."]
    run_script("data_process.py", *where, "--max_samples", "600", "--holdout_size", "100")
    train_json = json.loads((tmp_path / "pre_data" / "CoLA" / "CoLA_train.json").read_text())
    assert {e["output"] for e in train_json} == {"0", "1"}
    assert {e["instruction"] for e in train_json} == {"Tell y from n."}

    trained = run_script("train.py", *where, *TINY_TRAINING)
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    assert record["holdout_accuracy"] >= 0.9, trained.stdout[-2000:]
    assert record["settings"]["LABEL_WORDS"] == "n,y"

    run_script("predict.py", *where)
    lines = (tmp_path / "questionB" / "result_CoLA.txt").read_text().splitlines()
    assert len(lines) == 150 and set(lines) == {"0", "1"}
    graded = json.loads(run_script("grade.py", *where, "--json").stdout)["data_sets"][0]
    assert graded["accuracy"]["metrics"]["accuracy"] >= 0.9
    generated = run_script("predict.py", *where, "--split", "val", "--decode", "generate", "--max_new_tokens", "2")
    assert "holdout CoLA (generate): 100/100" in generated.stdout      # free "y" / "n" read back as 1 / 0

    refused = run_script("predict.py", *where[:-4], check=False)      # the default 0,1 against an n,y adapter
    assert refused.returncode == 2 and "trained to answer n,y" in refused.stderr and "--label_words n,y" in refused.stderr
    two_tokens = run_script("train.py", *where[:-4], "--label_words", "no,yes", "--max_steps", "1", check=False)
    assert two_tokens.returncode == 2 and "'no' as one token" in two_tokens.stderr
