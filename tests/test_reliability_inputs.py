"""Issue 3, cases 1-8: bad input files and settings get one clear paragraph (file, line, what to do), a
non-zero exit, and the pre_data written by an earlier good run stays byte-identical. Torch-free."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _reliability import ROOT, assert_unchanged, error_message, fails_and_keeps, process, run, snapshot

COLA_HEADERLESS = "gj04\t1\t\tThe cat {}.\n"


@pytest.fixture(scope="module")
def good_pre_data(tmp_path_factory, synthetic_data) -> Path:
    """pre_data/ from a good run on the synthetic files (both data sets), copied into each test."""
    out = tmp_path_factory.mktemp("good") / "pre_data"
    run("data_process.py", "--data_dir", str(synthetic_data / "data"), "--pre_data_dir", str(out),
        "--holdout_size", "50")
    assert {p.name for p in out.rglob("*.json")} >= {"CoLA_train.json", "CoLA_dev.json", "QQP_dev.json"}
    return out


@pytest.fixture
def pre_data(tmp_path, good_pre_data) -> Path:
    folder = tmp_path / "pre_data"
    shutil.copytree(good_pre_data, folder)
    return folder


@pytest.fixture
def data(tmp_path, synthetic_data) -> Path:
    """A private copy of the synthetic data folder, for a test to spoil."""
    folder = tmp_path / "data"
    shutil.copytree(synthetic_data / "data", folder)
    return folder


def lines_of(path: Path) -> list:
    return path.read_text(encoding="utf-8").splitlines()


# --- 1. missing folder / files, unknown data set ---------------------------------------------------------

def test_missing_data_dir(tmp_path, pre_data):
    missing = tmp_path / "no-such-folder"
    fails_and_keeps(missing, pre_data, needles=(str(missing), "DATA_DIR", "--data_dir"))


@pytest.mark.parametrize("split", ["train", "dev"])
def test_missing_train_or_dev_file(data, pre_data, split):
    (data / f"CoLA_{split}.tsv").unlink()
    message = fails_and_keeps(data, pre_data, "--data_set", "CoLA", needles=(f"CoLA_{split}.tsv", "does not exist"))
    assert "Put the file there" in message and "DATA_DIR" in message


def test_folder_without_any_data_set(tmp_path, pre_data):
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_and_keeps(empty, pre_data, needles=(str(empty), "_train.tsv", "DATA_DIR"))


@pytest.mark.parametrize("script", ["data_process.py", "train.py", "predict.py", "grade.py"])
def test_unknown_data_set_suggests_the_valid_ones(script, tmp_path):
    message = error_message(run(script, "--data_set", "COLAA", "--saved_model_dir", str(tmp_path)),
                            "'COLAA'", "CoLA, QQP", "Did you mean CoLA?", "--data_set")
    assert "DATA_SET" in message


def test_lower_case_data_set_and_file_names_are_accepted(data, pre_data):
    (data / "CoLA_train.tsv").rename(data / "cola_train.tsv")
    result = process(data, pre_data, "--data_set", "cola")
    assert result.returncode == 0, result
    assert "[CoLA]" in result.stdout and (pre_data / "CoLA" / "CoLA_train.json").is_file()


# --- 2. empty, header only, not tab-separated ------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank-lines"])
def test_empty_file(data, pre_data, split, content):
    (data / f"CoLA_{split}.tsv").write_bytes(content)
    fails_and_keeps(data, pre_data, "--data_set", "CoLA", needles=(f"CoLA_{split}.tsv", "is empty", "exam's file"))


@pytest.mark.parametrize("split", ["train", "dev"])
def test_header_only(data, pre_data, split):
    path = data / f"QQP_{split}.tsv"
    path.write_text(lines_of(path)[0] + "\n", encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", "QQP", needles=(f"QQP_{split}.tsv", "header but no rows", "full file"))


@pytest.mark.parametrize("name,split", [("QQP", "train"), ("QQP", "dev"), ("CoLA", "train"), ("CoLA", "dev")])
def test_comma_separated_file(data, pre_data, name, split):
    import csv
    import io
    path = data / f"{name}_{split}.tsv"
    rows = [line.split("\t") for line in lines_of(path)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", name, needles=(f"{name}_{split}.tsv", "comma-separated", "tab-separated"))


# --- 3. CRLF, byte-order mark, no final newline: same JSON as the clean file ---------------------------

@pytest.mark.parametrize("variant", ["crlf", "bom", "no-final-newline", "all-three"])
def test_crlf_bom_and_missing_final_newline_read_like_the_clean_file(tmp_path, data, variant):
    clean_out = tmp_path / "clean"
    assert process(data, clean_out).returncode == 0
    for path in data.glob("*.tsv"):
        raw = path.read_bytes()
        if variant in ("crlf", "all-three"):
            raw = raw.replace(b"\n", b"\r\n")
        if variant in ("bom", "all-three"):
            raw = b"\xef\xbb\xbf" + raw
        if variant in ("no-final-newline", "all-three"):
            raw = raw.rstrip(b"\r\n")
        path.write_bytes(raw)
    out = tmp_path / "variant"
    result = process(data, out)
    assert result.returncode == 0, result
    json_files = lambda folder: {name: data for name, data in snapshot(folder).items() if name.endswith(".json")}  # noqa: E731
    assert json_files(out) == json_files(clean_out)   # .source differs: it records each TSV's own hash


# --- 4. bytes that are not UTF-8 ----------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("encoding,text,named", [("gbk", "\u4e2d\u6587\u53e5\u5b50", "GBK"),
                                                 ("cp1252", "caf\u00e9 \u201cquoted\u201d", "CP1252")])
def test_bytes_that_are_not_utf8_name_the_line_and_the_encoding(data, pre_data, split, encoding, text, named):
    path = data / f"CoLA_{split}.tsv"
    raw = path.read_bytes().split(b"\n")
    raw[6] = raw[6].replace(b".", b" " + text.encode(encoding) + b".", 1)
    path.write_bytes(b"\n".join(raw))
    fails_and_keeps(data, pre_data, "--data_set", "CoLA",
                    needles=(f"CoLA_{split}.tsv, line 7", "not UTF-8", f"iconv -f {named} -t UTF-8 CoLA_{split}.tsv"))


# --- 5. bad train rows: skipped and reported, or an error past MAX_BAD_SHARE ----------------------------

def test_bad_train_rows_are_skipped_and_reported(data, pre_data):
    path = data / "CoLA_train.tsv"
    lines = lines_of(path)
    n = len(lines)
    lines[2] = "gj04\t1\tonly three fields"                      # line 3
    lines[9] = lines[9].replace("\t1\t", "\t2\t").replace("\t0\t", "\t2\t")     # line 10: label 2
    lines[19] = "gj04\t\t\tAn empty label."                        # line 20
    lines[29] = "gj04\t-1\t\tA label of minus one."                # line 30
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = process(data, pre_data, "--data_set", "CoLA", "--max_samples", "0")
    assert result.returncode == 0, result
    assert (f"{n} rows read; skipped 4 unreadable: line 3 (3 fields instead of 4), line 10 (label '2' is not 0 or 1), "
            f"line 20 (label '' is not 0 or 1), line 30 (label '-1' is not 0 or 1)") in result.stdout
    train, val = (json.loads((pre_data / "CoLA" / f"CoLA_{s}.json").read_text()) for s in ("train", "val"))
    held = {e["input"] for e in val}
    good = [line.split("\t")[3] for i, line in enumerate(lines) if i not in (2, 9, 19, 29)]
    assert len(train) == sum(text not in held for text in good)   # all the rest, less copies of holdout texts
    assert not held & {e["input"] for e in train}


def test_too_many_bad_train_rows_stop_with_an_error(data, pre_data):
    path = data / "CoLA_train.tsv"
    lines = lines_of(path)
    for i in range(0, len(lines), 10):                # 10 % of the rows, above MAX_BAD_SHARE = 5 %
        lines[i] = lines[i].replace("\t1\t", "\tyes\t").replace("\t0\t", "\tno\t")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", "CoLA",
                    needles=("CoLA_train.tsv", "80 of 800 rows cannot be read", "MAX_BAD_SHARE", "first: line 1 (label 'no' is not 0 or 1), line 11",
                             "--max_bad_share"))


# --- 6. dev rows that cannot be read are an error (dropping one would shift the first 150) ------------

@pytest.mark.parametrize("name,line", [("CoLA", 12), ("QQP", 40)])
def test_unreadable_dev_row_is_an_error(data, pre_data, name, line):
    path = data / f"{name}_dev.tsv"
    lines = lines_of(path)
    lines[line - 1] = lines[line - 1].rsplit("\t", 1)[0]       # one field short
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", name,
                    needles=(f"{name}_dev.tsv, line {line}", "fields instead of", "cannot be skipped", "fix this line"))


def test_blank_line_inside_dev_file_is_an_error(data, pre_data):
    path = data / "CoLA_dev.tsv"
    lines = lines_of(path)
    lines.insert(4, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", "CoLA", needles=("CoLA_dev.tsv, line 5", "cannot be skipped"))


# --- 7. empty or whitespace-only sentences (long inputs: test_reliability_models.py) ------------------

def test_empty_sentences_skipped_in_train_kept_in_place_in_dev(data, pre_data):
    train, dev = data / "CoLA_train.tsv", data / "CoLA_dev.tsv"
    lines = lines_of(train)
    lines[4], lines[5] = "gj04\t1\t\t", "gj04\t0\t*\t   "
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = lines_of(dev)
    lines[2], lines[7] = "syn_dev\t\t\t", "syn_dev\t\t\t \t"[:-1]
    dev.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = process(data, pre_data, "--data_set", "CoLA")
    assert result.returncode == 0, result
    assert "skipped 2 unreadable: line 5 (empty text), line 6 (empty text)" in result.stdout
    assert "2 dev rows have an empty text (lines [3, 8]); kept, so positions stay right" in result.stdout
    items = json.loads((pre_data / "CoLA" / "CoLA_dev.json").read_text())
    assert len(items) == len(lines) and items[2]["input"] == "" and items[7]["input"] == ""
    assert items[3]["input"] == lines[3].split("\t")[3]        # the rows after them did not move


# --- 8. sample sizes ----------------------------------------------------------------------------------------

# 466: 800 rows, less the 50 of the holdout and the 284 copies of holdout texts (the synthetic files repeat a lot)
@pytest.mark.parametrize("value,note", [("100000", "is more than the 466 rows left after the holdout: using all"),
                                        ("0", "(0 or less): using all 466 rows"),
                                        ("-5", "(0 or less): using all 466 rows")])
def test_max_samples_larger_than_the_data_zero_or_negative_use_all_and_say_so(data, pre_data, value, note):
    result = process(data, pre_data, "--data_set", "CoLA", "--max_samples", value)
    assert result.returncode == 0, result
    assert f"MAX_SAMPLES={value} {note}" in result.stdout
    assert len(json.loads((pre_data / "CoLA" / "CoLA_train.json").read_text())) == 466


@pytest.mark.parametrize("holdout", ["800", "5000", "-1"])
def test_holdout_that_does_not_fit_is_an_error(data, pre_data, holdout):
    if holdout == "-1":   # out of range whatever the file: refused with the other settings, before any file is read
        fails_and_keeps(data, pre_data, "--data_set", "CoLA", "--holdout_size", holdout,
                        needles=("HOLDOUT_SIZE=-1 cannot work", "0 or more", "--holdout_size"))
        return
    fails_and_keeps(data, pre_data, "--data_set", "CoLA", "--holdout_size", holdout,
                    needles=(f"HOLDOUT_SIZE={holdout} does not fit", "CoLA_train.tsv", "800 usable rows",
                             "choose 0 to 799", "--holdout_size"))


def test_a_sample_that_leaves_no_training_example_is_an_error(data, pre_data):
    fails_and_keeps(data, pre_data, "--data_set", "CoLA", "--max_samples", "1", "--balanced",
                    needles=("CoLA_train.tsv", "MAX_SAMPLES=1 with BALANCED leaves no training example", "--max_samples"))


# --- 16. two runs into one folder (train and predict: test_reliability_models.py) ----------------------

def test_data_process_refuses_while_another_run_writes_into_pre_data(data, pre_data):
    import runtime
    with runtime.exclusive(pre_data, "data_process.py"):
        before = snapshot(pre_data)
        error_message(process(data, pre_data), f"another data_process.py is writing into {pre_data}", "right now",
                      "Wait for it to finish")
        assert_unchanged(pre_data, before)
    assert not list(pre_data.glob(".*lock*"))


def test_the_lock_ends_with_the_process_that_held_it_however_it_ends(data, pre_data):
    """A run killed outright (no clean-up runs) leaves nothing stale: while it lived, every other run refused;
    once it is gone, the next run goes on. No lock file exists for two runs to both take over."""
    import subprocess
    import sys
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
         "import runtime; lock = runtime.exclusive(Path(sys.argv[2]), 'data_process.py'); lock.__enter__(); "
         "print('held', flush=True); "
         "time.sleep(120)", str(ROOT), str(pre_data)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = [process(data, pre_data, "--data_set", "CoLA") for _ in range(2)]
        assert [r.returncode for r in refused] == [2, 2]
    finally:
        holder.kill()   # SIGKILL: as a crash or a power cut ends a run
        holder.wait()
    result = process(data, pre_data, "--data_set", "CoLA")
    assert result.returncode == 0, result
    assert not list(pre_data.glob(".*lock*"))
