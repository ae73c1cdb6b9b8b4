"""What train.py hands the Hugging Face Trainer: its arguments, the losses, the holdout evaluation that picks the
best checkpoint, and the progress lines. Used by train.py and the lab."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

import versions
from adapters import WEIGHTS
from modeling import ANSWER_LENGTH, answer_examples, label_scores, output_layer_only_at
from tasks import LABELS, decisions, label_words, metrics, tuned_threshold


def answer_only_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The usual causal-LM loss when only the answer carries labels, paying for the output layer there alone.

    The same number as model(labels=labels).loss (mean cross-entropy over the labelled next tokens), and the same
    gradients. Also returns each row's hidden state at its first labelled position, where the label is predicted.
    """
    targets = labels[:, 1:]
    positions = torch.zeros_like(labels, dtype=torch.bool)
    positions[:, :-1] = targets != -100
    with output_layer_only_at(model, positions) as kept:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[0].float()
    loss = torch.nn.functional.cross_entropy(logits, targets[targets != -100])
    per_row = positions.sum(dim=1)
    first = torch.cumsum(per_row, dim=0) - per_row        # index of each row's first chosen position in logits
    return loss, kept[-1][first]


def prompt_weighted_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                         prompt_weight: float) -> torch.Tensor:
    """The causal-LM loss over every labelled next token, a prompt token counting prompt_weight of an answer token.

    The answer is each row's last ANSWER_LENGTH labelled tokens (the label and EOS: encode_example puts them last
    and never cuts them). prompt_weight 1 is the model's own loss, every token alike (alpaca-lora's train_on_inputs); the
    output layer runs at every position, so a step costs what the full forward costs.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    labelled = targets != -100
    from_end = labelled.flip(1).cumsum(1).flip(1)            # labelled tokens at or after each position
    weights = torch.where(from_end <= ANSWER_LENGTH, 1.0, prompt_weight) * labelled
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.masked_fill(~labelled, 0),
                                               reduction="none")
    return (losses * weights).sum() / weights.sum()


def training_arguments(**kwargs) -> TrainingArguments:
    """TrainingArguments under the names this transformers uses (versions.training_argument_names)."""
    kwargs = versions.training_argument_names(kwargs)
    if not torch.cuda.is_available():
        kwargs["use_cpu"] = True   # bf16 autocast on a CPU is refused unless the Trainer is told it is on one
    return TrainingArguments(**kwargs)


TIE_BREAK = 1e-9   # at most this added to `choice` at the last step: one row of even a million-row holdout is 1e-6


def holdout_metrics(prediction, min_gain: float, progress: float = 0.0, earlier: Sequence[float] = (),
                    keep_latest_within: float = 0.0) -> dict:
    """Holdout accuracy and MCC from what HoldoutTrainer.compute_loss hands the evaluation loop; the margin threshold
    tuned on it (tasks.tuned_threshold) with the accuracy and MCC it gives; `collapsed` (1 where the checkpoint gives
    one label to every row); and `choice`, by which the Trainer keeps a checkpoint (checkpoint_choice).
    progress: the share of the run's steps done; earlier: the accuracies of the run's earlier checks that did not
    collapse; keep_latest_within: KEEP_LATEST_WITHIN, in standard errors of the holdout accuracy."""
    scores, gold = prediction.predictions
    gold_labels = [LABELS[i] if i >= 0 else None for i in gold.tolist()]
    margins = (scores[:, 1] - scores[:, 0]).tolist()
    scores_now = margin_scores(margins, gold_labels, min_gain)
    collapsed = len(set(decisions(margins))) == 1
    scores_now["collapsed"] = float(collapsed)
    scores_now["choice"] = checkpoint_choice(scores_now["accuracy"], collapsed, progress, earlier,
                                             keep_latest_within, len(gold_labels))
    return scores_now


def checkpoint_choice(accuracy: float, collapsed: bool, progress: float, earlier: Sequence[float],
                      keep_latest_within: float, rows: int) -> float:
    """The number the Trainer keeps the largest of, one check at a time, so that the kept checkpoint is the latest
    check whose holdout accuracy is within keep_latest_within standard errors of the best check's (0: the best,
    ties going to the later check), and a checkpoint that gives one label to every row is kept last.

    On an imbalanced task (CoLA: 70 % acceptable) always answering 1 can tie or beat an early checkpoint that reads
    the sentences; it learnt only the label shares, so any checkpoint that tells the labels apart ranks above it.
    An equal accuracy says nothing for the earlier check, and the later one has seen more data at a lower learning
    rate: on real CoLA (seed 43) three checks tied at 0.8025, and the last scored 0.789 on all 527 dev rows where the
    first, which the Trainer kept before, scored 0.769 (docs/real_model.md, round 2). TIE_BREAK * progress stays far
    below what one holdout row moves the accuracy by, so it decides ties and nothing else.

    With keep_latest_within above 0, a check within that many standard errors of the best so far scores 1 + progress,
    above every other; the rest score their accuracy (at most 1). The Trainer keeps the last check that was within
    reach of the best before it, and that is the latest within reach of the best of the whole run: a later best
    scores 1 + progress itself, and every check after it is measured against it. At 1 against 0, thirteen real runs
    came out level (+3.3 dev rows a run, standard error 2.1; docs/real_model.md), so 0 is the default.
    """
    if collapsed:
        return accuracy - 1.0 + TIE_BREAK * progress
    if keep_latest_within <= 0:
        return accuracy + TIE_BREAK * progress
    best = max([accuracy, *earlier])
    reach = keep_latest_within * math.sqrt(best * (1 - best) / max(1, rows))
    return 1.0 + progress if accuracy >= best - reach - 1e-12 else accuracy   # 1e-12: float rounding of best - reach


def margin_scores(margins: List[float], gold_labels: list, min_gain: float) -> dict:
    """Accuracy and MCC of the likelier label, and the threshold tuned on these rows with the accuracy and MCC it
    gives: what the Trainer's holdout checks and train.py's record (predict's own scoring) both report."""
    plain = metrics(gold_labels, decisions(margins))
    threshold = tuned_threshold(margins, gold_labels, min_gain)
    tuned = metrics(gold_labels, decisions(margins, threshold))
    return {"accuracy": plain["accuracy"], "mcc": plain["mcc"], "threshold": threshold,
            "tuned_accuracy": tuned["accuracy"], "tuned_mcc": tuned["mcc"]}


def scores_as_predict_gives_them(settings, model, tokenizer, examples: list, progress: Optional[str] = None) -> dict:
    """margin_scores of labelled examples read one item a pass (modeling.answer_examples), as `predict.py --split val`
    reads the holdout: what train.py's run record and tools/average_checks.py report."""
    _, margins, _ = answer_examples(model, tokenizer, examples, settings.MAX_LENGTH, batch_size=1, progress=progress,
                                    words=label_words(settings.LABEL_WORDS))
    return margin_scores(margins, [e["output"] for e in examples], settings.THRESHOLD_MIN_GAIN)


def averaged_weights(checkpoints: list) -> dict:
    """Every LoRA tensor's element-wise mean over the checkpoints' adapter_model.safetensors, in float32, stored in
    the checkpoints' dtype."""
    from safetensors.torch import load_file
    loaded = [load_file(str(Path(c) / WEIGHTS)) for c in checkpoints]
    return {name: (sum(w[name].float() for w in loaded) / len(loaded)).to(loaded[0][name].dtype) for name in loaded[0]}


def load_average(model, checkpoints: list) -> None:
    """Put the mean of the checkpoints' LoRA weights into the peft model (its adapter's own tensors, nothing else)."""
    from peft import set_peft_model_state_dict
    loaded = set_peft_model_state_dict(model, averaged_weights(checkpoints))
    if loaded.unexpected_keys:
        raise RuntimeError(f"averaged weights that the model lacks: {loaded.unexpected_keys[:3]}")


class HoldoutTrainer(Trainer):
    """The Trainer with the loss where PROMPT_LOSS_WEIGHT puts it, and evaluation by holdout accuracy.

    Training: with PROMPT_LOSS_WEIGHT 0 the output layer runs only where the loss is (answer_only_loss); above 0
    it runs everywhere (prompt_weighted_loss). Evaluation runs through the Trainer's own loop (sharded and
    gathered under torchrun): the eval loss on the answer, and each holdout row's label read exactly as predict.py
    reads it (the likelier label token at the position the label follows), so the best checkpoint is the one
    predict will score best with.
    """

    def __init__(self, *args, label_ids: List[int], prompt_loss_weight: float, threshold_min_gain: float,
                 lora_plus_ratio: float = 1.0, keep_latest_within: float = 0.0, **kwargs):
        super().__init__(*args, compute_metrics=self.score_holdout, **kwargs)
        self.threshold_min_gain = threshold_min_gain
        self.keep_latest_within = keep_latest_within
        self.lora_plus_ratio = lora_plus_ratio
        self.label_ids = label_ids
        self.prompt_loss_weight = prompt_loss_weight
        # transformers >= 4.46 asks whether compute_loss already divided by the accumulation steps: ours is the mean
        # over this micro-batch, so the Trainer must divide (as the older releases always do).
        self.loss_is_scaled_for_ga = False

    def create_optimizer(self, *args, **kwargs):
        """The Trainer's optimizer; with LoRA+ (Hayou et al. 2024) the B matrices in a group of their own at
        lora_plus_ratio x the learning rate. B starts at zero and A at random, so a larger step for B lets the update
        grow sooner; the scheduler scales both groups alike."""
        if self.lora_plus_ratio == 1 or self.optimizer is not None:
            return super().create_optimizer(*args, **kwargs)
        trained = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args)   # AdamW, as always
        groups = [{"params": [p for name, p in trained if "lora_B" not in name]},
                  {"params": [p for name, p in trained if "lora_B" in name],
                   "lr": self.args.learning_rate * self.lora_plus_ratio}]
        self.optimizer = optimizer_cls([dict(g, weight_decay=self.args.weight_decay) for g in groups], **optimizer_kwargs)
        return self.optimizer

    def score_holdout(self, prediction) -> dict:
        """holdout_metrics, told how far the run is and what its earlier checks scored (a resumed run's too)."""
        progress = self.state.global_step / max(1, self.state.max_steps)
        earlier = [entry["eval_accuracy"] for entry in self.state.log_history
                   if "eval_choice" in entry and not entry.get("eval_collapsed")]
        return holdout_metrics(prediction, self.threshold_min_gain, progress, earlier, self.keep_latest_within)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.prompt_loss_weight > 0 and model.training:
            return prompt_weighted_loss(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                                        self.prompt_loss_weight)
        labels = inputs["labels"]
        loss, hidden = answer_only_loss(model, inputs["input_ids"], inputs["attention_mask"], labels)
        if not return_outputs:
            return loss
        label_ids = torch.tensor(self.label_ids, device=labels.device)
        targets = labels[:, 1:]
        first_target = targets.gather(1, (targets != -100).int().argmax(dim=1, keepdim=True))     # the gold label token
        matches = first_target == label_ids
        gold = torch.where(matches.any(dim=1), matches.int().argmax(dim=1), torch.full_like(label_ids[:1], -1))
        return loss, {"label_scores": label_scores(model, hidden, self.label_ids), "gold": gold}


class ProgressLines(TrainerCallback):
    """One progress bar over the optimiser steps, and the loss and holdout scores as short lines above it
    (instead of the Trainer's raw dicts and a second bar for every evaluation)."""

    bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        where = f"step {state.global_step}/{state.max_steps}" if self.bar is not None else "best checkpoint:"
        if "eval_accuracy" in logs:
            line = (f"{where}  holdout accuracy {logs['eval_accuracy']:.4f}  MCC {logs['eval_mcc']:.3f}  "
                    f"answer loss {logs['eval_loss']:.4f}")
            if logs["eval_threshold"] != 0:
                line += (f"  (threshold {logs['eval_threshold']:+.3f}: {logs['eval_tuned_accuracy']:.4f}, "
                         f"MCC {logs['eval_tuned_mcc']:.3f})")
        elif "loss" in logs:
            line = f"{where}  loss {logs['loss']:.4f}  learning rate {logs.get('learning_rate', 0):.2e}"
        else:
            return   # the closing summary: train.py says what it did in its own last line
        (self.bar.write if self.bar is not None else print)(line)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CollapseGuard(TrainerCallback):
    """Stop a run at half its steps when the checkpoint it would keep so far (the best by `choice`, as the Trainer
    picks it) has a holdout MCC below min_mcc with the tuned threshold: it answers one label whatever the input, and
    the time is better spent on a fresh start. The same test train.py applies to the kept checkpoint at the end, so a
    lucky early check that the Trainer would not keep cannot carry a collapsed run to its last step."""

    def __init__(self, min_mcc: float):
        self.min_mcc = min_mcc

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        checks = [entry for entry in state.log_history if "eval_choice" in entry]   # this one included, resumed ones too
        kept = max(checks, key=lambda entry: entry["eval_choice"]) if checks else {}  # as the Trainer (ties: the later)
        kept_mcc = kept.get("eval_tuned_mcc", -1.0)
        if state.global_step * 2 >= state.max_steps and kept_mcc < self.min_mcc and not control.should_training_stop:
            control.should_training_stop = True
            if state.is_world_process_zero:
                print(f"step {state.global_step}/{state.max_steps}: the best holdout check so far has MCC "
                      f"{kept_mcc:.3f}, below {self.min_mcc:g}: stopping this run")


def quiet_progress(trainer: Trainer) -> None:
    """Replace the Trainer's own progress output (bars and printed dicts) with ProgressLines."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(ProgressLines())
