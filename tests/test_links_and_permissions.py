"""Outputs behind symbolic links are written where the links point, and every file a script writes can be read
by another account (the exam's grader), whatever the user's umask."""
from __future__ import annotations

import json
import os
import stat

import pytest

import runtime
from conftest import run_script
from tiny_gemma import TINY_TRAINING


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_result_file_that_is_a_link_is_written_through(tmp_path):
    target = tmp_path / "kept" / "answers.txt"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "questionB" / "result_CoLA.txt"
    link.parent.mkdir()
    link.symlink_to(target)
    runtime.write_atomically(link, "1\n0\n")
    assert link.is_symlink() and target.read_text() == "1\n0\n" and mode(target) == 0o644


def test_a_link_that_loops_is_refused_in_one_paragraph(tmp_path):
    loop = tmp_path / "result_CoLA.txt"
    loop.symlink_to(loop)
    with pytest.raises(runtime.UserError, match="leads back to itself"):
        runtime.write_atomically(loop, "1\n")


def test_pre_data_and_saved_model_as_links_are_filled_where_they_point(tmp_path, tiny_gemma, synthetic_data, outputs):
    elsewhere = tmp_path / "elsewhere"
    for name in ("pre_data", "saved_model"):
        (elsewhere / name / "CoLA").mkdir(parents=True)
        (tmp_path / name).mkdir()
        (tmp_path / name / "CoLA").symlink_to(elsewhere / name / "CoLA")
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "100", "--holdout_size", "20")
    assert (tmp_path / "pre_data" / "CoLA").is_symlink()
    assert (elsewhere / "pre_data" / "CoLA" / "CoLA_train.json").is_file()
    for seed in ("1", "2"):   # the second run replaces the first adapter, behind the link
        run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "2", "--restarts", "0", "--seed", seed)
    assert (tmp_path / "saved_model" / "CoLA").is_symlink()
    assert json.loads((elsewhere / "saved_model" / "CoLA" / "run_record.json").read_text())["seed"] == 2
    assert sorted(p.name for p in (elsewhere / "saved_model").iterdir()) == ["CoLA"]   # no CoLA.new left behind


def test_every_file_written_is_readable_by_others_whatever_the_umask(tmp_path, tiny_gemma, synthetic_data, outputs):
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    previous = os.umask(0o077)
    try:
        run_script("data_process.py", *where, "--max_samples", "100", "--holdout_size", "20")
        run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "2", "--restarts", "0")
        run_script("predict.py", *where, "--predict_count", "5")
    finally:
        os.umask(previous)
    written = [p for folder in ("pre_data", "saved_model", "questionB") for p in (tmp_path / folder).rglob("*")]
    assert written and all(mode(p) == (0o755 if p.is_dir() else 0o644) for p in written), \
        [(str(p), oct(mode(p))) for p in written if mode(p) not in (0o644, 0o755)]
