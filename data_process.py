"""Turn the exam's TSV files into Alpaca-style JSON for training and prediction.

    python data_process.py                  # every data set found in DATA_DIR (CoLA, QQP, SST-2)
    python data_process.py --data_set QQP   # just one
    python data_process.py --max_samples 2000 --balanced

For each data set <ds> it reads DATA_DIR/<ds>_train.tsv and DATA_DIR/<ds>_dev.tsv and writes
    pre_data/<ds>/<ds>_train.json   MAX_SAMPLES labelled examples (stratified by label, seeded)
    pre_data/<ds>/<ds>_val.json     HOLDOUT_SIZE other labelled examples, to check the model before submitting
    pre_data/<ds>/<ds>_dev.json     every dev row in file order, output "" (predict answers the first 150)
each a JSON list of {"instruction", "input", "output"}.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Dict, List

import runtime
from runtime import UserError
from tasks import LABELS, TASKS, Task, instruction_for, label_counts, label_words, model_input
from tsv import Row, find_file, plain_name, read_rows, without_cyclic_gc

def stratified_sample(rows: List[Row], n: int, rng: random.Random, balanced: bool) -> List[Row]:
    """n rows keeping each label's share (or an equal count per label when balanced), in file order."""
    if n >= len(rows) and not balanced:
        return list(rows)
    by_label: Dict[str, List[Row]] = {label: [r for r in rows if r.label == label] for label in LABELS}
    if balanced:   # as many per label as the rarest label allows, so the counts are equal
        per_label = min([n // len(LABELS)] + [len(group) for group in by_label.values()])
        quota = {label: per_label for label in by_label}
    else:
        quota = {label: round(n * len(group) / len(rows)) for label, group in by_label.items()}
        quota[LABELS[-1]] = n - quota[LABELS[0]]   # rounding must not change the total
    chosen: List[Row] = []
    for label, group in by_label.items():
        chosen += rng.sample(group, quota[label])
    return sorted(chosen, key=lambda r: r.line)


def to_json(task: Task, rows: List[Row], with_output: bool, instruction: str = "") -> List[dict]:
    """Alpaca records; `output` is always the exam's label (0/1), whatever LABEL_WORDS the model answers with."""
    instruction = instruction or task.instruction
    return [
        {"instruction": instruction, "input": model_input(task, row.texts),
         "output": row.label if with_output else ""}
        for row in rows
    ]


@without_cyclic_gc()   # rows and examples by the hundred thousand, and no cycles among them
def process(task: Task, folder: Path, settings) -> None:
    """One data set: read both TSVs, draw the holdout and the training sample, write the three JSON files."""
    train_path, dev_path = find_file(folder, task, "train"), find_file(folder, task, "dev")
    train_rows = read_training_rows(task, train_path, settings.MAX_BAD_SHARE)
    train, holdout = sample(train_rows, train_path, settings)
    dev_rows, _, _ = read_rows(task, dev_path, labelled=False)
    instruction = instruction_for(task, settings.INSTRUCTION, label_words(settings.LABEL_WORDS))
    outputs = {
        "train": to_json(task, train, with_output=True, instruction=instruction),
        "val": to_json(task, holdout, with_output=True, instruction=instruction),
        "dev": to_json(task, dev_rows, with_output=False, instruction=instruction),
    }
    source = {"train_tsv": str(train_path.resolve()), "train_sha256": runtime.sha256_of(train_path),
              "dev_tsv": str(dev_path.resolve()), "dev_sha256": runtime.sha256_of(dev_path),
              "instruction": instruction, "label_words": settings.LABEL_WORDS}
    write_pre_data(settings, task, outputs, source)
    empty_dev = [row.line for row in dev_rows if not all(row.texts)]
    if empty_dev:
        print(f"  note: {len(empty_dev)} dev rows have an empty text (lines {empty_dev[:5]}); kept, so positions stay right")


def read_training_rows(task: Task, train_path: Path, max_bad_share: float) -> List[Row]:
    """The readable rows of a training file; a few unreadable ones are skipped and named, too many stop the run."""
    train_rows, bad, n_lines = read_rows(task, train_path, labelled=True)
    skipped_note = ""
    if bad:
        first_bad = ", ".join(f"line {line} ({why})" for line, why in list(bad.items())[:5])
        skipped_note = f"; skipped {len(bad)} unreadable: {first_bad}{', ...' if len(bad) > 5 else ''}"
        if len(bad) > max_bad_share * n_lines:
            raise UserError(
                f"{train_path}: {len(bad)} of {n_lines} rows cannot be read, more than MAX_BAD_SHARE "
                f"({max_bad_share:.0%}); first: {first_bad}. Check that this is the {task.name} "
                f"training file and that it is tab-separated, or raise --max_bad_share."
            )
    print(f"{train_path}: {n_lines} rows read{skipped_note}")
    return train_rows


def sample(train_rows: List[Row], train_path: Path, settings) -> tuple:
    """(training sample, holdout): HOLDOUT_SIZE rows drawn first, then MAX_SAMPLES from the rest, both stratified."""
    if settings.HOLDOUT_SIZE >= len(train_rows):
        raise UserError(
            f"HOLDOUT_SIZE={settings.HOLDOUT_SIZE} does not fit {train_path}, which has {len(train_rows)} usable "
            f"rows: choose 0 to {len(train_rows) - 1} (--holdout_size N)."
        )
    rng = random.Random(settings.SEED)
    holdout = stratified_sample(train_rows, settings.HOLDOUT_SIZE, rng, balanced=False)
    # A text that is in the holdout never goes to training, whichever of its copies was drawn: else the holdout
    # would score rows the model has seen, and train.py would keep its best checkpoint by them.
    held = {tuple(row.texts) for row in holdout}
    keys = [tuple(row.texts) for row in train_rows]
    rest = [row for row, text in zip(train_rows, keys) if text not in held]
    repeated = len(keys) - len(set(keys))
    if repeated:
        print(f"  note: {repeated} rows repeat the text of an earlier row; no text is in both the holdout and training")
    cap = settings.MAX_SAMPLES if settings.MAX_SAMPLES > 0 else len(rest)
    if cap > len(rest):
        print(f"  MAX_SAMPLES={settings.MAX_SAMPLES} is more than the {len(rest)} rows left after the holdout: using all")
    elif settings.MAX_SAMPLES <= 0:
        print(f"  MAX_SAMPLES={settings.MAX_SAMPLES} (0 or less): using all {len(rest)} rows left after the holdout")
    train = stratified_sample(rest, cap, rng, settings.BALANCED)
    if not train:
        raise UserError(
            f"{train_path}: MAX_SAMPLES={settings.MAX_SAMPLES}{' with BALANCED' if settings.BALANCED else ''} leaves no "
            f"training example out of {len(rest)} rows: raise --max_samples (0 = all rows)."
        )
    return train, holdout


def write_pre_data(settings, task: Task, outputs: Dict[str, List[dict]], source: dict) -> None:
    """pre_data/<ds>/: the three JSON files and what they were built from, put in place together: after any failure
    the folder holds every old file or every new one, never a new train file beside an old holdout."""
    final = runtime.through_links(runtime.pre_data_file(settings, task.name, "train").parent)
    staging = final.with_name(runtime.STAGING_PREFIX + task.name)
    try:
        for split, examples in outputs.items():
            runtime.write_json(staging / runtime.pre_data_file(settings, task.name, split).name, examples)
        runtime.write_json(staging / runtime.SOURCE_RECORD, source)
        runtime.replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)   # gone already when it was put in place
    for split, examples in outputs.items():
        balance = label_counts([e["output"] for e in examples]) if split != "dev" else "no labels"
        path = runtime.shown(runtime.pre_data_file(settings, task.name, split))
        print(f"  wrote {len(examples):>6} {split:<5} examples to {path}  ({balance})")


def main(settings) -> None:
    folder = runtime.data_dir(settings)
    if "DATA_SET" in settings.OVERRIDDEN:
        chosen = [TASKS[settings.DATA_SET]]
    else:
        names = {plain_name(p.name) for p in folder.iterdir()}
        chosen = [t for t in TASKS.values() if plain_name(f"{t.name}_train.tsv") in names]
        if not chosen:
            raise UserError(
                f"{folder} holds no <dataset>_train.tsv for {', '.join(TASKS)} (it holds: "
                f"{', '.join(sorted(names)) or 'nothing'}). Point DATA_DIR at the exam's data folder."
            )
    pre_data = runtime.project_path(settings.PRE_DATA_DIR)
    with runtime.exclusive(pre_data, "data_process.py"):
        if runtime.remove_leftovers(pre_data):
            print(f"removed unfinished files an interrupted run left in {runtime.shown(pre_data)}")
        for task in TASKS.values():   # a swap cut short by a kill, for any task: its old folder is the whole one
            runtime.restore_folder(runtime.pre_data_file(settings, task.name, "train").parent)
        for task in chosen:
            print(f"[{task.name}]")
            process(task, folder, settings)
    print(f"data_process: wrote {', '.join(t.name for t in chosen)} to "
          f"{runtime.shown(runtime.project_path(settings.PRE_DATA_DIR))}/")


if __name__ == "__main__":
    runtime.run(main, __doc__)
