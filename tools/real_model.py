"""A real model through the four exam commands, on the real GLUE files in data/glue: measured accuracy.

    python tools/real_model.py                                   # CoLA, QQP, SST-2 with config.py's settings
    python tools/real_model.py --tasks CoLA --row lr-1e-3 --learning_rate 1e-3    # one ablation row
    python tools/real_model.py --model_path models/smollm2-135m --row smollm2 --tasks SST-2
    python tools/real_model.py --tasks CoLA --row lr-1e-3 --fill_latest    # a row from before the last_* columns

Needs a model folder (default models/gemma-3-270m: python tools/get_gemma3_270m.py; Gemma 3 needs the latest stack), the GLUE
files in data/glue (python tools/get_glue.py). For each task it lays the files out as the exam ships them, in
OUT/<task>/data: <ds>_train.tsv (data/glue/<task>/train.tsv as it is) and <ds>_dev.tsv without labels (from
data/glue/<task>/dev.tsv: CoLA's in-domain dev, SST-2's GLUE dev, for QQP the last 1000 rows of the train sample the
local copy holds, or GLUE's dev), whose labels go to an answer file for grade.py. Then it runs, as a candidate does:
    python data_process.py     MAX_SAMPLES rows stratified + a HOLDOUT_SIZE holdout, never trained on
    python train.py            with every --name value given here
    python predict.py          the first PREDICT_COUNT dev items, one at a time (timed), label scoring
    python grade.py            accuracy on those items
and, once per task, model and prompt (instruction, label words), scores the untrained model on the holdout and
counts the free-decoding answers that are not a label (--decode generate on the PREDICT_COUNT dev items, trained
model; a later row with the same prompts, seed and holdout in the same table leaves that column empty). Beside the
checkpoint train.py kept (best plain holdout accuracy) it scores the run's latest checkpoint on the same dev items,
with the threshold its own holdout check set and without (columns last_*): evidence on how to choose. One row per
(task, --row) goes to OUT/real_model.csv, which is the cache: a re-run skips finished rows (delete a row to redo it).
The table is printed at the end and written to OUT/real_model.md. Other --name value pairs are config.py settings
for train.py.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
import runtime  # noqa: E402
from tasks import LABELS, label_words, metrics  # noqa: E402

GLUE_DIR = ROOT / "data" / "glue"   # tools/get_glue.py writes it
COLUMNS = ["task", "row", "model", "overrides", "n_train", "n_holdout", "majority", "untrained_acc", "untrained_mcc",
           "holdout_acc", "holdout_mcc", "threshold", "tuned_holdout_acc", "predict_val_acc", "dev_n", "dev_acc",
           "dev_mcc", "dev_acc_plain", "kept_step", "last_step", "last_holdout_acc", "last_threshold", "last_dev_acc",
           "last_dev_acc_plain", "steps", "train_min", "predict_s_per_item", "invalid_generate", "precision", "stack"]


def lay_out(task: str, folder: Path) -> Path:
    """OUT/<task>/data/<ds>_{train,dev}.tsv as the exam ships them (the dev file without labels), made from
    data/glue/<task>/{train,dev}.tsv (tools/get_glue.py), and the dev labels as OUT/<task>/answers/result_<ds>.txt."""
    data, answers = folder / "data", folder / "answers"
    if (answers / f"result_{task}.txt").is_file():
        return data
    source = GLUE_DIR / task
    if not (source / "dev.tsv").is_file():
        raise SystemExit(f"real_model: no GLUE files in {source}: run python tools/get_glue.py (online) or "
                         f"python tools/get_glue.py --from YOUR_COPY first.")
    data.mkdir(parents=True, exist_ok=True)
    answers.mkdir(parents=True, exist_ok=True)
    dev = [line.split("\t") for line in (source / "dev.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
    if task == "CoLA":   # the raw layout: no header; source, label, annotation, sentence
        dev_text = "index\tsentence\n" + "".join(f"{i}\t{row[3]}\n" for i, row in enumerate(dev))
        gold = [row[1] for row in dev]
    elif task == "QQP":  # id, qid1, qid2, question1, question2, is_duplicate
        dev_text = "id\tquestion1\tquestion2\n" + "".join(f"{row[0]}\t{row[3]}\t{row[4]}\n" for row in dev[1:])
        gold = [row[5] for row in dev[1:]]
    else:                # sentence, label
        dev_text = "index\tsentence\n" + "".join(f"{i}\t{row[0]}\n" for i, row in enumerate(dev[1:]))
        gold = [row[1] for row in dev[1:]]
    (data / f"{task}_train.tsv").write_text((source / "train.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    (data / f"{task}_dev.tsv").write_text(dev_text, encoding="utf-8")
    (answers / f"result_{task}.txt").write_text("\n".join(gold) + "\n", encoding="utf-8")
    return data


def run(script: str, args: list, log: Path) -> str:
    """Run one exam script as a user does and return its output. Its progress (stderr) goes to the log as it
    runs (`tail -f` it: a training run takes an hour on a CPU), its output after it."""
    started = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ python {script} {' '.join(args)}\n")
        f.flush()
        done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=f,
                              text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        f.write(f"\n--- {script}: {time.time() - started:.0f} s, exit {done.returncode}; its output:\n{done.stdout}")
    if done.returncode != 0:
        raise SystemExit(f"real_model: {script} failed (exit {done.returncode}); see {log}\n"
                         f"{log.read_text(encoding='utf-8')[-2000:]}")
    return done.stdout


def stack_name() -> str:
    """The package stack these scripts run on, as the table's `stack` column tells it."""
    versions = runtime.package_versions(("python", "torch", "transformers"))
    return f"py{versions['python']} torch {versions['torch']} transformers {versions['transformers']}"


def untrained_scores(settings, examples: list) -> dict:
    """The base model's label scoring on the holdout, before any training (what prompting alone gives)."""
    import modeling
    model, tokenizer = modeling.load_base_model(settings)
    predicted, _, _ = modeling.answer_examples(model, tokenizer, examples, settings.MAX_LENGTH, batch_size=8,
                                      progress="untrained holdout", words=label_words(settings.LABEL_WORDS))
    return metrics([e["output"] for e in examples], predicted)


def read_rows(path: Path) -> list:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{c: str(r.get(c, "")) for c in COLUMNS} for r in rows])
    runtime.write_atomically(path, text.getvalue())
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    runtime.write_atomically(path.with_suffix(".md"), "\n".join(lines) + "\n")


def same_prompts(one, other) -> bool:
    """Whether two runs score the same holdout prompts: the same rows (SEED, HOLDOUT_SIZE), words and length."""
    return all(getattr(one, name) == getattr(other, name)
               for name in ("SEED", "HOLDOUT_SIZE", "INSTRUCTION", "LABEL_WORDS", "MAX_LENGTH", "MODEL_PATH"))


def run_places(task: str, folder: Path) -> list:
    """Where one row's run reads and writes: its own pre_data, adapter, answers and checkpoints in OUT/<task>/<row>."""
    return ["--data_set", task, "--data_dir", str(folder.parent / "data"), "--answer_dir", str(folder.parent / "answers"),
            "--pre_data_dir", str(folder / "pre_data"), "--saved_model_dir", str(folder / "saved_model"),
            "--result_dir", str(folder / "questionB"), "--checkpoint_dir", str(folder / "checkpoints")]


def one_row(task: str, name: str, overrides: list, out: Path, rows: list) -> dict:
    """data_process, the untrained score, train, predict (holdout and dev, tuned and plain), grade and free decoding."""
    folder = out / task / name
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    lay_out(task, out / task)
    places = run_places(task, folder)
    where = places + overrides
    settings = runtime.load_settings(where)
    run("data_process.py", where, log)
    holdout = runtime.load_examples(runtime.pre_data_file(settings, task, "val"))
    model_name = runtime.model_dir(settings).name
    alike = [r for r in rows if r["task"] == task and r["model"] == model_name
             and same_prompts(runtime.load_settings(places + shlex.split(r["overrides"])), settings)]
    earlier = next((r for r in alike if r["untrained_acc"]), None)
    if earlier:   # the same holdout prompts and model: the untrained score cannot differ
        untrained = {"accuracy": float(earlier["untrained_acc"]), "mcc": float(earlier["untrained_mcc"])}
    else:
        untrained = untrained_scores(settings, holdout)
    run("train.py", where, log)
    record = adapters.read_run_record(runtime.adapter_dir(settings, task))
    measured = predictions(settings, where, folder, log, record, decode_freely=not any(r["invalid_generate"] for r in alike))
    measured.update(latest_checkpoint_columns(where, folder, log, record, measured))
    majority = max(sum(e["output"] == label for e in holdout) for label in LABELS) / len(holdout)
    return dict(measured, task=task, row=name, model=model_name, overrides=shlex.join(overrides),
                n_train=len(runtime.load_examples(runtime.pre_data_file(settings, task, "train"))),
                n_holdout=len(holdout), majority=f"{majority:.4f}", untrained_acc=f"{untrained['accuracy']:.4f}",
                untrained_mcc=f"{untrained['mcc']:.3f}", holdout_acc=f"{record['holdout_accuracy']:.4f}",
                holdout_mcc=f"{record['holdout_mcc']:.3f}", threshold=f"{record.get('decision_threshold', 0):.3f}",
                tuned_holdout_acc=f"{record.get('tuned_holdout_accuracy', record['holdout_accuracy']):.4f}",
                steps=record["steps"], train_min=f"{record['train_seconds'] / 60:.1f}", precision=settings.PRECISION,
                stack=stack_name())


def latest_of_a_finished_row(row: dict, out: Path) -> dict:
    """A row from before the last_* columns, with them, from the checkpoints its run left in OUT/<task>/<row>."""
    folder = out / row["task"] / row["row"]
    where = run_places(row["task"], folder) + shlex.split(row["overrides"])
    record = adapters.read_run_record(runtime.adapter_dir(runtime.load_settings(where), row["task"]))
    columns = latest_checkpoint_columns(where, folder, folder / "log.txt", record, row)
    if not columns:
        raise SystemExit(f"real_model: no latest checkpoint of this run in {folder / 'checkpoints'} to score.")
    return dict(row, **columns)


def predictions(settings, where: list, folder: Path, log: Path, record: dict, decode_freely: bool) -> dict:
    """The trained adapter's columns: holdout again by predict, dev by grade (with the tuned threshold and
    without), the time an item takes, and the free-decoding answers that are not a label."""
    scored_again = run("predict.py", where + ["--split", "val"], log)
    predict_val = re.search(r"predict: holdout .*?= ([\d.]+) %", scored_again)
    started = time.time()
    run("predict.py", where, log)
    per_item = (time.time() - started) / settings.PREDICT_COUNT   # start-up and loading included, as a user waits
    dev = graded(where, log)
    plain_dev = dev
    if record.get("decision_threshold"):   # what the threshold set on the holdout is worth on the dev rows
        plain_dev = predicted_and_graded(where + ["--decision", "plain", "--result_dir", str(folder / "plain")], log)
    invalid = ""
    if decode_freely:
        generated = run("predict.py", where + ["--decode", "generate", "--result_dir", str(folder / "generate")], log)
        found = re.search(r"(\d+) answers were not a label", generated)
        invalid = f"{found.group(1) if found else 0}/{settings.PREDICT_COUNT}"
    return {"predict_val_acc": f"{float(predict_val.group(1)) / 100:.4f}" if predict_val else "", "dev_n": dev["n"],
            "dev_acc": f"{dev['accuracy']:.4f}", "dev_mcc": f"{dev['mcc']:.3f}",
            "dev_acc_plain": f"{plain_dev['accuracy']:.4f}", "predict_s_per_item": f"{per_item:.3f}",
            "invalid_generate": invalid}


def graded(where: list, log: Path) -> dict:
    """grade.py's metrics for the answers predict.py wrote with these settings."""
    return json.loads(run("grade.py", where + ["--json"], log))["data_sets"][0]["accuracy"]["metrics"]


def predicted_and_graded(where: list, log: Path) -> dict:
    run("predict.py", where, log)
    return graded(where, log)


def latest_checkpoint(record: dict, checkpoints: Path) -> Optional[dict]:
    """The kept run's latest checkpoint in checkpoints (train.py keeps the best and the latest) with its holdout
    check from the run record's log: {folder, step, holdout_accuracy, threshold}; None where there is none, or the
    folder holds another attempt's (a collapsed run was restarted and an earlier attempt was kept)."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=runtime.checkpoint_step)
    last_attempt = (record.get("runs") or [record])[-1]   # records from before the restarts have no "runs"
    if not found or not record.get("best_checkpoint") or last_attempt["seed"] != record["seed"]:
        return None
    step = runtime.checkpoint_step(found[-1])
    # the first holdout check logged at that step: the Trainer's closing evaluate() logs the kept checkpoint there too
    check = next((e for e in record["log_history"] if e.get("step") == step and "eval_threshold" in e), None)
    if check is None:
        return None
    return {"folder": found[-1], "step": step, "holdout_accuracy": check["eval_accuracy"],
            "threshold": check["eval_threshold"]}


def latest_checkpoint_columns(where: list, folder: Path, log: Path, record: dict, kept: dict) -> dict:
    """The last_* columns: the latest checkpoint on the dev items, with its own holdout threshold and without. Where
    the latest checkpoint is the kept one, its columns are the kept one's; nothing is scored twice."""
    latest = latest_checkpoint(record, folder / "checkpoints" / record["data_set"])
    if latest is None:
        return {}
    kept_step = runtime.checkpoint_step(record["best_checkpoint"])
    if latest["step"] == kept_step:
        return {"kept_step": kept_step, "last_step": kept_step, "last_holdout_acc": f"{record['holdout_accuracy']:.4f}",
                "last_threshold": f"{record['decision_threshold']:.3f}", "last_dev_acc": kept["dev_acc"],
                "last_dev_acc_plain": kept["dev_acc_plain"]}
    # an adapter folder as train.py writes one: the checkpoint's weights, the run record with its threshold
    adapter = folder / "latest" / "saved_model" / record["data_set"]
    adapter.mkdir(parents=True, exist_ok=True)
    for weights in latest["folder"].glob("adapter_*"):
        shutil.copy(weights, adapter / weights.name)
    adapters.write_run_record(adapter, dict(record, decision_threshold=latest["threshold"]))
    at_latest = where + ["--saved_model_dir", str(adapter.parent)]
    dev = predicted_and_graded(at_latest + ["--result_dir", str(folder / "latest" / "questionB")], log)
    plain = dev
    if latest["threshold"]:
        plain = predicted_and_graded(at_latest + ["--result_dir", str(folder / "latest" / "plain"), "--decision", "plain"],
                                     log)
    return {"kept_step": kept_step, "last_step": latest["step"], "last_holdout_acc": f"{latest['holdout_accuracy']:.4f}",
            "last_threshold": f"{latest['threshold']:.3f}", "last_dev_acc": f"{dev['accuracy']:.4f}",
            "last_dev_acc_plain": f"{plain['accuracy']:.4f}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="CoLA,QQP,SST-2")
    parser.add_argument("--row", default="defaults", help="name of this row of the table (one per set of overrides)")
    parser.add_argument("--out", type=Path, default=ROOT / "real_runs", help="folder for runs and the table")
    parser.add_argument("--fill_latest", action="store_true",
                        help="for a row already in the table without last_* columns: score its run's latest checkpoint")
    args, overrides = parser.parse_known_args(argv)
    if not any(o.startswith("--model_path") for o in overrides):
        overrides = ["--model_path", str(ROOT / "models" / "gemma-3-270m")] + overrides
    table = args.out / "real_model.csv"
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        task = runtime.load_settings(["--data_set", task]).DATA_SET
        rows = read_rows(table)
        done = next((r for r in rows if r["task"] == task and r["row"] == args.row), None)
        if done and not (args.fill_latest and not done.get("last_step")):
            print(f"real_model: {task} / {args.row} is already in {table}")
            continue
        print(f"real_model: {task} / {args.row} ... (progress: tail -f {args.out / task / args.row / 'log.txt'})", flush=True)
        row = latest_of_a_finished_row(done, args.out) if done else one_row(task, args.row, overrides, args.out, rows)
        with runtime.exclusive(args.out, wait=True):   # two runners may share a table: read, add and write under a lock
            rows = [r for r in read_rows(table) if not (r["task"] == task and r["row"] == args.row)] + [row]
            write_rows(table, rows)
        print(f"real_model: {task} / {args.row}: holdout {row['holdout_acc']} (MCC {row['holdout_mcc']}), dev "
              f"{row['dev_acc']} on {row['dev_n']} items, untrained {row['untrained_acc']}, majority {row['majority']}",
              flush=True)
    print(table.with_suffix(".md").read_text(encoding="utf-8") if table.is_file() else "no rows")
    print(f"real_model: table in {table} and {table.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
