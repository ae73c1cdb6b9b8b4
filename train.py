"""LoRA-fine-tune the base model (gemma-2b) to answer one GLUE task with 0 or 1.

    python train.py                          # DATA_SET from config.py
    python train.py --data_set QQP --epochs 1
    python train.py --resume                 # continue an interrupted run from its last checkpoint
    torchrun --nproc_per_node 2 train.py     # several GPUs (accelerate launch train.py works too)

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

import runtime
from runtime import UserError
from tasks import metrics


def holds_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):   # missing, or cut short by a kill
        return False


def plot_losses(log_history: list, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no loss_curve.png (pip install matplotlib)")
        return False
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
    return True


def replace_folder(new: Path, final: Path) -> None:
    """Put a complete new folder in place of final: at every moment one complete adapter is there."""
    old = final.with_name(final.name + ".old")
    if old.exists() and not final.exists():
        old.rename(final)   # a run killed between the two renames below: the old adapter is still the good one
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def main(settings) -> None:
    task_name = settings.DATA_SET
    train_file = runtime.pre_data_file(settings, task_name, "train")
    val_file = runtime.pre_data_file(settings, task_name, "val")
    train_examples, val_examples = runtime.load_examples(train_file), runtime.load_examples(val_file)
    final_dir = runtime.adapter_dir(settings, task_name)
    checkpoint_dir = runtime.project_path(settings.CHECKPOINT_DIR) / task_name

    # Heavy imports after the cheap checks, so a missing file is reported at once.
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    import modeling

    class HoldoutTrainer(Trainer):
        """Evaluates by holdout accuracy, computed exactly as predict.py answers, so the best adapter is kept."""

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            predicted, _, _ = modeling.decide(self.model, tokenizer, val_examples, settings.MAX_LENGTH,
                                              batch_size=settings.BATCH_SIZE)
            self.model.train()
            m = metrics([e["output"] for e in val_examples], predicted)
            result = {f"{metric_key_prefix}_accuracy": m["accuracy"], f"{metric_key_prefix}_mcc": m["mcc"]}
            self.log(result)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, result)
            return result

    # Under torchrun / accelerate launch every process runs this script; only the first one writes files.
    main_process = int(os.environ.get("RANK", "0")) == 0
    lock = runtime.exclusive(runtime.project_path(settings.SAVED_MODEL_DIR), "train.py") if main_process else nullcontext()
    with lock:
        set_seed(settings.SEED)
        model, tokenizer = modeling.load_base_model(settings)
        targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
        lora = LoraConfig(r=settings.LORA_R, lora_alpha=settings.LORA_ALPHA, lora_dropout=settings.LORA_DROPOUT,
                          target_modules=targets, bias="none", task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            raise UserError(f"LORA_TARGETS={settings.LORA_TARGETS!r} does not fit this model: {e}") from None
        for parameter in model.parameters():
            if parameter.requires_grad:   # LoRA weights train in fp32 even when the frozen base is bf16
                parameter.data = parameter.data.float()

        encode = lambda e: modeling.encode_example(tokenizer, e, settings.MAX_LENGTH, settings.TRAIN_ON_INPUTS)  # noqa: E731
        train_data = Dataset.from_list(train_examples).map(encode, remove_columns=["instruction", "input", "output"])
        truncated = sum(train_data["truncated"])
        train_data = train_data.remove_columns("truncated")

        world = int(os.environ.get("WORLD_SIZE", "1"))   # set by torchrun / accelerate launch
        effective_batch = settings.BATCH_SIZE * settings.GRAD_ACCUM * world
        steps_per_epoch = math.ceil(len(train_data) / effective_batch)
        total_steps = settings.MAX_STEPS if settings.MAX_STEPS > 0 else steps_per_epoch * settings.EPOCHS
        eval_every = max(1, math.ceil(min(steps_per_epoch, total_steps) / max(1, settings.EVALS_PER_EPOCH)))
        dtype = modeling.choose_dtype(settings.PRECISION)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        print(f"{task_name}: {len(train_data)} training examples ({truncated} shortened to MAX_LENGTH={settings.MAX_LENGTH}), "
              f"{len(val_examples)} holdout")
        print(f"effective batch {effective_batch} = {settings.BATCH_SIZE} x {settings.GRAD_ACCUM} accumulation x {world} "
              f"device(s); {steps_per_epoch} steps per epoch, {total_steps} steps in all; holdout check every "
              f"{eval_every} steps; precision {str(dtype).replace('torch.', '')}")
        print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f} %)")

        resume_from = None
        if settings.RESUME:
            # A checkpoint is complete once its trainer_state.json is written in full (it comes after the weights and
            # the optimiser); a run killed while saving leaves a later, incomplete one, which is passed over.
            complete = [c for c in checkpoint_dir.glob("checkpoint-*")
                        if c.name.split("-")[-1].isdigit() and holds_json(c / "trainer_state.json")]
            if not complete:
                raise UserError(f"--resume: no complete checkpoint in {checkpoint_dir} to continue from; run without --resume.")
            resume_from = str(max(complete, key=lambda c: int(c.name.split("-")[-1])))
            print(f"resuming from {runtime.shown(Path(resume_from))}")
        elif main_process:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)   # a fresh run must not pick up a stale best checkpoint

        strategy = "steps"
        args = TrainingArguments(
            output_dir=str(checkpoint_dir),
            per_device_train_batch_size=settings.BATCH_SIZE,
            gradient_accumulation_steps=settings.GRAD_ACCUM,
            learning_rate=settings.LEARNING_RATE,
            lr_scheduler_type=settings.LR_SCHEDULER,
            warmup_steps=math.ceil(settings.WARMUP_RATIO * total_steps),
            weight_decay=settings.WEIGHT_DECAY,
            num_train_epochs=settings.EPOCHS,
            max_steps=settings.MAX_STEPS,
            logging_steps=settings.LOGGING_STEPS,
            save_strategy=strategy,
            save_steps=eval_every,
            eval_steps=eval_every,
            save_total_limit=2,                  # the best and the latest
            load_best_model_at_end=True,
            metric_for_best_model="accuracy",
            greater_is_better=True,
            bf16=dtype == torch.bfloat16,
            gradient_checkpointing=settings.GRADIENT_CHECKPOINTING,
            gradient_checkpointing_kwargs={"use_reentrant": False},   # works with frozen inputs under peft
            # transformers 5 replaced group_by_length=True with train_sampling_strategy="group_by_length"
            **({"train_sampling_strategy": "group_by_length" if settings.GROUP_BY_LENGTH else "random"}
               if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__
               else {"group_by_length": settings.GROUP_BY_LENGTH}),
            remove_unused_columns=False,
            ddp_find_unused_parameters=False,
            report_to=[],
            seed=settings.SEED,
            # Several processes on CPUs (tests, learners without GPUs) need gloo named; GPUs use NCCL by default.
            ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
            # the evaluation schedule's name changed in transformers 4.41 (evaluation_strategy -> eval_strategy)
            **{("eval_strategy" if modeling.TRANSFORMERS_VERSION >= modeling.version.parse("4.41")
                else "evaluation_strategy"): strategy},
        )
        trainer = HoldoutTrainer(
            model=model, args=args, train_dataset=train_data, eval_dataset=Dataset.from_list(val_examples),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        )
        started = time.time()
        try:
            with modeling.resumable():
                trainer.train(resume_from_checkpoint=resume_from)
            best = trainer.evaluate()   # the best checkpoint is loaded again by now: record its own accuracy
        except torch.cuda.OutOfMemoryError:
            raise UserError(
                f"the GPU ran out of memory. Lower BATCH_SIZE (now {settings.BATCH_SIZE}; raise GRAD_ACCUM to keep the "
                f"effective batch), lower MAX_LENGTH (now {settings.MAX_LENGTH}), or set GRADIENT_CHECKPOINTING = True "
                f"(--gradient_checkpointing), then run again; the adapter already in saved_model is untouched."
            ) from None

        if not main_process:
            return
        staging = final_dir.with_name(final_dir.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(str(staging))
        record = {
            "data_set": task_name,
            "base_model": str(runtime.model_dir(settings).resolve()),
            "holdout_accuracy": best["eval_accuracy"],
            "holdout_mcc": best["eval_mcc"],
            "holdout_size": len(val_examples),
            "training_examples": len(train_data),
            "steps": trainer.state.global_step,
            "train_seconds": round(time.time() - started, 1),
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "data_sha256": {"train": runtime.sha256_of(train_file), "val": runtime.sha256_of(val_file)},
            "versions": runtime.package_versions(),
            "settings": {k: v for k, v in vars(settings).items() if k.isupper()},
            "log_history": trainer.state.log_history,
        }
        (staging / "run_record.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        plotted = plot_losses(trainer.state.log_history, staging / "loss_curve.png")
        replace_folder(staging, final_dir)
    print(f"train: holdout accuracy {best['eval_accuracy']:.4f} (MCC {best['eval_mcc']:.3f}) after "
          f"{trainer.state.global_step} steps; adapter, run_record.json{' and loss_curve.png' if plotted else ''} "
          f"written to {runtime.shown(final_dir)}/")


if __name__ == "__main__":
    runtime.run(main, __doc__)
