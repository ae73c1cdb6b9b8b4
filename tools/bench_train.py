"""Part 6: one optimiser step by the answer-only loss against the transformer body alone and the full forward."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib (it sets up the rest), also as tools.bench_...
from benchlib import ROOT  # noqa: E402

import statistics
import time

import runtime  # noqa: E402
from benchlib import GEMMA_2B, GLUE_DIR, TINY, note, random_gemma_folder, row, tokenizer_folder  # noqa: E402

# --- 6. training step --------------------------------------------------------------------------------

def step_examples(n: int) -> list:
    """n real CoLA training rows as pre_data examples (the first n of the file), or synthetic ones without it."""
    from tasks import TASKS
    path = GLUE_DIR / "CoLA" / "train.tsv"
    if path.is_file():
        rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[:n]]
        return [{"instruction": TASKS["CoLA"].instruction, "input": r[3], "output": r[1]} for r in rows]
    from tiny_gemma import _sentence
    import random
    rng = random.Random(0)
    return [{"instruction": TASKS["CoLA"].instruction, "input": _sentence(rng), "output": str(i % 2)} for i in range(n)]


def step_batches(tokenizer, settings) -> list:
    """One optimiser step's data: GRAD_ACCUM padded micro-batches of BATCH_SIZE examples, as train.py encodes them."""
    from transformers import DataCollatorForSeq2Seq
    import modeling
    import train

    dataset, _ = train.encode(settings, tokenizer, step_examples(settings.BATCH_SIZE * settings.GRAD_ACCUM), False,
                              modeling.label_token_ids(tokenizer))
    encoded = list(dataset)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    return [collate(encoded[i:i + settings.BATCH_SIZE]) for i in range(0, len(encoded), settings.BATCH_SIZE)]


def loss_paths(model, with_full: bool) -> dict:
    """The losses a step can be timed by: answer (the default), body (the floor), full (logits everywhere)."""
    import modeling
    import training

    body = modeling.causal_lm_parts(model)[0]

    def answer(b):
        return training.answer_only_loss(model, b["input_ids"], b["attention_mask"], b["labels"])[0]

    def body_alone(b):
        return body(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).last_hidden_state.float().mean()

    ways = {"answer": answer, "body": body_alone}
    if with_full:
        ways["full"] = lambda b: model(**b).loss
    return ways


def time_train_step(folder: Path, precision: str, reps: int, with_full: bool) -> dict:
    """CPU seconds of one optimiser step (GRAD_ACCUM micro-batches of BATCH_SIZE, as config.py says, LoRA as
    train.py builds it) by three paths: the full forward (logits at every position, what a plain causal-LM loss
    costs), the answer-only loss (training.answer_only_loss: the default), and the transformer body alone (the floor)."""
    import torch
    import train

    settings = runtime.load_settings(["--model_path", str(folder), "--precision", precision])
    model, tokenizer = train.build_model(settings)
    model.train()
    batches = step_batches(tokenizer, settings)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ways = loss_paths(model, with_full)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
    seconds = {name: [] for name in ways}
    for i in range(reps + 1):   # round 0 warms up
        for name, loss_of in ways.items():
            started = time.process_time()
            for b in batches:
                with autocast:
                    loss = loss_of(b)
                (loss / len(batches)).backward()
            if name != "body":   # the floor is the body's forward + backward, nothing else
                optimizer.step()
            optimizer.zero_grad()
            if i:
                seconds[name].append(time.process_time() - started)
        if i:
            note(f"train step {precision} round {i}/{reps} (CPU s): "
                 + ", ".join(f"{k} {v[-1]:.1f}" for k, v in seconds.items()))
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    return {"seconds": {k: statistics.median(v) for k, v in seconds.items()}, "tokens": tokens,
            "batch": f"{settings.GRAD_ACCUM} x {settings.BATCH_SIZE}", "reps": reps}


def bench_train_step(workdir: Path, cache: Path, reps: int, tiny: bool, layers: int) -> None:
    part = "6 train step"
    models = []
    real = ROOT / "models" / "gemma-3-270m"
    if tiny:
        models.append(("tiny random Gemma", random_gemma_folder(TINY, 2, tokenizer_folder(workdir), cache), True))
    else:
        if (real / "config.json").is_file():
            models.append(("Gemma 3 270M (models/gemma-3-270m)", real, True))
        else:
            row(part, "Gemma 3 270M", f"skipped: no {real} (python tools/get_gemma3_270m.py)")
        models.append((f"gemma-2b shape, random, {layers} of 18 layers",
                       random_gemma_folder(GEMMA_2B, layers, tokenizer_folder(workdir), cache), False))
    for name, folder, with_full in models:
        for precision in ("fp32", "bf16"):
            try:
                result = time_train_step(folder, precision, reps, with_full)
            except runtime.UserError as e:   # Gemma 3 on the exam's transformers 4.38.1
                row(part, f"{name}, {precision}", f"skipped: {str(e)[:160]}")
                break
            t = result["seconds"]
            row(part, f"{name}, {precision}", f"optimiser step {result['batch']} (tokens per micro-batch "
                f"{result['tokens']}), CPU s, median of {result['reps']}: answer-only {t['answer']:.2f}, body alone "
                f"{t['body']:.2f}" + (f", full forward {t['full']:.2f}" if "full" in t else ""))
            ratio = t["answer"] / t["body"]
            row(part, f"{name}, {precision}: answer-only step / body forward + backward", f"{ratio:.3f}", "<= 1.15",
                None if tiny else ratio <= 1.15)
            if "full" in t:
                row(part, f"{name}, {precision}: speed-up over the full forward", f"{t['full'] / t['answer']:.2f} x",
                    "(report)")
