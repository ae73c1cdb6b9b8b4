"""Part 1: predict's cost per item (label scoring, generate, a full forward, the body alone) on gemma-2b's shape, and
part 5: how long each script takes to start, and whether the light ones stay free of torch."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib (it sets up the rest), also as tools.bench_...
from benchlib import ROOT  # noqa: E402

import statistics
import subprocess
import time

import runtime  # noqa: E402
from benchlib import (GEMMA_2B, NEW_TOKENS, PROMPT_TOKENS, median_ms, note, random_gemma_folder, row,  # noqa: E402
                      tokenizer_folder)

# --- 1. predict cost --------------------------------------------------------------------------------

class CountingTokenizer:
    """What generate_answer needs from a tokenizer; decode returns how many tokens were generated."""
    pad_token_id, eos_token_id = 0, 1

    @staticmethod
    def decode(ids, skip_special_tokens=True):
        return str(len(ids))


# Each way's letter, as docs/benchmarks.md names it, and what it times.
WAYS = {"labels": "(a) label scoring (modeling.score_labels)",
        "generate": f"(b) generate {NEW_TOKENS} tokens (modeling.generate_answer)",
        "forward": "(c) plain full forward (all positions, full vocab)",
        "body": "(d) transformer body alone (floor)"}
# One round: label scoring and the body alternate, so that load from other processes falls on both alike
# (their ratio is the target); the two slow ways run once a round.
ROUND = ("labels", "body", "labels", "body", "forward", "generate")


def count_passes(body, head) -> dict:
    """Hooks that count the body's and the output layer's calls, and the positions the output layer sees."""
    calls = {"body": 0, "head": 0, "positions": 0}

    def count_body(*_):
        calls["body"] += 1

    def count_head(module, inputs, output):
        calls["head"] += 1
        calls["positions"] += inputs[0].shape[-2]

    body.register_forward_hook(count_body)
    head.register_forward_hook(count_head)
    return calls


def predict_ways(model, tokenizer, body, prompt: list) -> dict:
    """The four ways of answering one prompt, as functions of no arguments."""
    import torch
    import modeling

    label_ids = modeling.label_token_ids(tokenizer)
    input_ids = torch.tensor([prompt])

    def full_forward():
        with torch.no_grad():
            model(input_ids=input_ids)   # logits at all 100 positions, all vocabulary rows

    def body_alone():
        with torch.no_grad():
            body(input_ids=input_ids, use_cache=False)

    return {"labels": lambda: modeling.score_labels(model, [prompt], label_ids, tokenizer.pad_token_id),
            "generate": lambda: modeling.generate_answer(model, CountingTokenizer(), prompt, NEW_TOKENS),
            "forward": full_forward,
            "body": body_alone}


def time_ways(ways: dict, reps: int) -> tuple:
    """(CPU seconds, wall seconds per way, labels/body ratios of adjacent pairs, what generate wrote).
    Cost is the process's CPU time per item (with one torch thread: the work done, whatever the load)."""
    cpu, wall = {name: [] for name in ways}, {name: [] for name in ways}
    pair_ratios, generated = [], None
    for i in range(reps):
        for name in ROUND:
            started, started_cpu = time.perf_counter(), time.process_time()
            result = ways[name]()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            if name == "body":
                pair_ratios.append(cpu["labels"][-1] / cpu["body"][-1])
            if name == "generate":
                generated = result
        note(f"predict round {i + 1}/{reps} (CPU ms): "
             + ", ".join(f"{WAYS[k][:3]} {1000 * v[-1]:.0f}" for k, v in cpu.items()))
    return cpu, wall, pair_ratios, generated


def causal_mask_ms(body, shape: dict):
    """(ms, buffer shape) of transformers 4.38's Gemma causal mask, built on every forward; None elsewhere."""
    import torch

    if not (hasattr(body, "causal_mask") and hasattr(body, "_update_causal_mask")):
        return None
    hidden = torch.empty(1, PROMPT_TOKENS, shape["hidden_size"], dtype=torch.bfloat16)
    mask_times = []
    for _ in range(3):
        started_cpu = time.process_time()
        body._update_causal_mask(None, hidden)
        mask_times.append(time.process_time() - started_cpu)
    return median_ms(mask_times), tuple(body.causal_mask.shape)


def shape_text(shape: dict, layers: int) -> str:
    if shape is GEMMA_2B and layers == GEMMA_2B["num_hidden_layers"]:
        return f"gemma-2b shape, all {layers} layers"
    return (f"{layers} of {shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}, "
            f"vocab {shape['vocab_size']}")


def bench_predict(shape: dict, layers: int, reps: int, workdir: Path, cache: Path, tiny: bool) -> None:
    """Cost per item of (a) label scoring, (b) generate-10, (c) a full forward, (d) the body alone."""
    import torch
    import modeling

    folder = random_gemma_folder(shape, layers, tokenizer_folder(workdir), cache)
    settings = runtime.load_settings(["--model_path", str(folder), "--precision", "bf16"])
    started = time.time()
    model, tokenizer = modeling.load_base_model(settings)
    model.eval()
    note(f"loaded by modeling.load_base_model in {time.time() - started:.0f} s")
    activation = getattr(model.config, "hidden_activation", None) or model.config.hidden_act
    body, head = modeling.causal_lm_parts(model)
    generator = torch.Generator().manual_seed(0)
    prompt = [tokenizer.bos_token_id] + torch.randint(5, shape["vocab_size"], (PROMPT_TOKENS - 1,),
                                                     generator=generator).tolist()
    model.generation_config.min_new_tokens = NEW_TOKENS   # a random model may stop early: make it write all 10
    calls = count_passes(body, head)
    ways = predict_ways(model, tokenizer, body, prompt)
    ways["labels"]()   # warm-up, counting the passes
    passes = dict(calls)
    ways["body"]()     # warm-up
    cpu, wall, pair_ratios, generated = time_ways(ways, reps)
    mask = causal_mask_ms(body, shape)
    del model, body, head
    report_predict(shape_text(shape, layers), activation, reps, cpu, wall, passes, generated, pair_ratios, mask, tiny)


def report_predict(shape: str, activation: str, reps: int, cpu: dict, wall: dict, passes: dict, generated: str,
                   pair_ratios: list, mask, tiny: bool) -> None:
    part = "1 predict"
    ms = {name: median_ms(v) for name, v in cpu.items()}
    row(part, "model", f"random Gemma, {shape}, bf16, {activation}, loaded by modeling.load_base_model; "
                       f"{PROMPT_TOKENS}-token prompt, batch 1; medians of {reps} rounds")
    for name, title in WAYS.items():
        row(part, title, f"{ms[name]:.0f} ms/item CPU time (wall {median_ms(wall[name]):.0f} ms; {len(cpu[name])} runs)")
    row(part, "passes per item in (a)", f"body {passes['body']}, output layer {passes['head']} at "
                                         f"{passes['positions']} position(s) of {PROMPT_TOKENS}",
        "one forward pass, output layer at the last position only",
        passes["body"] == 1 and passes["head"] == 1 and passes["positions"] == 1)
    row(part, "tokens written in (b)", generated, str(NEW_TOKENS), generated == str(NEW_TOKENS))
    ratio = statistics.median(pair_ratios)
    row(part, "(a)/(d) label scoring vs body", f"{ratio:.3f} (median of {len(pair_ratios)} adjacent pairs)",
        "<= 1.10", None if tiny else ratio <= 1.10)   # tiny: Python overhead, not the model, decides
    row(part, "(a)/(b) label scoring vs generate-10", f"{ms['labels'] / ms['generate']:.2f}", "about 0.3 on CPU")
    row(part, "(c)/(d) full forward vs body", f"{ms['forward'] / ms['body']:.2f}", "(report)")
    if mask is not None:
        mask_ms, mask_side = mask
        row(part, "of which 4.38's causal mask, built every forward",
            f"{mask_ms:.0f} ms ({100 * mask_ms / ms['body']:.0f} % of (d)): a {mask_side} buffer repeated and cast",
            "(report)")


# --- 5. start-up ------------------------------------------------------------------------------------

def heavy_imports(importtime_output: str) -> list:
    """Top-level packages among torch/transformers that `python -X importtime` saw imported."""
    found = set()
    for line in importtime_output.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in ("torch", "transformers"):
                found.add(name)
    return sorted(found)


def bench_startup(reps: int) -> None:
    part = "5 start-up"
    for script in ("data_process.py", "grade.py"):
        seconds = []
        for _ in range(reps):
            started = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=ROOT, capture_output=True, check=True)
            seconds.append(time.perf_counter() - started)
        done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / script), "--help"], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        heavy = heavy_imports(done.stderr)
        took = statistics.median(seconds)
        row(part, f"python {script} --help", f"{1000 * took:.0f} ms (median of {reps}); imports "
                                              f"{', '.join(heavy) or 'neither torch nor transformers'}",
            "< 1 s, no torch/transformers", took < 1 and not heavy)
