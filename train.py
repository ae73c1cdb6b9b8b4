"""LoRA-fine-tune the base model (gemma-2b) to answer one GLUE task with 0 or 1.

    python train.py                          # DATA_SET from config.py
    python train.py --data_set QQP --epochs 1
    python train.py --resume                 # continue an interrupted run from its last checkpoint
    torchrun --nproc_per_node 2 train.py     # several GPUs (accelerate launch --num_processes 2 train.py works too)

Reads pre_data/<ds>/<ds>_train.json (and _val.json, the holdout), trains with the Hugging Face Trainer,
checks holdout accuracy EVALS_PER_EPOCH times an epoch with the same label scoring predict.py uses,
and writes the best adapter to saved_model/<ds>/ (adapter_config.json + adapter_model.safetensors),
with run_record.json (settings, versions, data hashes, accuracy) and loss_curve.png beside it.
Checkpoints for --resume go to checkpoints/<ds>/.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import runtime
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
                               data_sha256={"train": runtime.sha256_of(train_file), "val": runtime.sha256_of(val_file)})
    if record:
        plotted = " and loss_curve.png" if (adapter_dir / "loss_curve.png").is_file() else ""
        tuned = (f"; with the decision threshold {record['decision_threshold']:+.3f} set on it "
                 f"{record['tuned_holdout_accuracy']:.4f} (MCC {record['tuned_holdout_mcc']:.3f}), which predict uses"
                 if record["decision_threshold"] else "")
        print(f"train: holdout accuracy {record['holdout_accuracy']:.4f} (MCC {record['holdout_mcc']:.3f}){tuned} after "
              f"{record['steps']} steps in {record['train_seconds'] / 60:.1f} min; adapter, run_record.json{plotted} "
              f"written to {runtime.shown(adapter_dir)}/")


def train_adapter(settings, train_examples: list, val_examples: list, adapter_dir: Path, checkpoint_dir: Path,
                  data_sha256: dict) -> dict:
    """The whole recipe, from examples to a saved adapter; returns its run record ({} in processes other than
    the first under torchrun). train.py's main calls it on pre_data's files; the lab on samples of its own."""
    import torch

    if settings.PROMPT_LOSS_WEIGHT < 0:
        raise UserError(f"PROMPT_LOSS_WEIGHT={settings.PROMPT_LOSS_WEIGHT:g} is negative: a prompt token's loss weight "
                        f"goes from 0 (the answer only, the default) to 1 (every token alike); e.g. "
                        f"--prompt_loss_weight 0.1.")

    import modeling
    import versions
    from transformers import set_seed

    refuse_data_parallel()
    set_seed(settings.SEED)
    model, tokenizer = build_model(settings)
    label_ids = modeling.label_token_ids(tokenizer, label_words(settings.LABEL_WORDS))
    train_data, truncated = encode(settings, tokenizer, train_examples, settings.PROMPT_LOSS_WEIGHT > 0, label_ids)
    eval_data, _ = encode(settings, tokenizer, val_examples, False, label_ids)   # scored on the answer, always
    plan = plan_steps(settings, len(train_data))
    describe(settings, model, plan, len(train_data), truncated, len(val_examples))
    trainer = modeling.HoldoutTrainer(
        model=model, args=arguments(settings, plan, checkpoint_dir), train_dataset=train_data, eval_dataset=eval_data,
        data_collator=collator(tokenizer), label_ids=label_ids, prompt_loss_weight=settings.PROMPT_LOSS_WEIGHT,
        threshold_min_gain=settings.THRESHOLD_MIN_GAIN)
    modeling.quiet_progress(trainer)
    started = time.time()
    try:
        with versions.checkpoint_loading():
            trainer.train(resume_from_checkpoint=resume_point(settings, checkpoint_dir))
        best = trainer.evaluate()   # the best checkpoint is loaded again by now: record its own scores
    except torch.cuda.OutOfMemoryError:
        raise UserError(
            f"the GPU ran out of memory. Lower BATCH_SIZE (now {settings.BATCH_SIZE}; raise GRAD_ACCUM to keep the "
            f"effective batch), lower MAX_LENGTH (now {settings.MAX_LENGTH}), or set GRADIENT_CHECKPOINTING = True "
            f"(--gradient_checkpointing), then run again; the adapter already in saved_model is untouched."
        ) from None
    leave_process_group()
    if not is_main_process():
        return {}
    record = run_record(settings, trainer.state, best, time.time() - started, len(train_data), len(val_examples))
    record["data_sha256"] = data_sha256
    save(model, record, adapter_dir)
    return record


def run_record(settings, state, best: dict, seconds: float, n_train: int, n_val: int) -> dict:
    """What run_record.json keeps beside the adapter: scores, sizes, settings and versions, to trace any result."""
    return {
        "data_set": settings.DATA_SET,
        "base_model": str(runtime.model_dir(settings).resolve()),
        "holdout_accuracy": best["eval_accuracy"],
        "holdout_mcc": best["eval_mcc"],
        "decision_threshold": best["eval_threshold"],   # predict answers 1 where label 1's margin is above it
        "tuned_holdout_accuracy": best["eval_tuned_accuracy"],
        "tuned_holdout_mcc": best["eval_tuned_mcc"],
        "holdout_size": n_val,
        "training_examples": n_train,
        "steps": state.global_step,
        "train_seconds": round(seconds, 1),
        "best_checkpoint": state.best_model_checkpoint,
        "versions": runtime.package_versions(),
        "settings": {k: v for k, v in vars(settings).items() if k.isupper()},
        "log_history": state.log_history,
    }


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def refuse_data_parallel() -> None:
    """`python train.py` on a machine with several GPUs makes the Trainer wrap the model in nn.DataParallel, which
    this recipe does not support (each replica would get the whole batch's answer positions). Refuse before any
    model loads, naming the two ways that work."""
    import torch

    gpus = torch.cuda.device_count()
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        raise UserError(
            f"this machine has {gpus} GPUs and train.py was started without torchrun. Use them all with "
            f"`torchrun --nproc_per_node {gpus} train.py` (one process per GPU), or one of them with "
            f"`CUDA_VISIBLE_DEVICES=0 python train.py`.")


def leave_process_group() -> None:
    """Under torchrun each process ends its process group once the last collective (the holdout evaluation) is
    done, as PyTorch's docs ask. Left to the interpreter's exit, gloo's worker threads can still hold tensors while
    Python tears down, and the process aborts (SIGABRT); torchrun then stops the others, the first one while it
    writes the adapter. Without torchrun there is no group and nothing to do."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def build_model(settings):
    """The base model with fresh LoRA matrices on LORA_TARGETS (trained in fp32 even when the base is bf16)."""
    from peft import LoraConfig, get_peft_model

    import modeling

    model, tokenizer = modeling.load_base_model(settings)
    targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
    lora = LoraConfig(r=settings.LORA_R, lora_alpha=settings.LORA_ALPHA, lora_dropout=settings.LORA_DROPOUT,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")
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
    from datasets import Dataset

    import modeling

    rows = [modeling.encode_example(tokenizer, e, settings.MAX_LENGTH, label_prompt, label_ids) for e in examples]
    truncated = sum(row.pop("truncated") for row in rows)
    return Dataset.from_list(rows), truncated


def collator(tokenizer):
    from transformers import DataCollatorForSeq2Seq
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)


def plan_steps(settings, n_examples: int) -> SimpleNamespace:
    """Effective batch, steps and the evaluation interval; under torchrun each process takes its share of a batch."""
    world = int(os.environ.get("WORLD_SIZE", "1"))   # set by torchrun / accelerate launch
    effective_batch = settings.BATCH_SIZE * settings.GRAD_ACCUM * world
    steps_per_epoch = math.ceil(n_examples / effective_batch)
    total_steps = settings.MAX_STEPS if settings.MAX_STEPS > 0 else steps_per_epoch * settings.EPOCHS
    checks_per_epoch = settings.EVALS_PER_EPOCH if settings.EVALS_PER_EPOCH > 0 else 1   # the lab passes fractions
    eval_every = max(1, math.ceil(min(steps_per_epoch, total_steps) / checks_per_epoch))
    return SimpleNamespace(world=world, effective_batch=effective_batch, steps_per_epoch=steps_per_epoch,
                           total_steps=total_steps, eval_every=eval_every)


def describe(settings, model, plan, n_train: int, truncated: int, n_val: int) -> None:
    """The derived numbers, once, before training starts."""
    import modeling

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


def resume_point(settings, checkpoint_dir: Path):
    """The last complete checkpoint with --resume (None otherwise, after clearing stale checkpoints)."""
    if not settings.RESUME:
        if is_main_process():
            shutil.rmtree(checkpoint_dir, ignore_errors=True)   # a fresh run must not pick up a stale best checkpoint
        return None
    # A checkpoint is complete once its trainer_state.json is written in full (it comes after the weights and the
    # optimiser); a run killed while saving leaves a later, incomplete one, which is passed over.
    complete = [c for c in checkpoint_dir.glob("checkpoint-*")
                if c.name.split("-")[-1].isdigit() and holds_json(c / "trainer_state.json")]
    if not complete:
        raise UserError(f"--resume: no complete checkpoint in {checkpoint_dir} to continue from; run without --resume.")
    latest = max(complete, key=lambda c: int(c.name.split("-")[-1]))
    print(f"resuming from {runtime.shown(latest)}")
    return str(latest)


def holds_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):   # missing, or cut short by a kill
        return False


def arguments(settings, plan, checkpoint_dir: Path):
    """The Trainer's settings: evaluate and save every plan.eval_every steps, keep the best by holdout accuracy
    (modeling.holdout_metrics' `choice`: a checkpoint that answers one label everywhere ranks last)."""
    import torch

    import modeling

    world = plan.world
    return modeling.training_arguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=settings.BATCH_SIZE,
        per_device_eval_batch_size=settings.BATCH_SIZE,
        gradient_accumulation_steps=settings.GRAD_ACCUM,
        learning_rate=settings.LEARNING_RATE,
        lr_scheduler_type=settings.LR_SCHEDULER,
        warmup_steps=math.ceil(settings.WARMUP_RATIO * plan.total_steps),
        weight_decay=settings.WEIGHT_DECAY,
        num_train_epochs=settings.EPOCHS,
        max_steps=settings.MAX_STEPS,
        logging_steps=settings.LOGGING_STEPS,
        eval_strategy="steps",
        save_strategy="steps",
        save_steps=plan.eval_every,
        eval_steps=plan.eval_every,
        save_total_limit=2,                  # the best and the latest
        load_best_model_at_end=True,
        metric_for_best_model="choice",      # holdout accuracy, a checkpoint that answers one label last
        greater_is_better=True,
        label_names=["labels"],
        bf16=modeling.choose_dtype(settings.PRECISION) == torch.bfloat16,
        gradient_checkpointing=settings.GRADIENT_CHECKPOINTING,
        gradient_checkpointing_kwargs={"use_reentrant": False},   # works with frozen inputs under peft
        group_by_length=settings.GROUP_BY_LENGTH,
        dataloader_pin_memory=torch.cuda.is_available(),          # pinning is for copies to a GPU
        disable_tqdm=True,                                        # modeling.ProgressLines shows one bar instead
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        report_to=[],
        seed=settings.SEED,
        # Several processes on CPUs (tests, learners without GPUs) need gloo named; GPUs use NCCL by default.
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
    )


def save(model, record: dict, adapter_dir: Path) -> None:
    """The adapter, its run record and loss curve, put in place together: a crash leaves the old adapter whole."""
    staging = adapter_dir.with_name(adapter_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    (staging / "run_record.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
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


if __name__ == "__main__":
    runtime.run(main, __doc__)
