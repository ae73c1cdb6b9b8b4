"""Which holdout check would each KEEP_LATEST_WITHIN keep? Replays finished runs' checks from their run records.

    python tools/keep_rule.py saved_model/CoLA/run_record.json
    python tools/keep_rule.py real_runs/r49/*/*/saved_model/*/run_record.json --within 0,0.5,1,2

For each run record: its holdout checks (step: accuracy, `*` where the check answered one label everywhere), the
step the run kept, and the step each KEEP_LATEST_WITHIN value would keep: training.checkpoint_choice, one check at a
time, as the Trainer applies it. A run keeps only its kept checkpoint and its latest on disk; a step that is neither
is marked `(not on disk)`, so what it would have scored can only be had by training again.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from runtime import UserError  # noqa: E402


def checks_of(record: dict) -> list:
    """(step, accuracy, collapsed) for each holdout check made during training (not the closing evaluate() of the
    kept checkpoint). Records from before `eval_collapsed` mark a collapsed check by a negative choice."""
    history = record["log_history"]
    ended = next((i for i, entry in enumerate(history) if "train_runtime" in entry), len(history))
    return [(entry["step"], entry["eval_accuracy"], bool(entry.get("eval_collapsed", entry["eval_choice"] < 0)))
            for entry in history[:ended] if "eval_choice" in entry]


def kept_step(checks: list, keep_latest_within: float, holdout_size: int) -> int:
    """The step the Trainer keeps when every check's `choice` is training.checkpoint_choice's."""
    import training
    kept, kept_choice, earlier = None, None, []
    last_step = checks[-1][0]
    for step, accuracy, collapsed in checks:
        choice = training.checkpoint_choice(accuracy, collapsed, step / last_step, earlier, keep_latest_within,
                                            holdout_size)
        if kept_choice is None or choice > kept_choice:
            kept, kept_choice = step, choice
        if not collapsed:
            earlier.append(accuracy)
    return kept


def report(path: Path, withins: list) -> str:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        checks, holdout_size = checks_of(record), record["holdout_size"]
        kept = runtime.checkpoint_step(record["best_checkpoint"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a run record that train.py wrote ({e}); give saved_model/<ds>/run_record.json.")
    if not checks:
        raise UserError(f"{path}: the run made no holdout check, so there is nothing to choose from.")
    on_disk = {kept, checks[-1][0]}
    lines = [f"keep_rule: {runtime.shown(path)} ({holdout_size} holdout rows): kept step {kept}",
             "  checks: " + ", ".join(f"{step}: {accuracy:.4f}{'*' if collapsed else ''}"
                                      for step, accuracy, collapsed in checks)]
    for within in withins:
        step = kept_step(checks, within, holdout_size)
        lines.append(f"  KEEP_LATEST_WITHIN {within:g}: step {step}{'' if step in on_disk else ' (not on disk)'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=Path, nargs="+", help="run_record.json files that train.py wrote")
    parser.add_argument("--within", default="0,1", help="KEEP_LATEST_WITHIN values, comma-separated (default 0,1)")
    args = parser.parse_args(argv)
    try:
        withins = [float(value) for value in args.within.split(",")]
        print("\n".join(report(path, withins) for path in args.records))
    except ValueError:
        print(f"keep_rule: error: --within {args.within!r}: give numbers separated by commas, e.g. 0,0.5,1",
              file=sys.stderr)
        return 2
    except UserError as e:
        print(f"keep_rule: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
