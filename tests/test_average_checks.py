"""Averaging the last checks' LoRA weights: train.py itself with AVERAGE_LAST_CHECKS, and tools/average_checks.py on
every check kept with --keep_all_checkpoints. Either way an adapter that predict.py reads, with a threshold and holdout
scores that predict --split val reproduces."""
from __future__ import annotations

import json

import pytest

from conftest import run_script
from tiny_gemma import TINY_TRAINING


def where_in(out, tiny_gemma, synthetic_data) -> list:
    return ["--pre_data_dir", str(out / "pre_data"), "--saved_model_dir", str(out / "saved_model"),
            "--checkpoint_dir", str(out / "checkpoints"), "--result_dir", str(out / "questionB"),
            "--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]


def holdout_line(where: list, saved_model_dir) -> str:
    scored = run_script("predict.py", *where, "--saved_model_dir", str(saved_model_dir), "--split", "val")
    return next(line for line in scored.stdout.splitlines() if line.startswith("predict: holdout"))


@pytest.fixture(scope="module")
def run_with_every_check(tmp_path_factory, tiny_gemma, synthetic_data):
    """A tiny CoLA run of 150 steps (TINY_TRAINING's, which learn the keyword), checked every 20 (an epoch of 320
    examples) and at the end, with every checkpoint left in place."""
    out = tmp_path_factory.mktemp("average")
    where = where_in(out, tiny_gemma, synthetic_data)
    run_script("data_process.py", *where, "--max_samples", "320", "--holdout_size", "60")
    run_script("train.py", *where, *TINY_TRAINING, "--evals_per_epoch", "1", "--restarts", "0",
               "--keep_all_checkpoints")
    return out, where


def test_every_check_is_kept_and_the_last_ones_are_averaged(run_with_every_check):
    from safetensors.torch import load_file
    out, where = run_with_every_check
    checks = sorted((out / "checkpoints" / "CoLA").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
    assert [c.name for c in checks] == [f"checkpoint-{step}" for step in (20, 40, 60, 80, 100, 120, 140, 150)]

    done = run_script("tools/average_checks.py", "2", str(out / "averaged"), *where)
    assert "steps 140, 150 averaged" in done.stdout and "written to" in done.stdout, done.stdout
    averaged = load_file(str(out / "averaged" / "CoLA" / "adapter_model.safetensors"))
    at_140, at_150 = (load_file(str(c / "adapter_model.safetensors")) for c in checks[-2:])
    assert set(averaged) == set(at_150)
    for name, weight in averaged.items():
        assert weight.dtype == at_150[name].dtype
        assert weight.float().allclose((at_140[name].float() + at_150[name].float()) / 2, atol=1e-6), name
    assert any(not at_140[n].equal(at_150[n]) for n in at_150)   # the two checks differ: the mean is not one of them

    record = json.loads((out / "averaged" / "CoLA" / "run_record.json").read_text())
    assert record["averaged_steps"] == [140, 150]
    final_line = holdout_line(where, out / "averaged")
    assert f"= {100 * record['tuned_holdout_accuracy']:.2f} %" in final_line, (record, final_line)
    assert record["tuned_holdout_mcc"] >= 0.5, record   # the average still reads the keyword (majority: MCC 0)


def test_one_check_averaged_is_that_check(run_with_every_check):
    from safetensors.torch import load_file
    out, where = run_with_every_check
    run_script("tools/average_checks.py", "1", str(out / "last"), *where)
    last = load_file(str(out / "checkpoints" / "CoLA" / "checkpoint-150" / "adapter_model.safetensors"))
    alone = load_file(str(out / "last" / "CoLA" / "adapter_model.safetensors"))
    assert all(alone[name].equal(weight) for name, weight in last.items())


def test_more_checks_than_kept_is_one_paragraph_naming_the_setting(run_with_every_check):
    out, where = run_with_every_check
    refused = run_script("tools/average_checks.py", "9", str(out / "nine"), *where, check=False)
    assert refused.returncode == 2 and "--keep_all_checkpoints" in refused.stderr, refused.stderr
    assert "holds 8 complete checkpoint(s)" in refused.stderr
    assert not (out / "nine").exists()


def test_train_averages_the_last_checks_itself(tmp_path, tiny_gemma, synthetic_data):
    """AVERAGE_LAST_CHECKS 2: the adapter train.py writes is the mean of the last two checkpoints, which the Trainer's
    rotation left in place (beside the best check), and its record holds the average's own holdout scores."""
    from safetensors.torch import load_file
    where = where_in(tmp_path, tiny_gemma, synthetic_data)
    run_script("data_process.py", *where, "--max_samples", "320", "--holdout_size", "60")
    done = run_script("train.py", *where, *TINY_TRAINING, "--evals_per_epoch", "1", "--restarts", "0",
                      "--average_last_checks", "2")
    at_140, at_150 = (load_file(str(tmp_path / "checkpoints" / "CoLA" / f"checkpoint-{step}" / "adapter_model.safetensors"))
                      for step in (140, 150))
    adapter = load_file(str(tmp_path / "saved_model" / "CoLA" / "adapter_model.safetensors"))
    assert set(adapter) == set(at_150)
    for name, weight in adapter.items():
        assert weight.allclose((at_140[name].float() + at_150[name].float()) / 2, atol=1e-6), name
    assert any(not at_140[n].equal(at_150[n]) for n in at_150)

    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    assert record["averaged_steps"] == [140, 150] and record["runs"][0]["averaged_steps"] == [140, 150]
    final_line = holdout_line(where, tmp_path / "saved_model")
    assert f"= {100 * record['tuned_holdout_accuracy']:.2f} %" in final_line, (record, final_line)
    assert record["tuned_holdout_mcc"] >= 0.5, done.stdout[-1500:]   # it learnt the keyword (majority: MCC 0)
