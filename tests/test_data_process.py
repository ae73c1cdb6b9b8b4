"""data_process: every input layout the exam may hand us, the JSON it writes, and how it samples.

Most tests call its functions (fast); a few run the real command line. No torch.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import List

import pytest

import data_process
import tsv
import runtime
from conftest import run_script
from runtime import UserError
from tasks import TASKS, model_input

COLA, QQP, SST2 = TASKS["CoLA"], TASKS["QQP"], TASKS["SST-2"]

# Dev sentences with the traps a reader can fall into: literal quotes (CoLA keeps them), a sentence that is
# wholly quoted, non-ASCII text, and words that look like labels or annotations.
DEV_SENTENCES = [
    "The cat sat on the mat.",
    'Susan whispered "Shut up".',
    '"Who left?"',
    "1 gave Mary a book.",
    "Café naïve: 你好, déjà vu.",
    "* is an annotation, not a sentence start.",
    "Yes, the sentence has commas, and a final word 0",
    "Bill whistled past the house.",
]


def write_lines(path: Path, lines: List[str], final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + ("\n" if final_newline else "")).encode("utf-8"))
    return path


def cola_train_lines(n: int = 200) -> List[str]:
    """Raw CoLA layout: source, label, annotation, sentence; exactly 70 % acceptable, sentence i names its row."""
    lines = []
    for i in range(n):
        label = 1 if i % 10 < 7 else 0
        lines.append(f"src{i % 5}\t{label}\t{'' if label else '*'}\tTrain sentence {i} is {'fine' if label else 'bad'}.")
    return lines


def row_of(text: str) -> int:
    return int(re.search(r"sentence (\d+) ", text).group(1))


def settings_for(tmp_path: Path, *args: str):
    return runtime.load_settings(["--data_dir", str(tmp_path / "data"), "--pre_data_dir", str(tmp_path / "pre_data"),
                                  "--holdout_size", "20", *args])


def process(tmp_path: Path, task, train: List[str], dev: List[str], *args: str, dev_newline: bool = True) -> dict:
    """Run data_process on these file contents; the three JSON lists it wrote."""
    data = tmp_path / "data"
    write_lines(data / f"{task.name}_train.tsv", train)
    write_lines(data / f"{task.name}_dev.tsv", dev, final_newline=dev_newline)
    settings = settings_for(tmp_path, *args)
    data_process.process(task, data, settings)
    return {split: json.loads(runtime.pre_data_file(settings, task.name, split).read_text(encoding="utf-8"))
            for split in ("train", "val", "dev")}


# --- CoLA ------------------------------------------------------------------------------------------------

COLA_DEV_LAYOUTS = {
    "4 columns, empty label": lambda s: [f"dev{i}\t\t{'*' if i % 2 else ''}\t{t}" for i, t in enumerate(s)],
    "4 columns, labelled like the raw dev files": lambda s: [f"dev{i}\t{i % 2}\t{'*' if i % 2 else ' '}\t{t}"
                                                             for i, t in enumerate(s)],
    "3 columns: id, annotation, sentence": lambda s: [f"dev{i}\t{'?*' if i % 2 else ''}\t{t}" for i, t in enumerate(s)],
    "2 columns: id, sentence": lambda s: [f"{i}\t{t}" for i, t in enumerate(s)],
    "1 column: sentence": lambda s: list(s),
    "GLUE test: header index, sentence": lambda s: ["index\tsentence"] + [f"{i}\t{t}" for i, t in enumerate(s)],
}


@pytest.mark.parametrize("layout", list(COLA_DEV_LAYOUTS))
@pytest.mark.parametrize("final_newline", [True, False])
def test_cola_dev_layouts_give_the_sentences_only_in_file_order(tmp_path, layout, final_newline):
    out = process(tmp_path, COLA, cola_train_lines(), COLA_DEV_LAYOUTS[layout](DEV_SENTENCES), dev_newline=final_newline)
    assert [e["input"] for e in out["dev"]] == DEV_SENTENCES   # no id, label or annotation; order and count kept
    assert all(e["output"] == "" and e["instruction"] == COLA.instruction for e in out["dev"])


def test_cola_train_reads_label_and_sentence_and_keeps_quotes(tmp_path):
    train = cola_train_lines(100) + ['q1\t1\t\t"John left."', 'q2\t0\t*\tSusan whispered "Shut up" at.']
    out = process(tmp_path, COLA, train, DEV_SENTENCES, "--holdout_size", "0", "--max_samples", "0")
    by_input = {e["input"]: e["output"] for e in out["train"]}
    assert len(by_input) == 102
    assert by_input['"John left."'] == "1" and by_input['Susan whispered "Shut up" at.'] == "0"
    for text, label in by_input.items():
        if text.startswith("Train"):
            assert label == ("1" if row_of(text) % 10 < 7 else "0")


def test_cola_train_with_crlf_and_byte_order_mark(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "CoLA_train.tsv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(cola_train_lines(50)).encode() + b"\r\n")
    write_lines(data / "CoLA_dev.tsv", DEV_SENTENCES)
    settings = settings_for(tmp_path, "--holdout_size", "0", "--max_samples", "0")
    data_process.process(COLA, data, settings)
    train = json.loads(runtime.pre_data_file(settings, "CoLA", "train").read_text(encoding="utf-8"))
    assert len(train) == 50 and not any("\r" in e["input"] or "\ufeff" in e["input"] for e in train)


def test_dev_row_with_wrong_field_count_is_an_error_naming_file_and_line(tmp_path):
    dev = COLA_DEV_LAYOUTS["4 columns, empty label"](DEV_SENTENCES)
    dev[4] = "dev4\t\tA row that lost a column."
    path = write_lines(tmp_path / "CoLA_dev.tsv", dev)
    with pytest.raises(UserError) as error:
        tsv.read_rows(COLA, path, labelled=False)
    assert str(path) in str(error.value) and "line 5" in str(error.value)


def test_dev_row_error_through_the_command_line(tmp_path, outputs):
    data = tmp_path / "data"
    write_lines(data / "CoLA_train.tsv", cola_train_lines(60))
    dev = ["index\tsentence"] + [f"{i}\t{t}" for i, t in enumerate(DEV_SENTENCES)]
    dev[3] = "2\tone\ttab too many"
    write_lines(data / "CoLA_dev.tsv", dev)
    result = run_script("data_process.py", *outputs, "--data_dir", str(data), "--holdout_size", "5", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CoLA_dev.tsv, line 4" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "pre_data" / "CoLA" / "CoLA_dev.json").exists()


def test_malformed_train_rows_are_skipped_and_reported_with_line_numbers(tmp_path, capsys):
    train = cola_train_lines(100)
    train[6] = "src1\t1\tA row without its annotation column."   # line 7
    train[41] = "src1\tmaybe\t\tA row whose label is not 0 or 1."  # line 42
    out = process(tmp_path, COLA, train, DEV_SENTENCES, "--holdout_size", "0", "--max_samples", "0")
    printed = capsys.readouterr().out
    assert "100 rows read" in printed and "skipped 2 unreadable" in printed
    assert "line 7 (3 fields instead of 4)" in printed and "line 42 (label 'maybe' is not 0 or 1)" in printed
    assert len(out["train"]) == 98 and {row_of(e["input"]) for e in out["train"]}.isdisjoint({6, 41})


def test_malformed_train_row_through_the_command_line(tmp_path, outputs):
    data = tmp_path / "data"
    train = cola_train_lines(100)
    train[9] = "src1 0 * spaces instead of tabs"   # line 10
    write_lines(data / "CoLA_train.tsv", train)
    write_lines(data / "CoLA_dev.tsv", DEV_SENTENCES)
    result = run_script("data_process.py", *outputs, "--data_dir", str(data), "--holdout_size", "10")
    assert "skipped 1 unreadable: line 10 (1 fields instead of 4)" in result.stdout
    assert re.search(r"wrote\s+89 train", result.stdout) and re.search(r"wrote\s+10 val", result.stdout)
    assert re.search(r"wrote\s+8 dev", result.stdout)


def test_too_many_unreadable_train_rows_stop_with_advice(tmp_path):
    train = [line.replace("\t", ",") if i % 3 == 0 else line for i, line in enumerate(cola_train_lines(100))]
    with pytest.raises(UserError, match="MAX_BAD_SHARE"):
        process(tmp_path, COLA, train, DEV_SENTENCES)


def test_comma_separated_file_is_refused_with_a_hint(tmp_path):
    path = write_lines(tmp_path / "CoLA_train.tsv", [line.replace("\t", ",") for line in cola_train_lines(20)])
    with pytest.raises(UserError, match="comma-separated"):
        tsv.read_rows(COLA, path, labelled=True)


def test_non_utf8_file_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "CoLA_dev.tsv"
    path.write_bytes("ok\nstill ok\n".encode() + "caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"line 3: bytes that are not UTF-8"):
        tsv.read_rows(COLA, path, labelled=False)


# --- QQP -------------------------------------------------------------------------------------------------

QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"


def qqp_train_lines(n: int = 120) -> List[str]:
    lines = [QQP_HEADER]
    for i in range(n):
        lines.append(f"{i}\t{2 * i + 1}\t{2 * i + 2}\tWhat is question {i}?\tIs it like question {i}?\t{int(i % 3 == 0)}")
    return lines


QQP_DEV_PAIRS = [
    ("How do I learn Python?", "What is the best way to learn Python?"),
    ('Is ""rightness"" just a judgment?', "Does the end justify the means?"),
    ("Why is the sky blue?", 'What does ""blue"" mean, "" exactly""?'),
    ("Où est la gare?", "Where is the station?"),
]
QQP_DEV_READ = [  # the same questions as a person reads them
    ("How do I learn Python?", "What is the best way to learn Python?"),
    ('Is "rightness" just a judgment?', "Does the end justify the means?"),
    ("Why is the sky blue?", 'What does "blue" mean, " exactly"?'),
    ("Où est la gare?", "Where is the station?"),
]


def quoted(text: str) -> str:
    return f'"{text}"' if '""' in text else text


QQP_DEV_LAYOUTS = {
    "GLUE dev with is_duplicate": lambda: [QQP_HEADER] + [f"{9 + i}\t{i}\t{i + 1}\t{quoted(a)}\t{quoted(b)}\t{i % 2}"
                                                        for i, (a, b) in enumerate(QQP_DEV_PAIRS)],
    "dev without is_duplicate": lambda: ["id\tqid1\tqid2\tquestion1\tquestion2"] + [
        f"{9 + i}\t{i}\t{i + 1}\t{quoted(a)}\t{quoted(b)}" for i, (a, b) in enumerate(QQP_DEV_PAIRS)],
    "GLUE test: id, question1, question2": lambda: ["id\tquestion1\tquestion2"] + [
        f"{i}\t{quoted(a)}\t{quoted(b)}" for i, (a, b) in enumerate(QQP_DEV_PAIRS)],
    "columns in another order": lambda: ["question2\tid\tquestion1"] + [
        f"{quoted(b)}\t{i}\t{quoted(a)}" for i, (a, b) in enumerate(QQP_DEV_PAIRS)],
    "no header, 5 columns": lambda: [f"{9 + i}\t{i}\t{i + 1}\t{quoted(a)}\t{quoted(b)}"
                                     for i, (a, b) in enumerate(QQP_DEV_PAIRS)],
}


@pytest.mark.parametrize("layout", list(QQP_DEV_LAYOUTS))
def test_qqp_dev_layouts_give_both_questions_unquoted_in_file_order(tmp_path, layout):
    out = process(tmp_path, QQP, qqp_train_lines(), QQP_DEV_LAYOUTS[layout]())
    assert [e["input"] for e in out["dev"]] == [f"Question 1: {a}\nQuestion 2: {b}" for a, b in QQP_DEV_READ]
    assert all(e["output"] == "" for e in out["dev"])


def test_qqp_train_header_driven_and_headerless_read_the_same(tmp_path):
    with_header = process(tmp_path / "a", QQP, qqp_train_lines(), QQP_DEV_LAYOUTS["dev without is_duplicate"]())
    without = process(tmp_path / "b", QQP, qqp_train_lines()[1:], QQP_DEV_LAYOUTS["dev without is_duplicate"]())
    assert with_header == without
    for e in with_header["train"] + with_header["val"]:
        i = int(re.search(r"question (\d+)\?", e["input"]).group(1))
        assert e["input"] == f"Question 1: What is question {i}?\nQuestion 2: Is it like question {i}?"
        assert e["output"] == str(int(i % 3 == 0))


def test_qqp_quoted_train_fields_become_plain_text(tmp_path):
    train = qqp_train_lines(60) + ['900\t1\t2\t"Is ""rightness"" real?"\t"Say ""hi""."\t1']
    out = process(tmp_path, QQP, train, QQP_DEV_LAYOUTS["GLUE test: id, question1, question2"](),
                  "--holdout_size", "0", "--max_samples", "0")
    assert 'Question 1: Is "rightness" real?\nQuestion 2: Say "hi".' in [e["input"] for e in out["train"]]


def test_unquote():
    assert tsv.unquote('"Is ""rightness"" just?"') == 'Is "rightness" just?'
    assert tsv.unquote('He said "no" twice') == 'He said "no" twice'
    assert tsv.unquote('""') == "" and tsv.unquote('"') == '"'


def test_qqp_header_without_question_column_is_refused(tmp_path):
    path = write_lines(tmp_path / "QQP_dev.tsv", ["id\tquestion1\ttext", "1\ta?\tb?"])
    with pytest.raises(UserError, match="question2"):
        tsv.read_rows(QQP, path, labelled=False)


def test_qqp_train_header_without_label_is_refused(tmp_path):
    path = write_lines(tmp_path / "QQP_train.tsv", ["id\tquestion1\tquestion2", "1\ta?\tb?"])
    with pytest.raises(UserError, match="no label column"):
        tsv.read_rows(QQP, path, labelled=True)


# --- SST-2 -----------------------------------------------------------------------------------------------

def test_sst2_train_and_dev_layouts_strip_trailing_spaces(tmp_path):
    train = ["sentence\tlabel"] + [f"review {i} was {'good' if i % 2 else 'bad'} \t{i % 2}" for i in range(80)]
    dev_sentences = ["uneasy mishmash of styles and genres .", "this film 's relationship to actual tension "]
    for name, dev in {
        "GLUE test: index, sentence": ["index\tsentence"] + [f"{i}\t{s}" for i, s in enumerate(dev_sentences)],
        "GLUE dev: sentence, label": ["sentence\tlabel"] + [f"{s}\t{i % 2}" for i, s in enumerate(dev_sentences)],
    }.items():
        out = process(tmp_path / name.split(":")[0], SST2, train, dev)
        assert [e["input"] for e in out["dev"]] == [s.strip() for s in dev_sentences], name
        assert all(e["output"] == "" for e in out["dev"])
    for e in out["train"] + out["val"]:
        assert not e["input"].endswith(" ")
        assert e["output"] == ("1" if e["input"].endswith("good") else "0")


# --- the JSON written ------------------------------------------------------------------------------------

def test_json_schema_and_utf8(tmp_path):
    train = cola_train_lines(100) + ["u1\t1\t\tLe café est très bon — 你好."]
    out = process(tmp_path, COLA, train, DEV_SENTENCES, "--holdout_size", "10", "--max_samples", "0")
    for split, examples in out.items():
        assert examples and all(isinstance(e, dict) and list(e) == ["instruction", "input", "output"] for e in examples)
        assert all(isinstance(v, str) and v == v.strip() for e in examples for v in e.values())
        assert {e["output"] for e in examples} <= ({""} if split == "dev" else {"0", "1"}), split
    assert {e["output"] for e in out["train"]} == {"0", "1"}
    raw = (tmp_path / "pre_data" / "CoLA" / "CoLA_dev.json").read_bytes().decode("utf-8")
    assert "你好" in raw and "déjà" in raw and "\\u" not in raw
    assert "你好" in (tmp_path / "pre_data" / "CoLA" / "CoLA_train.json").read_text(encoding="utf-8") + \
        (tmp_path / "pre_data" / "CoLA" / "CoLA_val.json").read_text(encoding="utf-8")


def test_model_input_presents_both_questions():
    assert model_input(QQP, ["A?", "B?"]) == "Question 1: A?\nQuestion 2: B?"
    assert model_input(COLA, ["A sentence."]) == "A sentence."


# --- sampling --------------------------------------------------------------------------------------------

def rows(n_zero: int, n_one: int) -> List[tsv.Row]:
    labels = ["0"] * n_zero + ["1"] * n_one
    random.Random(7).shuffle(labels)
    return [tsv.Row(i + 1, [f"text {i}"], label) for i, label in enumerate(labels)]


@pytest.mark.parametrize("n_zero, n_one, n, want_zero", [(300, 700, 200, 60), (333, 667, 100, 33), (10, 990, 40, 0),
                                                         (0, 50, 20, 0), (500, 500, 998, 499)])
def test_stratified_sample_keeps_label_shares_and_file_order(n_zero, n_one, n, want_zero):
    sample = data_process.stratified_sample(rows(n_zero, n_one), n, random.Random(0), balanced=False)
    assert len(sample) == n and len({r.line for r in sample}) == n
    assert sum(r.label == "0" for r in sample) == want_zero
    assert [r.line for r in sample] == sorted(r.line for r in sample)


def test_stratified_sample_is_seeded():
    population = rows(300, 700)
    first = data_process.stratified_sample(population, 100, random.Random(1), balanced=False)
    again = data_process.stratified_sample(population, 100, random.Random(1), balanced=False)
    other = data_process.stratified_sample(population, 100, random.Random(2), balanced=False)
    assert first == again and first != other


@pytest.mark.parametrize("n", [100, 101, 500, 900, 5000])
def test_balanced_sample_has_equal_counts(n):
    sample = data_process.stratified_sample(rows(300, 700), n, random.Random(0), balanced=True)
    zeros, ones = sum(r.label == "0" for r in sample), sum(r.label == "1" for r in sample)
    assert zeros == ones == min(n // 2, 300)


def test_sampling_through_process_seed_balance_cap_and_holdout(tmp_path):
    train = cola_train_lines(500)
    run = lambda name, *args: process(tmp_path / name, COLA, train, DEV_SENTENCES, "--holdout_size", "50", *args)
    first, same, other = run("a", "--max_samples", "200"), run("b", "--max_samples", "200"), \
        run("c", "--max_samples", "200", "--seed", "7")
    assert first == same
    assert first["train"] != other["train"] and first["val"] != other["val"]
    for out in (first, other):
        assert len(out["train"]) == 200 and len(out["val"]) == 50
        assert sum(e["output"] == "0" for e in out["train"]) == 60 and sum(e["output"] == "0" for e in out["val"]) == 15
        train_rows, val_rows = [row_of(e["input"]) for e in out["train"]], [row_of(e["input"]) for e in out["val"]]
        assert not set(train_rows) & set(val_rows)
        assert train_rows == sorted(train_rows) and len(set(train_rows)) == 200

    balanced = run("d", "--max_samples", "200", "--balanced")
    assert sum(e["output"] == "0" for e in balanced["train"]) == sum(e["output"] == "1" for e in balanced["train"]) == 100
    everything = run("e", "--max_samples", "0")
    assert len(everything["train"]) == 450
    rows_used = {row_of(e["input"]) for e in everything["train"] + everything["val"]}
    assert rows_used == set(range(500))
    balanced_all = run("f", "--max_samples", "0", "--balanced")
    assert [sum(e["output"] == label for e in balanced_all["train"]) for label in "01"] == [135, 135]


def test_max_samples_above_what_is_left_uses_all_and_says_so(tmp_path, capsys):
    out = process(tmp_path, COLA, cola_train_lines(100), DEV_SENTENCES, "--holdout_size", "30", "--max_samples", "4000")
    assert len(out["train"]) == 70
    assert "MAX_SAMPLES=4000 is more than the 70 rows left" in capsys.readouterr().out


@pytest.mark.parametrize("holdout", ["-1", "100"])
def test_holdout_that_does_not_fit_is_refused(tmp_path, holdout):
    with pytest.raises(UserError, match="HOLDOUT_SIZE"):
        process(tmp_path, COLA, cola_train_lines(100), DEV_SENTENCES, "--holdout_size", holdout)


# --- the command line ------------------------------------------------------------------------------------

def test_command_line_processes_every_data_set_found(synthetic_data, outputs, tmp_path):
    result = run_script("data_process.py", *outputs, "--data_dir", str(synthetic_data / "data"),
                        "--max_samples", "300", "--holdout_size", "50")
    assert "[CoLA]" in result.stdout and "[QQP]" in result.stdout and "[SST-2]" not in result.stdout
    assert "800 rows read" in result.stdout and "data_process: wrote CoLA, QQP to" in result.stdout
    for name in ("CoLA", "QQP"):
        sizes = {split: len(json.loads((tmp_path / "pre_data" / name / f"{name}_{split}.json").read_text("utf-8")))
                 for split in ("train", "val", "dev")}
        assert sizes == {"train": 300, "val": 50, "dev": 200}
    assert not (tmp_path / "pre_data" / ".lock").exists()
    qqp_dev = json.loads((tmp_path / "pre_data" / "QQP" / "QQP_dev.json").read_text("utf-8"))
    assert not any('""' in e["input"] for e in qqp_dev)   # quoted fields unquoted, their doubled quotes undone
    assert any(e["input"].startswith('Question 1: "How" ') for e in qqp_dev)


def test_command_line_data_set_limits_and_normalises_the_name(synthetic_data, outputs, tmp_path):
    result = run_script("data_process.py", *outputs, "--data_dir", str(synthetic_data / "data"), "--data_set", "qqp",
                        "--holdout_size", "20", "--max_samples", "100")
    assert "[QQP]" in result.stdout and "[CoLA]" not in result.stdout
    assert sorted(p.name for p in (tmp_path / "pre_data").iterdir()) == ["QQP"]


def test_command_line_missing_file_names_the_folder_contents(tmp_path, outputs):
    data = tmp_path / "data"
    write_lines(data / "CoLA_train.tsv", cola_train_lines(50))
    result = run_script("data_process.py", *outputs, "--data_dir", str(data), "--holdout_size", "5", check=False)
    assert result.returncode == 2 and "CoLA_dev.tsv does not exist" in result.stderr
    assert "CoLA_train.tsv" in result.stderr
