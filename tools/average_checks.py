"""Average the LoRA weights of a run's last holdout checks into one adapter (tail averaging, as in stochastic weight
averaging), set its decision threshold on the holdout as train.py does, and write it where predict.py can read it.
An experiment on a finished run's checkpoints (measured on CoLA: docs/real_model.md, "Averaging the last checks");
`train.py --average_last_checks N` does the same within a run.

    python train.py --keep_all_checkpoints              # leave every check's checkpoint in CHECKPOINT_DIR/<ds>
    python tools/average_checks.py 4 averaged           # the last 4 checks -> averaged/<ds>/ (adapter, run_record.json)
    python predict.py --saved_model_dir averaged --split val    # the holdout; without --split: the result file

LAST: how many of the latest checkpoints to average (EVALS_PER_EPOCH of them = the last epoch's checks); OUT: a
folder for the averaged adapter. The adapter's settings and run record come from the adapter train.py wrote
(SAVED_MODEL_DIR/<ds>), with the holdout scores and threshold of the average. Other --name value pairs are config.py
settings.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
import runtime  # noqa: E402
from runtime import UserError  # noqa: E402


def chosen_checkpoints(settings, last: int, record: dict) -> list:
    folder = runtime.project_path(settings.CHECKPOINT_DIR) / settings.DATA_SET
    found = runtime.complete_checkpoints(folder)
    if len(found) < last:
        raise UserError(f"{folder} holds {len(found)} complete checkpoint(s), fewer than the {last} to average: train "
                        f"with --keep_all_checkpoints (train.py otherwise keeps only the kept check and the latest), or "
                        f"average fewer.")
    runs = record.get("runs") or [record]
    if runs[-1]["seed"] != record["seed"]:
        raise UserError(f"the adapter in {runtime.adapter_dir(settings, settings.DATA_SET)} comes from an earlier run "
                        f"(seed {record['seed']}) than the checkpoints in {folder} (a collapsed run's restart, seed "
                        f"{runs[-1]['seed']}): averaging them would mix two runs. Train again with --restarts 0.")
    return found[-last:]


def holdout_scores(settings, adapter: Path) -> dict:
    """The averaged adapter's holdout accuracy, MCC and tuned threshold, scored as predict.py --split val does."""
    import modeling
    import training
    settings.SAVED_MODEL_DIR = str(adapter.parent)
    holdout = runtime.load_examples(runtime.pre_data_file(settings, settings.DATA_SET, "val"))
    model, tokenizer = modeling.load_base_model(settings)
    model = modeling.load_adapter(model, settings, settings.DATA_SET)
    return training.scores_as_predict_gives_them(settings, model, tokenizer, holdout, progress=f"{settings.DATA_SET} val")


def main(settings, last: int, out: Path) -> None:
    from safetensors.torch import save_file
    import training
    trained = runtime.adapter_dir(settings, settings.DATA_SET)
    record = adapters.read_run_record(trained)
    checkpoints = chosen_checkpoints(settings, last, record)
    final = runtime.project_path(str(out)) / settings.DATA_SET
    # built in OUT/.staging-<ds>/<ds>, where predict's loading finds it as SAVED_MODEL_DIR/<ds>, then moved in whole
    staging = final.parent / (runtime.STAGING_PREFIX + final.name) / final.name
    shutil.rmtree(staging.parent, ignore_errors=True)
    staging.mkdir(parents=True)
    steps = [runtime.checkpoint_step(c) for c in checkpoints]
    try:
        save_file(training.averaged_weights(checkpoints), str(staging / adapters.WEIGHTS), metadata={"format": "pt"})
        shutil.copy(trained / "adapter_config.json", staging / "adapter_config.json")
        adapters.write_run_record(staging, dict(record, decision_threshold=0.0, averaged_steps=steps))
        scores = holdout_scores(settings, staging)
        adapters.write_run_record(staging, dict(record, averaged_steps=steps, holdout_accuracy=scores["accuracy"],
                                                holdout_mcc=scores["mcc"], decision_threshold=scores["threshold"],
                                                tuned_holdout_accuracy=scores["tuned_accuracy"],
                                                tuned_holdout_mcc=scores["tuned_mcc"]))
        runtime.replace_folder(staging, final)
    finally:   # stopped half-way, an earlier average in OUT stays whole and no staging folder is left
        shutil.rmtree(staging.parent, ignore_errors=True)
    tuned = f", threshold {scores['threshold']:+.3f}: {scores['tuned_accuracy']:.4f}" if scores["threshold"] else ""
    print(f"average_checks: steps {', '.join(map(str, steps))} averaged; holdout accuracy {scores['accuracy']:.4f} "
          f"(MCC {scores['mcc']:.3f}){tuned} (the kept check: {record['holdout_accuracy']:.4f}); adapter and "
          f"run_record.json written to {runtime.shown(final)}/")


if __name__ == "__main__":
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1 or sys.argv[2].startswith("-"):
        raise SystemExit(__doc__)
    count, folder = int(sys.argv.pop(1)), Path(sys.argv.pop(1))
    runtime.run(lambda settings: main(settings, count, folder), __doc__)
