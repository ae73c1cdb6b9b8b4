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


def bench_predict(shape: dict, layers: int, reps: int, workdir: Path, cache: Path, tiny: bool) -> None:
    """Cost per item of (a) label scoring, (b) generate-10, (c) a full forward, (d) the body alone."""
    import torch
    import modeling

    tokenizer_dir = tokenizer_folder(workdir)
    folder = random_gemma_folder(shape, layers, tokenizer_dir, cache)
    settings = runtime.load_settings(["--model_path", str(folder), "--precision", "bf16"])
    started = time.time()
    model, tokenizer = modeling.load_base_model(settings)
    model.eval()
    note(f"loaded by modeling.load_base_model in {time.time() - started:.0f} s")
    activation = getattr(model.config, "hidden_activation", None) or model.config.hidden_act
    body, head = modeling.causal_lm_parts(model)
    label_ids = modeling.label_token_ids(tokenizer)
    generator = torch.Generator().manual_seed(0)
    prompt = [tokenizer.bos_token_id] + torch.randint(5, shape["vocab_size"], (PROMPT_TOKENS - 1,),
                                                     generator=generator).tolist()
    input_ids = torch.tensor([prompt])
    model.generation_config.min_new_tokens = NEW_TOKENS   # a random model may stop early: make it write all 10

    calls = {"body": 0, "head": 0, "positions": 0}
    body.register_forward_hook(lambda *_: calls.__setitem__("body", calls["body"] + 1))

    def count_head(module, inputs, output):
        calls["head"] += 1
        calls["positions"] += inputs[0].shape[-2]

    head.register_forward_hook(count_head)

    def full_forward():
        with torch.no_grad():
            model(input_ids=input_ids)   # logits at all 100 positions, all vocabulary rows

    def body_alone():
        with torch.no_grad():
            body(input_ids=input_ids, use_cache=False)

    ways = {
        "a": ("label scoring (modeling.score_labels)",
              lambda: modeling.score_labels(model, [prompt], label_ids, tokenizer.pad_token_id)),
        "b": (f"generate {NEW_TOKENS} tokens (modeling.generate_answer)",
              lambda: modeling.generate_answer(model, CountingTokenizer(), prompt, NEW_TOKENS)),
        "c": ("plain full forward (all positions, full vocab)", full_forward),
        "d": ("transformer body alone (floor)", body_alone),
    }
    ways["a"][1]()   # warm-up, counting the passes
    passes = dict(calls)
    ways["d"][1]()   # warm-up
    # The four alternate within each round, so that load from other processes falls on all of them alike.
    # Cost is the process's CPU time per item (with one torch thread: the work done, whatever the load);
    # wall time is given beside it.
    cpu, wall = {key: [] for key in ways}, {key: [] for key in ways}
    pair_ratios, generated = [], None
    for i in range(reps):
        for key in "adadcb":
            started, started_cpu = time.perf_counter(), time.process_time()
            result = ways[key][1]()
            wall[key].append(time.perf_counter() - started)
            cpu[key].append(time.process_time() - started_cpu)
            if key == "d":
                pair_ratios.append(cpu["a"][-1] / cpu["d"][-1])
            if key == "b":
                generated = result
        note(f"predict round {i + 1}/{reps} (CPU ms): "
             + ", ".join(f"{k} {1000 * v[-1]:.0f}" for k, v in cpu.items()))
    ms = {key: median_ms(v) for key, v in cpu.items()}
    mask_ms = None
    if hasattr(body, "causal_mask") and hasattr(body, "_update_causal_mask"):   # transformers 4.38's Gemma
        hidden = torch.empty(1, PROMPT_TOKENS, shape["hidden_size"], dtype=torch.bfloat16)
        mask_times = []
        for _ in range(3):
            started_cpu = time.process_time()
            body._update_causal_mask(None, hidden)
            mask_times.append(time.process_time() - started_cpu)
        mask_ms, mask_side = median_ms(mask_times), tuple(body.causal_mask.shape)
    del model, body, head

    real = shape is GEMMA_2B and layers == GEMMA_2B["num_hidden_layers"]
    shape_text = (f"gemma-2b shape, all {layers} layers" if real else
                  f"{layers} of {shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}, "
                  f"vocab {shape['vocab_size']}")
    part = "1 predict"
    row(part, "model", f"random Gemma, {shape_text}, bf16, {activation}, loaded by modeling.load_base_model; "
                       f"{PROMPT_TOKENS}-token prompt, batch 1; medians of {reps} rounds")
    for key, (name, _) in ways.items():
        row(part, f"({key}) {name}", f"{ms[key]:.0f} ms/item CPU time (wall {median_ms(wall[key]):.0f} ms; "
                                     f"{len(cpu[key])} runs)")
    row(part, "passes per item in (a)", f"body {passes['body']}, output layer {passes['head']} at "
                                         f"{passes['positions']} position(s) of {PROMPT_TOKENS}",
        "one forward pass, output layer at the last position only",
        passes["body"] == 1 and passes["head"] == 1 and passes["positions"] == 1)
    row(part, "tokens written in (b)", generated, str(NEW_TOKENS), generated == str(NEW_TOKENS))
    ratio = statistics.median(pair_ratios)
    row(part, "(a)/(d) label scoring vs body", f"{ratio:.3f} (median of {len(pair_ratios)} adjacent pairs)",
        "<= 1.10", None if tiny else ratio <= 1.10)   # tiny: Python overhead, not the model, decides
    row(part, "(a)/(b) label scoring vs generate-10", f"{ms['a'] / ms['b']:.2f}", "about 0.3 on CPU")
    row(part, "(c)/(d) full forward vs body", f"{ms['c'] / ms['d']:.2f}", "(report)")
    if mask_ms is not None:
        row(part, "of which 4.38's causal mask, built every forward",
            f"{mask_ms:.0f} ms ({100 * mask_ms / ms['d']:.0f} % of (d)): a {mask_side} buffer repeated and cast",
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
