"""LoRA-fine-tune the base model (gemma-2b) to answer one GLUE task with 0 or 1.

    python train.py                          # DATA_SET from config.py
    python train.py --data_set QQP --epochs 1
    python train.py --resume                 # continue an interrupted run from its last checkpoint
    torchrun --nproc_per_node 2 train.py     # several GPUs (accelerate launch --num_processes 2 train.py works too)

Reads pre_data/<ds>/<ds>_train.json (and _val.json, the holdout), trains with the Hugging Face Trainer,
checks holdout accuracy EVALS_PER_EPOCH times an epoch with the same label scoring predict.py uses,
and writes the best adapter (or, with AVERAGE_LAST_CHECKS, the mean of the last checks' weights) to saved_model/<ds>/
(adapter_config.json + adapter_model.safetensors),
with run_record.json (settings, versions, data hashes, accuracy, decision threshold) and loss_curve.png beside
it. A run whose holdout MCC stays below COLLAPSE_MCC (it answers one label, whatever the input) starts again
with the next seed and a lower learning rate, up to RESTARTS times within TRAIN_BUDGET_MINUTES; the best run
is kept. Checkpoints for --resume go to checkpoints/<ds>/.
"""
from __future__ import annotations

import gc
import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import DataCollatorForSeq2Seq, set_seed

import adapters
import modeling
import runtime
import training
import versions
from runtime import UserError
from tasks import label_words


def main(settings) -> None:
    task_name = settings.DATA_SET
    train_file = runtime.pre_data_file(settings, task_name, "train")
    val_file = runtime.pre_data_file(settings, task_name, "val")
    train_examples, val_examples = runtime.load_examples(train_file), runtime.load_examples(val_file)
    adapter_dir = runtime.adapter_dir(settings, task_name)
    checkpoint_dir = runtime.project_path(settings.CHECKPOINT_DIR) / task_name
    # Under torchrun / accelerate launch every process runs this script; only the first one writes files.
    lock = runtime.exclusive(adapter_dir.parent, "train.py") if is_main_process() else nullcontext()
    with lock:
        record = train_adapter(settings, train_examples, val_examples, adapter_dir, checkpoint_dir,
                               data_sha256={"train": runtime.sha256_of(train_file), "val": runtime.sha256_of(val_file)},
                               resume=settings.RESUME)
    if record:
        plotted = " and loss_curve.png" if (adapter_dir / "loss_curve.png").is_file() else ""
        tuned = (f"; with the decision threshold {record['decision_threshold']:+.3f} set on it "
                 f"{record['tuned_holdout_accuracy']:.4f} (MCC {record['tuned_holdout_mcc']:.3f}), which predict uses"
                 if record["decision_threshold"] else "")
        averaged = record["averaged_steps"]
        of_what = f" (the mean of the checks at steps {', '.join(map(str, averaged))})" if averaged else ""
        print(f"train: holdout accuracy {record['holdout_accuracy']:.4f} (MCC {record['holdout_mcc']:.3f}){tuned} after "
              f"{record['steps']} steps in {record['train_seconds'] / 60:.1f} min{of_what}; adapter, run_record.json"
              f"{plotted} written to {runtime.shown(adapter_dir)}/")


def train_adapter(settings, train_examples: list, val_examples: list, adapter_dir: Path, checkpoint_dir: Path,
                  data_sha256: dict, resume: bool = False, seed: Optional[int] = None, max_steps: Optional[int] = None,
                  eval_every: Optional[int] = None) -> dict:
    """The whole recipe, from examples to a saved adapter; returns its run record ({} in processes other than
    the first under torchrun). train.py's main calls it on pre_data's files; the lab on samples of its own.

    seed, max_steps and eval_every (optimiser steps between holdout checks) default to what SEED, MAX_STEPS /
    EPOCHS and EVALS_PER_EPOCH give; resume continues the first run from its last checkpoint in checkpoint_dir.
    """
    refuse_data_parallel()
    first_seed = settings.SEED if seed is None else seed
    adapter_dir = runtime.through_links(adapter_dir)   # saved_model/<ds> as a link: the adapter goes where it points
    staging = adapter_dir.with_name(adapter_dir.name + ".new")
    started, attempts, kept = time.time(), [], None
    for attempt in range(settings.RESTARTS + 1):
        learning_rate = settings.LEARNING_RATE * settings.RESTART_LR_FACTOR ** attempt
        outcome = one_run(settings, train_examples, val_examples, checkpoint_dir, data_sha256, seed=first_seed + attempt,
                          learning_rate=learning_rate, max_steps=max_steps, eval_every=eval_every,
                          resume=resume and attempt == 0, quiet=attempt > 0,
                          stop_when_collapsed=attempt < settings.RESTARTS)
        attempts.append(outcome.summary)
        if kept is None or ranking(outcome.summary) > ranking(kept.summary):
            kept = outcome
            if is_main_process():
                shutil.rmtree(staging, ignore_errors=True)
                outcome.model.save_pretrained(str(staging))
        del outcome.model
        release_memory()
        if not attempts[-1]["collapsed"] or attempt == settings.RESTARTS:
            break
        spent = (time.time() - started) / 60
        if spent + attempts[-1]["full_run_minutes"] > settings.TRAIN_BUDGET_MINUTES:
            print(f"the run collapsed (holdout MCC {attempts[-1]['tuned_holdout_mcc']:.3f}); another would not end "
                  f"within TRAIN_BUDGET_MINUTES={settings.TRAIN_BUDGET_MINUTES:g} ({spent:.0f} min spent): keeping "
                  f"the best run so far")
            break
        print(f"the run collapsed (holdout MCC {attempts[-1]['tuned_holdout_mcc']:.3f} < COLLAPSE_MCC="
              f"{settings.COLLAPSE_MCC:g}): starting again with seed {first_seed + attempt + 1} and learning rate "
              f"{learning_rate * settings.RESTART_LR_FACTOR:.2e}")
    leave_process_group()
    if not is_main_process():
        return {}
    record = run_record(settings, kept, attempts, time.time() - started, len(train_examples), len(val_examples),
                        instruction=train_examples[0]["instruction"] if train_examples else "")
    record["data_sha256"] = data_sha256
    save(record, staging, adapter_dir)
    return record


def one_run(settings, train_examples: list, val_examples: list, checkpoint_dir: Path, data_sha256: dict, seed: int,
            learning_rate: float, max_steps: Optional[int], eval_every: Optional[int], resume: bool,
            quiet: bool, stop_when_collapsed: bool) -> SimpleNamespace:
    """One training run: fresh LoRA on the base model, the Trainer, the best checkpoint by holdout accuracy.
    stop_when_collapsed: end the run at half its steps if the checkpoint it would keep has a holdout MCC below COLLAPSE_MCC."""
    set_seed(seed)
    model, tokenizer = build_model(settings)
    label_ids = modeling.label_token_ids(tokenizer, label_words(settings.LABEL_WORDS))
    train_data, truncated = encode(settings, tokenizer, train_examples, settings.PROMPT_LOSS_WEIGHT > 0, label_ids)
    eval_data, _ = encode(settings, tokenizer, val_examples, False, label_ids)   # scored on the answer, always
    plan = plan_steps(settings, len(train_data), max_steps, eval_every)
    if not quiet:
        print_plan(settings, model, plan, len(train_data), truncated, len(val_examples))
    trainer = training.HoldoutTrainer(
        model=model, args=trainer_arguments(settings, plan, checkpoint_dir, seed, learning_rate), train_dataset=train_data,
        eval_dataset=eval_data, data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        label_ids=label_ids, prompt_loss_weight=settings.PROMPT_LOSS_WEIGHT,
        threshold_min_gain=settings.THRESHOLD_MIN_GAIN, lora_plus_ratio=settings.LORA_PLUS_RATIO,
        keep_latest_within=settings.KEEP_LATEST_WITHIN)
    training.quiet_progress(trainer)
    trainer.add_callback(versions.CheckTheLastStep())
    if stop_when_collapsed:
        trainer.add_callback(training.CollapseGuard(settings.COLLAPSE_MCC))
    started = time.time()
    try:
        with versions.checkpoint_loading():
            trainer.train(resume_from_checkpoint=resume_point(settings, resume, checkpoint_dir, data_sha256))
        averaged_steps = average_last_checks(settings, model, checkpoint_dir)
        best = trainer.evaluate()   # the kept checkpoint (or the average) is in the model by now: record its own scores
        best.update(holdout_as_predict_scores_it(settings, model, tokenizer, val_examples))
    except torch.cuda.OutOfMemoryError:
        raise UserError(
            f"the GPU ran out of memory. Lower BATCH_SIZE (now {settings.BATCH_SIZE}; raise GRAD_ACCUM to keep the "
            f"effective batch), lower MAX_LENGTH (now {settings.MAX_LENGTH}), or set GRADIENT_CHECKPOINTING = True "
            f"(--gradient_checkpointing), then run again; the adapter already in saved_model is untouched."
        ) from None
    minutes = (time.time() - started) / 60
    state = trainer.state
    summary = {"seed": seed, "learning_rate": learning_rate, "steps": state.global_step,
               "holdout_accuracy": best["eval_accuracy"], "holdout_mcc": best["eval_mcc"],
               "decision_threshold": best["eval_threshold"], "tuned_holdout_accuracy": best["eval_tuned_accuracy"],
               "tuned_holdout_mcc": best["eval_tuned_mcc"], "averaged_steps": averaged_steps,
               "collapsed": best["eval_tuned_mcc"] < settings.COLLAPSE_MCC,
               "minutes": round(minutes, 2), "full_run_minutes": minutes * plan.total_steps / max(1, state.global_step)}
    return SimpleNamespace(model=model, summary=summary, state=state)


def average_last_checks(settings, model, checkpoint_dir: Path) -> list:
    """With AVERAGE_LAST_CHECKS = N, put the element-wise mean of the last N checkpoints' LoRA weights in the model in
    place of the check the holdout picked (tail averaging, as in stochastic weight averaging); their steps ([] with 0).
    Off by default: on CoLA, under the cosine schedule level with the kept check, and with a constant rate (whose
    checks wander) +8 dev rows a seed over the shipped recipe, inside the noise over three seeds (docs/real_model.md,
    "A constant rate and the last epoch's average")."""
    if settings.AVERAGE_LAST_CHECKS < 1:
        return []
    checkpoints = runtime.complete_checkpoints(checkpoint_dir)[-settings.AVERAGE_LAST_CHECKS:]
    if not checkpoints:   # a run stopped before its first check: the model as it is
        return []
    training.load_average(model, checkpoints)
    return [runtime.checkpoint_step(c) for c in checkpoints]


def holdout_as_predict_scores_it(settings, model, tokenizer, val_examples: list) -> dict:
    """The kept checkpoint's holdout scores and threshold as `predict.py --split val` computes them, in the Trainer's
    metric names. The Trainer's own pass chose the checkpoint, but in bf16 its numbers can put a row that sits within
    rounding of the threshold on the other side; the run record must hold what predict reproduces."""
    scores = training.scores_as_predict_gives_them(settings, model, tokenizer, val_examples)
    return {f"eval_{name}": value for name, value in scores.items()}


def ranking(summary: dict) -> tuple:
    """Which of several runs to keep: one that did not collapse, then the better holdout accuracy as predict answers."""
    return (not summary["collapsed"], summary["tuned_holdout_accuracy"])


def refuse_data_parallel() -> None:
    """`python train.py` on a machine with several GPUs makes the Trainer wrap the model in nn.DataParallel, which
    this recipe does not support (each replica would get the whole batch's answer positions). Refuse before any
    model loads, naming the two ways that work."""
    gpus = torch.cuda.device_count()
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        raise UserError(
            f"this machine has {gpus} GPUs and train.py was started without torchrun. Use them all with "
            f"`torchrun --nproc_per_node {gpus} train.py` (one process per GPU), or one of them with "
            f"`CUDA_VISIBLE_DEVICES=0 python train.py`.")


def build_model(settings):
    """The base model with fresh LoRA matrices on LORA_TARGETS (trained in fp32 even when the base is bf16)."""
    model, tokenizer = modeling.load_base_model(settings)
    targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
    lora = LoraConfig(r=settings.LORA_R, lora_alpha=settings.LORA_ALPHA, lora_dropout=settings.LORA_DROPOUT,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM", use_rslora=settings.USE_RSLORA)
    try:
        model = get_peft_model(model, lora)
    except ValueError as e:
        raise UserError(f"LORA_TARGETS={settings.LORA_TARGETS!r} does not fit this model: {e}") from None
    if hasattr(modeling.causal_lm_parts(model)[1], "base_layer"):
        raise UserError(f"LORA_TARGETS={settings.LORA_TARGETS!r} puts LoRA on the output layer, which label scoring "
                        f"reads directly; leave it out (the default targets every attention and MLP projection).")
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return model, tokenizer


def encode(settings, tokenizer, examples: list, label_prompt: bool, label_ids: list) -> tuple:
    """(a datasets.Dataset of token ids and loss labels, how many inputs were shortened to MAX_LENGTH)."""
    rows = [modeling.encode_example(tokenizer, e, settings.MAX_LENGTH, label_prompt, label_ids) for e in examples]
    truncated = sum(row.pop("truncated") for row in rows)
    return Dataset.from_list(rows), truncated


def plan_steps(settings, n_examples: int, max_steps: Optional[int] = None,
               eval_every: Optional[int] = None) -> SimpleNamespace:
    """Effective batch, steps and the evaluation interval; under torchrun each process takes its share of a batch."""
    world = int(os.environ.get("WORLD_SIZE", "1"))   # set by torchrun / accelerate launch
    effective_batch = settings.BATCH_SIZE * settings.GRAD_ACCUM * world
    steps_per_epoch = math.ceil(n_examples / effective_batch)
    max_steps = settings.MAX_STEPS if max_steps is None else max_steps
    total_steps = max_steps if max_steps > 0 else steps_per_epoch * settings.EPOCHS
    if eval_every is None:
        eval_every = max(1, math.ceil(min(steps_per_epoch, total_steps) / max(1, settings.EVALS_PER_EPOCH)))
    return SimpleNamespace(world=world, effective_batch=effective_batch, steps_per_epoch=steps_per_epoch,
                           max_steps=max_steps, total_steps=total_steps, eval_every=eval_every)


def print_plan(settings, model, plan, n_train: int, truncated: int, n_val: int) -> None:
    """The derived numbers, once, before training starts."""
    if not is_main_process():
        return
    dtype = modeling.choose_dtype(settings.PRECISION)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    loss_on = (f"every token, a prompt token weighing {settings.PROMPT_LOSS_WEIGHT:g} of an answer token"
               if settings.PROMPT_LOSS_WEIGHT > 0 else "the answer only")
    print(f"{settings.DATA_SET}: {n_train} training examples ({truncated} shortened to MAX_LENGTH={settings.MAX_LENGTH}), "
          f"{n_val} holdout")
    print(f"effective batch {plan.effective_batch} = {settings.BATCH_SIZE} x {settings.GRAD_ACCUM} accumulation x "
          f"{plan.world} device(s); {plan.steps_per_epoch} steps per epoch, {plan.total_steps} steps in all; holdout "
          f"check every {plan.eval_every} steps; precision {str(dtype).replace('torch.', '')}; loss on "
          f"{loss_on}")
    print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f} %)")


def trainer_arguments(settings, plan, checkpoint_dir: Path, seed: int, learning_rate: float):
    """The Trainer's settings: evaluate and save every plan.eval_every steps, keep a checkpoint by holdout accuracy
    (training.checkpoint_choice: the best, or the latest within KEEP_LATEST_WITHIN of it; one label everywhere last)."""
    return training.training_arguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=settings.BATCH_SIZE,
        per_device_eval_batch_size=settings.BATCH_SIZE,
        gradient_accumulation_steps=settings.GRAD_ACCUM,
        learning_rate=learning_rate,
        lr_scheduler_type=settings.LR_SCHEDULER,
        warmup_steps=math.ceil(settings.WARMUP_RATIO * plan.total_steps),
        weight_decay=settings.WEIGHT_DECAY,
        num_train_epochs=settings.EPOCHS,
        max_steps=plan.max_steps,
        logging_steps=settings.LOGGING_STEPS,
        eval_strategy="steps",
        save_strategy="steps",
        save_steps=plan.eval_every,
        eval_steps=plan.eval_every,
        # the Trainer keeps the best check beside the latest ones: with N to average, the last N are always there
        save_total_limit=None if settings.KEEP_ALL_CHECKPOINTS else max(2, settings.AVERAGE_LAST_CHECKS + 1),
        load_best_model_at_end=True,
        metric_for_best_model="choice",      # training.checkpoint_choice: holdout accuracy, one label everywhere last
        greater_is_better=True,
        label_names=["labels"],
        bf16=modeling.choose_dtype(settings.PRECISION) == torch.bfloat16,
        gradient_checkpointing=settings.GRADIENT_CHECKPOINTING,
        gradient_checkpointing_kwargs={"use_reentrant": False},   # works with frozen inputs under peft
        group_by_length=settings.GROUP_BY_LENGTH,
        dataloader_pin_memory=torch.cuda.is_available(),          # pinning is for copies to a GPU
        disable_tqdm=True,                                        # training.ProgressLines shows one bar instead
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        report_to=[],
        seed=seed,
        # Several processes on CPUs (tests, learners without GPUs) need gloo named; GPUs use NCCL by default.
        ddp_backend="gloo" if plan.world > 1 and not torch.cuda.is_available() else None,
    )


# What a checkpoint's run was made with: --resume goes on only with the same, or the run record would report
# settings that half of its steps did not use.
RESUME_MUST_MATCH = ("MODEL_PATH", "PRECISION", "LORA_R", "LORA_ALPHA", "LORA_DROPOUT", "LORA_TARGETS", "USE_RSLORA",
                     "LORA_PLUS_RATIO", "EPOCHS",
                     "MAX_STEPS", "LEARNING_RATE", "BATCH_SIZE", "GRAD_ACCUM", "WARMUP_RATIO", "WEIGHT_DECAY",
                     "LR_SCHEDULER", "GROUP_BY_LENGTH", "MAX_LENGTH", "PROMPT_LOSS_WEIGHT", "EVALS_PER_EPOCH",
                     "LABEL_WORDS", "SEED", "KEEP_LATEST_WITHIN", "AVERAGE_LAST_CHECKS")
RUN_SETTINGS = "run_settings.json"


def resume_point(settings, resume: bool, checkpoint_dir: Path, data_sha256: dict):
    """The last complete checkpoint with --resume (None otherwise, after clearing stale checkpoints)."""
    made_with = {name: getattr(settings, name) for name in RESUME_MUST_MATCH}
    made_with["data_sha256"] = data_sha256
    if not resume:
        if is_main_process():
            shutil.rmtree(checkpoint_dir, ignore_errors=True)   # a fresh run must not pick up a stale best checkpoint
            runtime.write_json(checkpoint_dir / RUN_SETTINGS, made_with)
        return None
    complete = runtime.complete_checkpoints(checkpoint_dir)   # a run killed while saving left an incomplete one
    if not complete:
        raise UserError(f"--resume: no complete checkpoint in {checkpoint_dir} to continue from; run without --resume.")
    try:
        before = json.loads((checkpoint_dir / RUN_SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    changed = [name for name in made_with if name in before and before[name] != made_with[name]]
    if changed:
        what = [f"{name} {before[name]!r} -> {made_with[name]!r}" for name in changed if name != "data_sha256"]
        what += ["other pre_data files"] if "data_sha256" in changed else []
        raise UserError(f"--resume: the checkpoints in {checkpoint_dir} were made with other settings "
                        f"({'; '.join(what)}). Resume with the settings they were made with, or start again "
                        f"without --resume.")
    latest = complete[-1]
    print(f"resuming from {runtime.shown(latest)}")
    return str(latest)


def run_record(settings, kept: SimpleNamespace, attempts: list, seconds: float, n_train: int, n_val: int,
               instruction: str) -> dict:
    """What run_record.json keeps beside the adapter: scores, sizes, settings and versions, to trace any result."""
    best = kept.summary
    return {
        "data_set": settings.DATA_SET,
        "base_model": str(runtime.model_dir(settings).resolve()),
        "base_model_fingerprint": runtime.model_fingerprint(runtime.model_dir(settings)),
        "instruction": instruction,
        "holdout_accuracy": best["holdout_accuracy"],
        "holdout_mcc": best["holdout_mcc"],
        "decision_threshold": best["decision_threshold"],   # predict answers 1 where label 1's margin is above it
        "tuned_holdout_accuracy": best["tuned_holdout_accuracy"],
        "tuned_holdout_mcc": best["tuned_holdout_mcc"],
        "holdout_size": n_val,
        "training_examples": n_train,
        "steps": best["steps"],
        "seed": best["seed"],
        "learning_rate": best["learning_rate"],
        "runs": attempts,                                   # more than one when a run collapsed and started again
        "train_seconds": round(seconds, 1),
        "best_checkpoint": kept.state.best_model_checkpoint,
        "averaged_steps": best["averaged_steps"],         # the checks whose mean is the adapter (AVERAGE_LAST_CHECKS)
        "versions": runtime.package_versions(),
        "settings": {k: v for k, v in vars(settings).items() if k.isupper()},
        "log_history": kept.state.log_history,
    }


def save(record: dict, staging: Path, adapter_dir: Path) -> None:
    """The kept run's adapter (already in staging), its run record and loss curve, put in place together: a crash
    leaves the old adapter whole."""
    adapters.write_run_record(staging, record)
    plot_losses(record["log_history"], staging / "loss_curve.png")
    runtime.replace_folder(staging, adapter_dir)


def plot_losses(log_history: list, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no loss_curve.png (pip install matplotlib)")
        return
    steps = [e["step"] for e in log_history if "loss" in e]
    losses = [e["loss"] for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_accuracy"]) for e in log_history if "eval_accuracy" in e]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, label="training loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    if evals:
        acc_axis = ax.twinx()
        acc_axis.plot([s for s, _ in evals], [a for _, a in evals], "o-", color="tab:orange", label="holdout accuracy")
        acc_axis.set_ylabel("holdout accuracy")
        acc_axis.set_ylim(0, 1)
        acc_axis.legend(loc="lower right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def release_memory() -> None:
    """Give a finished run's GPU memory back before the next run loads the base model again."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def leave_process_group() -> None:
    """Under torchrun each process ends its process group once the last collective (the holdout evaluation) is
    done, as PyTorch's docs ask. Left to the interpreter's exit, gloo's worker threads can still hold tensors while
    Python tears down, and the process aborts (SIGABRT); torchrun then stops the others, the first one while it
    writes the adapter. Without torchrun there is no group and nothing to do."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    runtime.run(main, __doc__)
