"""What data_process, train and predict must agree on: the tasks, the prompt, and how answers are read.

A prompt is built in one place (`build_prompt`) and an answer is read back in one place
(`read_label`), so training and prediction can never disagree about either. No torch here: this
module is imported by the light scripts (data_process, grade) too.
"""
from __future__ import annotations

import difflib
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence

LABELS = ("0", "1")   # what the exam expects in result files; "0" and "1" are single Gemma tokens


@dataclass(frozen=True)
class Task:
    name: str
    template: str       # the instruction, with {label0} / {label1} where the answer words go
    text_fields: tuple  # names of the text fields that make up the model input, in order
    positive: str       # what label 1 means, for reports

    @property
    def instruction(self) -> str:
        """The instruction with the exam's own answers, 0 and 1."""
        return instruction_for(self)


TASKS: Dict[str, Task] = {
    "CoLA": Task(
        name="CoLA",
        template=(
            "Decide whether the following English sentence is grammatically acceptable. "
            "Answer {label1} if it is acceptable and {label0} if it is not."
        ),
        text_fields=("sentence",),
        positive="acceptable",
    ),
    "QQP": Task(
        name="QQP",
        template=(
            "Decide whether the two questions below ask the same thing, so that one answer would serve both. "
            "Answer {label1} if they are duplicates and {label0} if they are not."
        ),
        text_fields=("question1", "question2"),
        positive="duplicate",
    ),
    "SST-2": Task(
        name="SST-2",
        template=(
            "Decide whether the sentiment of the following movie review sentence is positive or negative. "
            "Answer {label1} if it is positive and {label0} if it is negative."
        ),
        text_fields=("sentence",),
        positive="positive",
    ),
}

# The Alpaca template (tloen/alpaca-lora), which the exam's instruction/input/output JSON is made for.
# The answer follows the final newline directly: "0"/"1" carry no leading space in Gemma's vocabulary.
PROMPT_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)


def label_words(setting: str) -> tuple:
    """LABEL_WORDS ("0,1", "no,yes") as (word for label 0, word for label 1), checked."""
    words = tuple(w.strip() for w in setting.split(","))
    if len(words) != 2 or not all(words) or words[0].lower() == words[1].lower() or any(" " in w for w in words):
        raise ValueError(f"LABEL_WORDS={setting!r}: give two different words, the answer for label 0 first, "
                         f"separated by a comma (e.g. --label_words 0,1 or --label_words no,yes).")
    return words


def instruction_for(task: Task, custom: str = "", words: Sequence[str] = LABELS) -> str:
    """The instruction data_process writes: `custom` (INSTRUCTION) or the task's own, with the answer words in.

    A custom instruction may name the answers as {label0} / {label1} too; any other text in it is kept as is.
    """
    text = custom or task.template
    return text.replace("{label0}", words[0]).replace("{label1}", words[1])


def task_named(name: str) -> Task:
    """The task called `name`, forgiving case ("cola" is CoLA); an unknown name is refused with suggestions."""
    def plain(text: str) -> str:   # "sst2", "SST-2" and "sst_2" all name SST-2
        return "".join(c for c in text.lower() if c.isalnum())

    for task in TASKS.values():
        if plain(task.name) == plain(name):
            return task
    by_lower = {known.lower(): known for known in TASKS}   # compare without case, like the match above
    close = difflib.get_close_matches(name.strip().lower(), list(by_lower), n=1, cutoff=0.4)
    hint = f" Did you mean {by_lower[close[0]]}?" if close else ""
    raise ValueError(f"unknown data set {name!r}: use one of {', '.join(TASKS)}.{hint}")


def model_input(task: Task, fields: Sequence[str]) -> str:
    """The `input` text of one example, from its text fields in `task.text_fields` order."""
    if len(task.text_fields) == 1:
        return fields[0]
    # Label each question so the model never has to guess where one ends and the other begins.
    return "\n".join(f"Question {i}: {text}" for i, text in enumerate(fields, start=1))


def build_prompt(instruction: str, input_text: str) -> str:
    """The full prompt for one example; the model's answer comes right after it."""
    return PROMPT_TEMPLATE.format(instruction=instruction, input=input_text)


def prompt_parts(instruction: str, input_text: str) -> tuple:
    """The prompt split around its input, so a long input can be shortened without touching the rest."""
    head, tail = PROMPT_TEMPLATE.split("{input}")
    return head.format(instruction=instruction), input_text, tail


_WORDS_FOR = {   # 1.0 / 0.0: labels saved by pandas as floats, which data_process accepts in training files too
    "1": ("1", "1.0", "yes", "true", "acceptable", "duplicate", "positive", "correct"),
    "0": ("0", "0.0", "no", "false", "unacceptable", "not", "negative", "incorrect"),
}


def read_label(text: str, answer_words: Sequence[str] = LABELS) -> Optional[str]:
    """The label an answer stands for ("0" or "1"), or None when it is not a label.

    Reads model output and answer files alike: "1", " 1\n", "Yes", "True", "1. The sentence..." all
    give "1". Only the first word counts, so "0 1" is "0" (the model answered 0 first). answer_words
    (LABEL_WORDS) are the words the model was trained to give for 0 and 1; they count first.
    """
    words = text.strip().split()
    if not words:
        return None
    first = words[0].strip(".,:;!\"'()[]").lower()
    for label, word in zip(LABELS, answer_words):
        if first == word.lower():
            return label
    for label, words_for_label in _WORDS_FOR.items():
        if first in words_for_label:
            return label
    return None


def metrics(gold: Sequence[str], predicted: Sequence[Optional[str]]) -> dict:
    """Accuracy, Matthews correlation (CoLA's official metric), F1 of label 1 and the confusion counts.

    A missing or invalid prediction (None) counts as wrong. Written out rather than taken from
    scikit-learn so that grade.py starts fast and runs where only Python is installed.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    tp = sum(g == "1" and p == "1" for g, p in zip(gold, predicted))
    tn = sum(g == "0" and p == "0" for g, p in zip(gold, predicted))
    fp = sum(g == "0" and p == "1" for g, p in zip(gold, predicted))
    fn = sum(g == "1" and p == "0" for g, p in zip(gold, predicted))
    invalid = sum(p not in LABELS for p in predicted)
    n = len(gold)
    # An invalid answer is wrong whatever the gold label: it is a missed 1 for F1, and a third class that is
    # never right for the Matthews correlation (its K-class form, which is the usual one when K = 2).
    gold_count = {label: sum(g == label for g in gold) for label in LABELS}
    predicted_count = {label: sum(p == label for p in predicted) for label in LABELS}
    covariance = (tp + tn) * n - sum(gold_count[label] * predicted_count[label] for label in LABELS)
    spread_gold = n * n - sum(count * count for count in gold_count.values())
    spread_predicted = n * n - sum(count * count for count in predicted_count.values()) - invalid * invalid
    denominator = math.sqrt(spread_gold * spread_predicted)
    return {
        "n": n,
        "correct": tp + tn,
        "accuracy": (tp + tn) / n if n else 0.0,
        "mcc": covariance / denominator if denominator else 0.0,
        "f1": 2 * tp / (gold_count["1"] + predicted_count["1"]) if tp else 0.0,
        "confusion": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
        "invalid": invalid,
    }


def decisions(margins: Sequence[float], threshold: float = 0.0) -> List[str]:
    """Label 1 where the margin (label 1's logit less label 0's) is above the threshold, else 0. At threshold 0
    this is the likelier label, a tie answering 0."""
    return [LABELS[1] if m > threshold else LABELS[0] for m in margins]


def tuned_threshold(margins: Sequence[float], gold: Sequence[str], min_gain: float) -> float:
    """The margin threshold with the best accuracy on labelled rows (the holdout), or 0 unless it beats the plain
    decision by at least min_gain (a share of the rows): a gain of a row or two is noise, not a bias to correct.

    The candidates are the midpoints between neighbouring margins and one beyond each end; among equally accurate
    ones, the one nearest their median: away from the rows on either side. One sweep over the sorted margins
    counts every candidate's correct answers (a holdout of thousands costs no more than a sort).
    """
    if not margins:
        return 0.0
    ordered = sorted(set(margins))
    ones_at, zeros_at = Counter(), Counter()   # gold 1s and 0s at each margin value
    for margin, label in zip(margins, gold):
        if label == LABELS[1]:
            ones_at[margin] += 1
        elif label == LABELS[0]:
            zeros_at[margin] += 1
    # Candidate j answers 1 from ordered[j] up: correct = the 0s below it + the 1s from it on.
    correct, zeros_below, ones_from = [], 0, sum(ones_at.values())
    for value in ordered:
        correct.append(zeros_below + ones_from)
        zeros_below, ones_from = zeros_below + zeros_at[value], ones_from - ones_at[value]
    correct.append(zeros_below + ones_from)
    candidates = [ordered[0] - 1.0] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])] + [ordered[-1] + 1.0]
    n = len(gold)
    plain = metrics(gold, decisions(margins))["accuracy"]
    best = max(max(correct) / n, plain)
    if best - plain < min_gain:
        return 0.0
    best_ones = [t for t, right in zip(candidates, correct) if right / n == best]
    middle = statistics.median(best_ones)
    return min(best_ones, key=lambda t: (abs(t - middle), abs(t)))


def format_metrics(m: dict) -> str:
    """One line for people: `k/n = x %`, then MCC and F1."""
    line = f"{m['correct']}/{m['n']} = {100 * m['accuracy']:.2f} %   MCC {m['mcc']:.3f}   F1 {m['f1']:.3f}"
    if m["invalid"]:
        line += f"   ({m['invalid']} answers were not a label)"
    return line


def label_counts(labels: List[Optional[str]]) -> str:
    """`0: 60 %, 1: 40 %` style summary of a list of labels."""
    n = len(labels) or 1
    parts = [f"{label}: {labels.count(label)} ({100 * labels.count(label) / n:.0f} %)" for label in LABELS]
    others = len(labels) - sum(labels.count(label) for label in LABELS)
    if others:
        parts.append(f"not a label: {others}")
    return ", ".join(parts)


# --- result and answer files: one label a line, optionally with an index column and a header ---------

@dataclass(frozen=True)
class LabelFileLayout:
    header: Optional[str] = None     # the header line, when the file has one
    index_start: Optional[int] = None   # first index when lines are `index<TAB>label`, else None

    def format(self, labels: Sequence[str]) -> str:
        lines = [self.header] if self.header is not None else []
        if self.index_start is None:
            lines += list(labels)
        else:
            lines += [f"{self.index_start + i}\t{label}" for i, label in enumerate(labels)]
        return "\n".join(lines) + "\n"


HEADER_WORDS = {"label", "labels", "prediction", "predictions", "predicted", "answer", "answers", "result", "results",
                "index", "idx", "id", "is_duplicate", "acceptable", "sentiment", "output", "pred", "y"}


def is_obvious_header(line: str) -> bool:
    """A first line that names columns (`index<TAB>prediction`, `label`): every word a known column name. Any other
    line that is not a label is a wrong answer in its place, never a header: else every later answer would shift."""
    words = [w.strip(".,:;\"'()[]#").lower() for w in line.replace(",", " ").split()]
    return bool(words) and all(w in HEADER_WORDS for w in words)


class LabelProblem(NamedTuple):
    """A line of a label file that could not be read as an answer: its number (from 1) and what is wrong."""
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line} is blank" if self.text == "blank" else f"line {self.line}: {self.text}"


def parse_label_file(text: str) -> tuple:
    """(labels, layout, problems) of a result or answer file.

    Accepts one label a line, `index<TAB>label` (or space-separated), an optional header line, and
    labels written as 0/1, yes/no or True/False. A line that is blank or not a label gives None at
    its position (it counts as wrong) and is listed in problems; blank lines at the end are ignored.
    """
    lines = [line.rstrip("\r") for line in text.lstrip("\ufeff").split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    header = None
    if lines and is_obvious_header(lines[0]) and read_label(lines[0].split()[-1]) is None:   # "acceptable" is an answer
        header = lines.pop(0)
    split_lines = [line.split() for line in lines]
    indexed = bool(split_lines) and all(len(p) == 2 and p[0].isdigit() for p in split_lines if p)
    labels: List[Optional[str]] = []
    problems: List[str] = []
    for number, parts in enumerate(split_lines, start=2 if header is not None else 1):
        label = read_label(parts[-1]) if parts else None
        if label is None:
            problems.append(LabelProblem(number, f"{' '.join(parts)!r} is not a label" if parts else "blank"))
        labels.append(label)
    first_index = next((int(parts[0]) for parts in split_lines if parts), None) if indexed else None
    if indexed:   # answers are matched by position: an index out of order means a line is misplaced
        start = next(i for i, parts in enumerate(split_lines) if parts)
        for position, parts in enumerate(split_lines):
            if parts and int(parts[0]) != first_index + position - start:
                number = position + (2 if header is not None else 1)
                problems.append(LabelProblem(number, f"index {parts[0]} where {first_index + position - start} was "
                                                     f"expected (answers are matched by line, not by index)"))
                break
    return labels, LabelFileLayout(header, first_index), problems
