"""tools/keep_rule.py: which check each KEEP_LATEST_WITHIN keeps, replayed from a finished run's record."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_script


def write_record(path: Path, checks: list, kept: int, holdout_size: int = 400) -> Path:
    """A run record as train.py writes it: the checks (each logged after a loss line), the train summary, then the
    closing evaluate() of the kept checkpoint, which is not a check."""
    history = []
    for step, accuracy, collapsed in checks:
        history.append({"loss": 0.3, "step": step})
        history.append({"eval_accuracy": accuracy, "eval_choice": accuracy - collapsed, "eval_collapsed": float(collapsed),
                        "step": step})
    history.append({"train_runtime": 10.0, "step": checks[-1][0]})
    history.append({"eval_accuracy": 0.99, "eval_choice": 0.99, "eval_collapsed": 0.0, "step": checks[-1][0]})
    path.write_text(json.dumps({"holdout_size": holdout_size, "log_history": history,
                                "best_checkpoint": f"checkpoints/CoLA/checkpoint-{kept}"}), encoding="utf-8")
    return path


def test_it_replays_real_qqp_seed_43_and_marks_a_step_that_is_not_on_disk(tmp_path):
    """QQP seed 43 of the combination (docs/real_model.md): the best check, step 315, is what 0 keeps; 1 keeps the
    last; 0.5 keeps step 567, which the run did not keep on disk."""
    accuracies = [0.6275, 0.7525, 0.715, 0.755, 0.795, 0.765, 0.7925, 0.78, 0.7875, 0.78, 0.78, 0.78]
    steps = [63 * (i + 1) for i in range(11)] + [750]
    record = write_record(tmp_path / "run_record.json",
                          [(s, a, i == 0) for i, (s, a) in enumerate(zip(steps, accuracies))], kept=315)
    out = run_script("tools/keep_rule.py", str(record), "--within", "0,0.5,1").stdout
    assert "kept step 315" in out and "63: 0.6275*, 126: 0.7525" in out and "750: 0.7800" in out
    assert "KEEP_LATEST_WITHIN 0: step 315\n" in out
    assert "KEEP_LATEST_WITHIN 0.5: step 567 (not on disk)\n" in out
    assert out.rstrip().endswith("KEEP_LATEST_WITHIN 1: step 750")


def test_it_names_a_file_that_is_not_a_run_record_and_a_bad_within(tmp_path):
    other = tmp_path / "result_CoLA.txt"
    other.write_text("1\n0\n", encoding="utf-8")
    failed = run_script("tools/keep_rule.py", str(other), check=False)
    assert failed.returncode == 2 and "result_CoLA.txt: not a run record" in failed.stderr
    assert "Traceback" not in failed.stderr
    record = write_record(tmp_path / "run_record.json", [(5, 0.8, False)], kept=5)
    failed = run_script("tools/keep_rule.py", str(record), "--within", "one", check=False)
    assert failed.returncode == 2 and "--within 'one'" in failed.stderr and "Traceback" not in failed.stderr
