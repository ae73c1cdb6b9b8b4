"""Part 2: the share of real tokens in training batches, and part 3: data_process at GLUE's full size against a bare
pandas read of the same files."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib (it sets up the rest), also as tools.bench_...
from benchlib import ROOT  # noqa: E402

import re
import resource
import shutil
import statistics
import subprocess
import time

import json

from bench_memory import lora_widths  # noqa: E402
from benchlib import GEMMA_2B, GLUE_DIR, GLUE_QQP_DEV_ROWS, GLUE_QQP_TRAIN_ROWS, row, tokenizer_folder  # noqa: E402
from bench_predict import heavy_imports  # noqa: E402

# --- 2. padding in training batches -----------------------------------------------------------------

def real_data_folder(workdir: Path, glue_size: bool):
    """CoLA and QQP train/dev files from data/glue (tools/get_glue.py) under the names data_process expects, or None.

    With glue_size, QQP's rows are repeated up to GLUE's 363,846 train and 40,430 dev rows.
    """
    cola, qqp = GLUE_DIR / "CoLA", GLUE_DIR / "QQP"
    needed = [cola / "train.tsv", cola / "dev.tsv", qqp / "train.tsv", qqp / "dev.tsv"]
    if not all(p.is_file() for p in needed):
        return None
    folder = workdir / ("data-glue-size" if glue_size else "data-real")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(cola / "train.tsv", folder / "CoLA_train.tsv")
    shutil.copy(cola / "dev.tsv", folder / "CoLA_dev.tsv")
    train_header, *train_lines = (qqp / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    dev_header, *dev_lines = (qqp / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    if glue_size:
        train_lines = (train_lines * (GLUE_QQP_TRAIN_ROWS // len(train_lines) + 1))[:GLUE_QQP_TRAIN_ROWS]
        dev_lines = (dev_lines * (GLUE_QQP_DEV_ROWS // len(dev_lines) + 1))[:GLUE_QQP_DEV_ROWS]
    (folder / "QQP_train.tsv").write_text(train_header + "".join(train_lines), encoding="utf-8")
    (folder / "QQP_dev.tsv").write_text(dev_header + "".join(dev_lines), encoding="utf-8")
    return folder


def run_data_process(data_dir: Path, out_dir: Path, extra=()) -> tuple:
    """(seconds, stdout, stderr) of `python data_process.py --data_dir D --pre_data_dir O`, as a user runs it."""
    command = [sys.executable, *extra, str(ROOT / "data_process.py"), "--data_dir", str(data_dir),
               "--pre_data_dir", str(out_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"data_process.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout, done.stderr


def encoded_features(tokenizer, examples: list, settings) -> list:
    """The training features train.py builds from pre_data examples (input ids, mask, labels), as a list."""
    import modeling
    import train

    dataset, _ = train.encode(settings, tokenizer, examples, settings.PROMPT_LOSS_WEIGHT > 0,
                              modeling.label_token_ids(tokenizer))
    return list(dataset)


def real_token_share(features: list, collator, settings, grouped: bool) -> float:
    """Real tokens / batch slots over EPOCHS epochs, in the Trainer's order and batches."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = [len(f["input_ids"]) for f in features]
    generator = torch.Generator().manual_seed(settings.SEED)
    b = settings.BATCH_SIZE
    real = slots = 0
    for _ in range(settings.EPOCHS):
        if grouped:   # what Trainer._get_train_sampler builds when group_by_length is on
            order = list(LengthGroupedSampler(b * settings.GRAD_ACCUM, lengths=lengths, generator=generator))
        else:
            order = torch.randperm(len(features), generator=generator).tolist()
        for start in range(0, len(order), b):
            batch = collator([features[i] for i in order[start:start + b]])
            real += int(batch["attention_mask"].sum())
            slots += batch["attention_mask"].numel()
    return real / slots


def bench_padding(workdir: Path, settings) -> None:
    part = "2 padding"
    data_dir = real_data_folder(workdir, glue_size=False)
    if data_dir is None:
        row(part, "skipped", f"no real CoLA/QQP files in {GLUE_DIR}: python tools/get_glue.py")
        return
    from transformers import DataCollatorForSeq2Seq
    import modeling

    pre_data = workdir / "pre_data-real"
    run_data_process(data_dir, pre_data)
    tokenizer = modeling.load_tokenizer(tokenizer_folder(workdir))
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    row(part, "settings", f"MAX_SAMPLES {settings.MAX_SAMPLES}, BATCH_SIZE {settings.BATCH_SIZE}, GRAD_ACCUM "
                          f"{settings.GRAD_ACCUM}, MAX_LENGTH {settings.MAX_LENGTH}, GROUP_BY_LENGTH "
                          f"{settings.GROUP_BY_LENGTH}, EPOCHS {settings.EPOCHS}; stand-in tokenizer: the tiny Gemma's "
                          f"SentencePiece (1024 pieces; gemma-2b's 256k pieces give fewer tokens per text)")
    for task_name in ("CoLA", "QQP"):
        examples = json.loads((pre_data / task_name / f"{task_name}_train.json").read_text(encoding="utf-8"))
        features = encoded_features(tokenizer, examples, settings)
        lengths = [len(f["input_ids"]) for f in features]
        at_cap = sum(n == settings.MAX_LENGTH for n in lengths)
        row(part, f"{task_name}: {len(features)} examples, tokens each",
            f"mean {statistics.mean(lengths):.0f}, max {max(lengths)} ({at_cap} cut at MAX_LENGTH)")
        shares = {grouped: real_token_share(features, collator, settings, grouped) for grouped in (True, False)}
        for grouped, value in shares.items():
            default = grouped == settings.GROUP_BY_LENGTH   # the target applies to what config.py does
            row(part, f"{task_name}: real-token share, {'length-grouped' if grouped else 'random'} batches"
                      f"{' (the setting)' if default else ''}", f"{100 * value:.1f} %",
                ">= 90 %" if default else "(report)", value >= 0.90 if default else None)
        fixed = sum(lengths) / (len(lengths) * settings.MAX_LENGTH)
        row(part, f"{task_name}: real-token share, padded to MAX_LENGTH", f"{100 * fixed:.1f} %", "(report)")
        a10_minutes_row(part, task_name, lengths, shares[settings.GROUP_BY_LENGTH], settings)


# An A10's dense bf16 peak, and the share of it a LoRA step of gemma-2b reaches: guesses, not measurements (no GPU
# has run one for us), so the estimate is given at a likely and at a poor share.
A10_BF16_FLOPS = 125e12
A10_SHARES = (0.25, 0.10)


def a10_minutes_row(part: str, task_name: str, lengths: list, share: float, settings) -> None:
    """train.py's compute at these settings on gemma-2b, from the batch slots the Trainer fills here: a LoRA step
    costs about 4 FLOPs per weight of the layers per token slot (forward, and backward to the activations: the frozen
    weights get no gradients); the output layer runs at the answer only. Holdout checks are forward passes."""
    weights = GEMMA_2B["num_hidden_layers"] * sum(i * o for i, o in lora_widths(GEMMA_2B).values())
    train_slots = settings.EPOCHS * sum(lengths) / share
    checks = 1 + settings.EPOCHS * settings.EVALS_PER_EPOCH
    holdout_slots = checks * settings.HOLDOUT_SIZE * statistics.mean(lengths) / share
    flops = 4 * weights * train_slots + 2 * weights * holdout_slots
    minutes = [flops / (A10_BF16_FLOPS * used) / 60 for used in A10_SHARES]
    row(part, f"{task_name}: train.py on gemma-2b, A10 time (estimate)",
        f"{minutes[0]:.0f}-{minutes[1]:.0f} min at {100 * A10_SHARES[0]:.0f}-{100 * A10_SHARES[1]:.0f} % of 125 TFLOPS "
        f"({flops / 1e15:.1f} PFLOP: {weights / 1e9:.2f} B layer weights, {train_slots / 1e6:.2f} M training token "
        f"slots; not measured on a GPU)", "< 60 min", minutes[1] < 60)


# --- 3. data_process wall time ----------------------------------------------------------------------

def bench_data_process(workdir: Path, reps: int, tiny: bool) -> None:
    part = "3 data_process"
    data_dir = real_data_folder(workdir, glue_size=not tiny)
    if data_dir is None:
        row(part, "skipped", f"no real CoLA/QQP files in {GLUE_DIR}: python tools/get_glue.py")
        return
    rows = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(data_dir.iterdir())}
    row(part, "input", ", ".join(f"{name} {n:,} lines" for name, n in rows.items())
        + ("" if tiny else " (QQP rows repeated up to GLUE's size)"))
    seconds, cpu = [], []
    for _ in range(reps):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        took, out, _ = run_data_process(data_dir, workdir / "pre_data-timed")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds.append(took)
        cpu.append(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
    written = re.findall(r"wrote\s+(\d+) (\w+)", out)
    row(part, "examples written", ", ".join(f"{n} {split}" for n, split in written))
    row(part, "wall time, CoLA + QQP", f"{statistics.median(seconds):.2f} s (median of {reps}; "
                                       f"{min(seconds):.2f}-{max(seconds):.2f}); "
                                       f"CPU time {statistics.median(cpu):.2f} s",
        "<= 5 s", statistics.median(seconds) <= 5)
    bare = []
    for _ in range(reps):   # the floor: pandas reading the same files, every field a string, nothing checked
        import csv

        import pandas
        started_cpu = time.process_time()
        for path in sorted(data_dir.iterdir()):
            pandas.read_csv(path, sep="\t", header=None, quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                            on_bad_lines="skip", engine="c")
        bare.append(time.process_time() - started_cpu)
    ratio = statistics.median(cpu) / statistics.median(bare)
    row(part, "CPU time of a bare pandas read", f"{statistics.median(bare):.2f} s (median of {reps})")
    row(part, "data_process CPU / pandas CPU", f"{ratio:.1f} x", "<= 3 x", ratio <= 3)
    _, _, imports = run_data_process(data_dir, workdir / "pre_data-importtime", extra=("-X", "importtime"))
    heavy = heavy_imports(imports)
    row(part, "full run imports torch/transformers", ", ".join(heavy) or "neither", "neither", not heavy)
