"""tasks: the one prompt, the one answer reader, the metrics and the result-file layouts. No torch."""
from __future__ import annotations

import math
import random

import pytest

from tasks import (LABELS, PROMPT_TEMPLATE, TASKS, LabelFileLayout, build_prompt, format_metrics, label_counts,
                   metrics, model_input, parse_label_file, prompt_parts, read_label, task_named)

# --- the prompt ------------------------------------------------------------------------------------------

PROMPT_CASES = [
    (TASKS["CoLA"].instruction, "The cat sat on the mat."),
    (TASKS["QQP"].instruction, model_input(TASKS["QQP"], ["How do I {learn} Python?", 'Is "x" {input} y?'])),
    ("Braces {instruction} and {input} in an instruction stay text.", "{}{0}{input}"),
    ("Unicode 你好", "Café — naïve\nsecond line\n"),
    ("", ""),
]


@pytest.mark.parametrize("instruction, input_text", PROMPT_CASES)
def test_prompt_parts_reassemble_to_the_prompt(instruction, input_text):
    prompt = build_prompt(instruction, input_text)
    head, middle, tail = prompt_parts(instruction, input_text)
    assert head + middle + tail == prompt
    assert middle == input_text
    assert prompt.endswith("### Response:\n") and tail.endswith("### Response:\n")
    assert head.endswith("### Input:\n") and f"### Instruction:\n{instruction}\n\n" in head


def test_prompt_is_the_alpaca_template_with_both_fields_once():
    prompt = build_prompt("INSTRUCTION", "INPUT")
    assert prompt.count("INSTRUCTION") == 1 and prompt.count("INPUT") == 1
    assert prompt.index("INSTRUCTION") < prompt.index("INPUT")
    assert prompt == PROMPT_TEMPLATE.replace("{instruction}", "INSTRUCTION").replace("{input}", "INPUT")


def test_every_task_has_an_instruction_that_names_both_answers():
    for task in TASKS.values():
        assert "Answer 1 if" in task.instruction and " 0 if " in task.instruction, task.name
        assert task.text_fields and task.positive


# --- reading an answer back ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, label", [
    ("1", "1"), ("0", "0"), (" 0\n", "0"), ("\t1 \n", "1"), ("Yes", "1"), ("no", "0"), ("True", "1"), ("FALSE", "0"),
    ("1. because it is fine", "1"), ("0, since the verb is missing", "0"), ('"1"', "1"), ("(0)", "0"),
    ("Acceptable.", "1"), ("Unacceptable", "0"), ("Not acceptable", "0"), ("0 1", "0"),
    ("", None), ("   \n", None), ("maybe", None), ("2", None), ("10", None), ("the answer is 1", None), ("yess", None),
])
def test_read_label(text, label):
    assert read_label(text) == label


def test_labels_are_the_exam_labels():
    assert LABELS == ("0", "1")


def test_answers_built_from_labels_read_back():
    for label in LABELS:
        assert read_label(label) == label and read_label(f" {label}\n") == label


# --- metrics ---------------------------------------------------------------------------------------------

def test_metrics_by_hand_with_an_invalid_answer():
    m = metrics(["1", "1", "0", "0"], ["1", None, "0", "1"])
    assert m["n"] == 4 and m["correct"] == 2 and m["accuracy"] == 0.5 and m["invalid"] == 1
    assert m["confusion"] == {"tp": 1, "tn": 1, "fp": 1, "fn": 0}
    assert m["f1"] == pytest.approx(0.5)            # precision 1/2, recall 1/2: the unanswered 1 is missed
    assert m["mcc"] == pytest.approx(2 / math.sqrt(80))


def test_metrics_perfect_constant_and_empty():
    gold = ["0", "1", "1", "0", "1"]
    perfect = metrics(gold, gold)
    assert perfect["accuracy"] == 1 and perfect["mcc"] == pytest.approx(1) and perfect["f1"] == pytest.approx(1)
    inverted = metrics(gold, ["1" if g == "0" else "0" for g in gold])
    assert inverted["accuracy"] == 0 and inverted["mcc"] == pytest.approx(-1) and inverted["f1"] == 0
    constant = metrics(gold, ["1"] * 5)
    assert constant["accuracy"] == 0.6 and constant["mcc"] == 0 and constant["f1"] == pytest.approx(0.75)
    nothing = metrics(gold, [None] * 5)
    assert nothing["accuracy"] == 0 and nothing["f1"] == 0 and nothing["invalid"] == 5 and nothing["mcc"] == 0
    assert metrics([], [])["accuracy"] == 0.0
    with pytest.raises(ValueError):
        metrics(["1"], [])


@pytest.mark.parametrize("seed", range(30))
def test_metrics_match_scikit_learn(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    gold = [rng.choice(LABELS) for _ in range(n)]
    invalid_share = rng.choice([0, 0.1, 0.5])
    predicted = [None if rng.random() < invalid_share else rng.choice(LABELS) for _ in range(n)]
    m = metrics(gold, predicted)
    as_text = ["invalid" if p is None else p for p in predicted]   # scikit-learn wants one type; None is its own class
    assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, as_text))
    assert m["mcc"] == pytest.approx(sklearn_metrics.matthews_corrcoef(gold, as_text), abs=1e-12)
    f1 = sklearn_metrics.f1_score(gold, as_text, labels=["1"], average=None, zero_division=0)[0]
    assert m["f1"] == pytest.approx(f1)
    if invalid_share == 0:   # the usual binary case: the binary scores agree too
        assert m["f1"] == pytest.approx(sklearn_metrics.f1_score(gold, as_text, pos_label="1", zero_division=0))
        tn, fp, fn, tp = sklearn_metrics.confusion_matrix(gold, as_text, labels=["0", "1"]).ravel()
        assert m["confusion"] == {"tp": tp, "tn": tn, "fp": fp, "fn": fn}


def test_format_metrics_line():
    line = format_metrics(metrics(["1", "0", "1", "1"], ["1", "0", "0", None]))
    assert line.startswith("2/4 = 50.00 %") and "MCC" in line and "F1" in line
    assert "(1 answers were not a label)" in line
    assert "not a label" not in format_metrics(metrics(["1"], ["1"]))


def test_label_counts():
    assert label_counts(["0", "1", "1", "1"]) == "0: 1 (25 %), 1: 3 (75 %)"
    assert label_counts(["1", None]) == "0: 0 (0 %), 1: 1 (50 %), not a label: 1"
    assert label_counts([]) == "0: 0 (0 %), 1: 0 (0 %)"


# --- result and answer files -----------------------------------------------------------------------------

LAYOUTS = [
    LabelFileLayout(),
    LabelFileLayout(header="label"),
    LabelFileLayout(header="prediction"),
    LabelFileLayout(index_start=0),
    LabelFileLayout(index_start=1),
    LabelFileLayout(header="index\tprediction", index_start=0),
    LabelFileLayout(header="id\tlabel", index_start=1),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", [1, 7, 150])
def test_label_file_round_trip(layout, n):
    labels = [random.Random(n).choice(LABELS) for _ in range(n)]
    text = layout.format(labels)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert len(text.splitlines()) == n + (layout.header is not None)
    assert parse_label_file(text) == (labels, layout, [])
    assert parse_label_file(text + "\n\n  \n") == (labels, layout, [])     # trailing blank lines are not answers
    assert parse_label_file(text.replace("\n", "\r\n")) == (labels, layout, [])
    assert parse_label_file("\ufeff" + text) == (labels, layout, [])


def test_label_file_format():
    assert LabelFileLayout().format(["1", "0"]) == "1\n0\n"
    assert LabelFileLayout(header="index\tlabel", index_start=0).format(["1", "0"]) == "index\tlabel\n0\t1\n1\t0\n"
    assert LabelFileLayout(index_start=1).format(["0"]) == "1\t0\n"


def test_label_file_words_and_space_separated_index():
    assert parse_label_file("yes\nNo\nTRUE\nfalse\n")[0] == ["1", "0", "1", "0"]
    labels, layout, problems = parse_label_file("1 yes\n2 no\n3 1\n")
    assert labels == ["1", "0", "1"] and layout == LabelFileLayout(index_start=1) and not problems


def test_label_file_blank_and_bad_lines_count_as_wrong_in_place():
    labels, layout, problems = parse_label_file("label\n1\n\n0\nmaybe\n1\n\n")
    assert labels == ["1", None, "0", None, "1"] and layout == LabelFileLayout(header="label")
    assert list(map(str, problems)) == ["line 3 is blank", "line 5: 'maybe' is not a label"]
    assert [p.line for p in problems] == [3, 5]
    labels, layout, problems = parse_label_file("0\t1\n1\tmaybe\n2\t0\n")
    assert labels == ["1", None, "0"] and layout.index_start == 0 and list(map(str, problems)) == ["line 2: '1 maybe' is not a label"]


def test_label_file_index_with_leading_blank_line_keeps_its_index():
    labels, layout, problems = parse_label_file("\n0\t1\n1\t0\n")
    assert labels == [None, "1", "0"] and layout.index_start == 0 and list(map(str, problems)) == ["line 1 is blank"]


def test_empty_label_file():
    assert parse_label_file("") == ([], LabelFileLayout(), [])
    assert parse_label_file("\n\n") == ([], LabelFileLayout(), [])


# --- task names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("cola", "CoLA"), ("CoLA", "CoLA"), (" COLA ", "CoLA"), ("qqp", "QQP"),
                                            ("sst-2", "SST-2"), ("sst2", "SST-2"), ("SST_2", "SST-2")])
def test_task_named_forgives_case_and_dashes(name, expected):
    assert task_named(name) is TASKS[expected]


@pytest.mark.parametrize("typo, suggestion", [("cloa", "CoLA"), ("CLoa", "CoLA"), ("cola2", "CoLA"), ("qqq", "QQP"),
                                              ("SST", "SST-2")])
def test_task_named_suggests_for_a_typo(typo, suggestion):
    with pytest.raises(ValueError) as error:
        task_named(typo)
    assert f"Did you mean {suggestion}?" in str(error.value)
    assert "CoLA, QQP, SST-2" in str(error.value)


def test_task_named_unknown_without_a_close_name():
    with pytest.raises(ValueError) as error:
        task_named("imagenet")
    assert "Did you mean" not in str(error.value) and "use one of CoLA, QQP, SST-2" in str(error.value)


def test_tuned_threshold_corrects_a_bias_and_stays_at_zero_without_one():
    from tasks import decisions, tuned_threshold
    gold = ["0"] * 50 + ["1"] * 50
    # Ranks every row right, but prefers 1 too readily (as the untrained model does): 1 from the 4th row on.
    margins = [(m - 3.0) / 10 for m in range(100)]
    threshold = tuned_threshold(margins, gold, min_gain=0.01)
    assert decisions(margins, threshold) == gold and 4.6 < threshold < 4.7
    unbiased = [m - 49.5 for m in range(100)]
    assert tuned_threshold(unbiased, gold, min_gain=0.01) == 0.0   # already right at 0: nothing to gain
    assert tuned_threshold(margins, gold, min_gain=0.5) == 0.0     # a gain below min_gain is not taken
    assert decisions([0.0, 0.1, -0.1]) == ["0", "1", "0"]          # a tie answers 0, as the argmax does
