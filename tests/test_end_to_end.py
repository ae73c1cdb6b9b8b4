"""The exam flow through the command line, as a candidate runs it: data_process -> train -> predict -> grade,
on the tiny Gemma and keyword-labelled synthetic data. Checks that training truly learns."""
from __future__ import annotations

import json

from conftest import run_script
from tiny_gemma import TINY_TRAINING


def test_exam_flow_learns_and_grades_full_marks_for_structure(tmp_path, tiny_gemma, synthetic_data, outputs):
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
                       "--answer_dir", str(synthetic_data / "answers"), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "600", "--holdout_size", "100")
    trained = run_script("train.py", *where, *TINY_TRAINING)
    adapter = tmp_path / "saved_model" / "CoLA"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    record = json.loads((adapter / "run_record.json").read_text())
    assert record["holdout_accuracy"] >= 0.9, trained.stdout[-2000:]
    assert record["data_set"] == "CoLA" and record["steps"] == 150
    assert "trainable parameters" in trained.stdout and "written to" in trained.stdout

    # The holdout, scored again by predict exactly as the submission will be.
    val = run_script("predict.py", *where, "--split", "val")
    assert "confusion matrix" in val.stdout
    predicted = run_script("predict.py", *where)
    result = tmp_path / "questionB" / "result_CoLA.txt"
    lines = result.read_text().splitlines()
    assert len(lines) == 150 and set(lines) <= {"0", "1"}, predicted.stdout

    report = json.loads(run_script("grade.py", *where, "--json").stdout)
    cola = report["data_sets"][0]
    assert cola["pre_data"]["points"] == 10 and cola["adapter"]["points"] == 20, cola
    assert cola["accuracy"]["metrics"]["accuracy"] >= 0.9
    assert abs(cola["accuracy"]["points"] - 70 * cola["accuracy"]["metrics"]["accuracy"]) < 1e-9
    human = run_script("grade.py", *where).stdout
    assert f"{cola['accuracy']['metrics']['correct']}/150 = " in human


def test_generate_mode_reads_labels_and_counts_non_answers(tmp_path, tiny_gemma, synthetic_data, outputs):
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
                       "--data_set", "QQP"]
    run_script("data_process.py", *where, "--max_samples", "600", "--holdout_size", "100")
    run_script("train.py", *where, *TINY_TRAINING)
    scored = run_script("predict.py", *where, "--split", "val").stdout
    generated = run_script("predict.py", *where, "--split", "val", "--decode", "generate", "--max_new_tokens", "3").stdout
    assert "holdout QQP (labels)" in scored and "holdout QQP (generate)" in generated


def test_train_runs_unchanged_under_torchrun(tmp_path, tiny_gemma, synthetic_data, outputs):
    """Two processes (gloo on the CPU, as NCCL would be on GPUs): the batch doubles, one process writes the adapter."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "200", "--holdout_size", "40")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(ROOT / "train.py"), *where,
         "--batch_size", "4", "--grad_accum", "1", "--max_steps", "4", "--learning_rate", "1e-2"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "effective batch 8 = 4 x 1 accumulation x 2 device(s)" in launched.stdout
    assert launched.stdout.count("train: holdout accuracy") == 1          # only the first process reports and writes
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    assert record["steps"] == 4 and not (tmp_path / "saved_model" / ".lock").exists()


def test_a_small_loss_weight_on_the_prompt_still_learns_the_answer(tmp_path, tiny_gemma, synthetic_data, outputs):
    """PROMPT_LOSS_WEIGHT > 0 takes the other training path (the output layer at every position)."""
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "600", "--holdout_size", "100")
    trained = run_script("train.py", *where, *TINY_TRAINING, "--prompt_loss_weight", "0.1")
    assert "a prompt token weighing 0.1 of an answer token" in trained.stdout
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    assert record["holdout_accuracy"] >= 0.9, trained.stdout[-2000:]


def test_the_last_step_is_checked_and_can_be_kept_when_it_falls_between_two_checks(tmp_path, tiny_gemma,
                                                                                   synthetic_data, outputs):
    """5 steps, a check every 3: step 5 is checked and saved too (transformers 4.38.1, the exam's, checked step 3
    only and threw steps 4 and 5 away), and it is the one kept where it ties or beats step 3."""
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "200", "--holdout_size", "40")
    trained = run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "5", "--evals_per_epoch", "2",
                         "--restarts", "0")
    assert "check every 3 steps" in trained.stdout, trained.stdout[-2000:]
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    during = record["log_history"][:next(i for i, e in enumerate(record["log_history"]) if "train_runtime" in e)]
    checks = [(e["step"], e["eval_choice"]) for e in during if "eval_choice" in e]   # not the closing evaluate()
    assert [step for step, _ in checks] == [3, 5], checks
    assert (tmp_path / "checkpoints" / "CoLA" / "checkpoint-5" / "trainer_state.json").is_file()
    kept = "checkpoint-5" if checks[1][1] >= checks[0][1] else "checkpoint-3"
    assert record["best_checkpoint"].endswith(kept), (record["best_checkpoint"], checks)


def test_a_collapsed_run_starts_again_with_the_next_seed_and_a_lower_learning_rate(tmp_path, tiny_gemma, synthetic_data,
                                                                                   outputs):
    """COLLAPSE_MCC above any reachable MCC makes every run count as collapsed: each stops at half its steps and the
    next starts with seed + 1 and half the learning rate, RESTARTS times; the best run is kept and recorded."""
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "200", "--holdout_size", "40")
    trained = run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "8", "--evals_per_epoch", "2",
                         "--collapse_mcc", "1.01", "--restarts", "2")
    assert trained.stdout.count(", below 1.01: stopping this run") == 2, trained.stdout[-3000:]
    assert "starting again with seed 43 and learning rate 5.00e-03" in trained.stdout
    assert "starting again with seed 44 and learning rate 2.50e-03" in trained.stdout
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    runs = record["runs"]
    assert [r["seed"] for r in runs] == [42, 43, 44] and [r["steps"] for r in runs] == [4, 4, 8]
    kept = max(runs, key=lambda r: r["tuned_holdout_accuracy"])
    assert record["seed"] == kept["seed"] and record["tuned_holdout_accuracy"] == kept["tuned_holdout_accuracy"]

    # No time left for another run: the first is kept, and the output says why.
    again = run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "8", "--evals_per_epoch", "2",
                       "--collapse_mcc", "1.01", "--train_budget_minutes", "0")
    assert "another would not end within TRAIN_BUDGET_MINUTES=0" in again.stdout
    assert len(json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())["runs"]) == 1
