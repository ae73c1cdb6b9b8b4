"""Benchmarks: one table of the performance figures, with the machine and the package stack named.

    HF_HUB_OFFLINE=1 nice .venvs/exam/bin/python tools/bench.py       # everything, gemma-2b's real shape
    HF_HUB_OFFLINE=1 nice .venvs/latest/bin/python tools/bench.py     # + Gemma 3 270M in part 6
    python tools/bench.py --only train --reps 3                       # some parts: predict, padding, data, memory,
                                                                      # startup, train
    python tools/bench.py --tiny                                      # tiny shapes: proves it runs (tests)

Parts: 1 predict cost per item, 2 padding in training batches, 3 data_process time, 4 the A10 memory plan,
5 start-up, 6 the optimiser step by the answer-only loss vs the body alone vs the full forward. What each part
measures, why, and the latest figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # the tiny Gemma lives with the tests

import runtime  # noqa: E402  (needs ROOT on sys.path)

GLUE_DIR = ROOT / "data" / "glue"   # tools/get_glue.py writes it
CACHE = Path(tempfile.gettempdir()) / "bench-random-gemma"   # default --cache: random weights, written once, reused
GLUE_QQP_TRAIN_ROWS = 363_846
GLUE_QQP_DEV_ROWS = 40_430
PROMPT_TOKENS = 100
NEW_TOKENS = 10
GIB = 1024 ** 3

# gemma-2b's config.json as published (hidden_act "gelu": load_base_model runs it as the tanh approximation).
GEMMA_2B = {
    "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "torch_dtype": "bfloat16",
    "vocab_size": 256000, "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 18,
    "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256, "hidden_act": "gelu",
    "max_position_embeddings": 8192, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "rope_scaling": None,
    "attention_bias": False, "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
    "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "tie_word_embeddings": True,
}
TINY = dict(GEMMA_2B, vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, head_dim=16, max_position_embeddings=512)
GPUS = {"A10 24 GB": 23028 / 1024, "16 GB": 16376 / 1024, "12 GB": 12288 / 1024}   # GiB as nvidia-smi reports

ROWS = []   # (part, figure, value, target, verdict): the one table


def row(part: str, figure: str, value: str, target: str = "", met=None) -> None:
    verdict = "" if met is None else ("met" if met else "MISSED")
    ROWS.append((part, figure, value, target, verdict))


def note(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def median_ms(seconds: list) -> float:
    return 1000 * statistics.median(seconds)


# --- machine and stack ------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch_threads()
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores, torch threads {threads}{load}"


def torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def stack() -> str:
    v = runtime.package_versions()
    names = ("python", "torch", "transformers", "peft", "accelerate")
    return ", ".join(f"{name} {v[name]}" for name in names if v[name])


# --- a random Gemma on disk, loaded by the project's own loader --------------------------------------

def tokenizer_folder(workdir: Path) -> Path:
    """The tiny Gemma's SentencePiece tokenizer (Gemma's ids and conventions, 1024 pieces), stand-in for gemma-2b's."""
    from tiny_gemma import train_tokenizer, write_tokenizer_config
    folder = workdir / "tokenizer"
    if not (folder / "tokenizer.model").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        train_tokenizer(folder, 1024, seed=0)
        write_tokenizer_config(folder)
    return folder


def random_gemma_folder(shape: dict, layers: int, tokenizer_dir: Path, cache: Path) -> Path:
    """A model folder shaped like gemma-2b (config.json, model.safetensors, tokenizer) with random bf16 weights.

    Written once per shape to the temp dir and reused (both stacks load it): drawing 2.5 billion random
    numbers takes longer than loading them.
    """
    import torch
    from safetensors.torch import save_file

    config = dict(shape, num_hidden_layers=layers)
    folder = cache / f"h{config['hidden_size']}-v{config['vocab_size']}-l{layers}-p{config['max_position_embeddings']}"
    if (folder / "complete").is_file():
        return folder
    note(f"writing a random {layers}-layer Gemma to {folder} (once)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    h, inter, heads, kv, hd = (config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                                   "num_key_value_heads", "head_dim"))
    shapes = {"model.embed_tokens.weight": (config["vocab_size"], h), "model.norm.weight": (h,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (heads * hd, h), p + "self_attn.k_proj.weight": (kv * hd, h),
            p + "self_attn.v_proj.weight": (kv * hd, h), p + "self_attn.o_proj.weight": (h, heads * hd),
            p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter),
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
        })
    generator = torch.Generator().manual_seed(0)
    bound = 0.02 * 3 ** 0.5   # uniform with gemma's initializer std 0.02 (faster to draw than normal)
    tensors = {name: torch.empty(s, dtype=torch.bfloat16).uniform_(-bound, bound, generator=generator)
               for name, s in shapes.items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tokenizer_dir / name, folder / name)
    (folder / "complete").write_text("")
    return folder


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


def bench_padding(workdir: Path, settings) -> None:
    part = "2 padding"
    data_dir = real_data_folder(workdir, glue_size=False)
    if data_dir is None:
        row(part, "skipped", f"no real CoLA/QQP files in {GLUE_DIR}: python tools/get_glue.py")
        return
    import torch
    from transformers import DataCollatorForSeq2Seq
    from transformers.trainer_pt_utils import LengthGroupedSampler
    import modeling

    pre_data = workdir / "pre_data-real"
    run_data_process(data_dir, pre_data)
    tokenizer = modeling.load_tokenizer(tokenizer_folder(workdir))
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    b, accumulation = settings.BATCH_SIZE, settings.GRAD_ACCUM
    row(part, "settings", f"MAX_SAMPLES {settings.MAX_SAMPLES}, BATCH_SIZE {b}, GRAD_ACCUM {accumulation}, "
                          f"MAX_LENGTH {settings.MAX_LENGTH}, GROUP_BY_LENGTH {settings.GROUP_BY_LENGTH}, "
                          f"EPOCHS {settings.EPOCHS}; stand-in tokenizer: the tiny Gemma's SentencePiece "
                          f"(1024 pieces; gemma-2b's 256k pieces give fewer tokens per text)")
    for task_name in ("CoLA", "QQP"):
        examples = json.loads((pre_data / task_name / f"{task_name}_train.json").read_text(encoding="utf-8"))
        features = []
        for example in examples:
            encoded = modeling.encode_example(tokenizer, example, settings.MAX_LENGTH, settings.PROMPT_LOSS_WEIGHT > 0,
                                              modeling.label_token_ids(tokenizer))
            encoded.pop("truncated")
            features.append(encoded)
        lengths = [len(f["input_ids"]) for f in features]

        def share(grouped: bool) -> float:
            """Real tokens / batch slots over EPOCHS epochs, in the Trainer's order and batches."""
            generator = torch.Generator().manual_seed(settings.SEED)
            real = slots = 0
            for _ in range(settings.EPOCHS):
                if grouped:   # what Trainer._get_train_sampler builds when group_by_length is on
                    order = list(LengthGroupedSampler(b * accumulation, lengths=lengths, generator=generator))
                else:
                    order = torch.randperm(len(features), generator=generator).tolist()
                for start in range(0, len(order), b):
                    batch = collator([features[i] for i in order[start:start + b]])
                    real += int(batch["attention_mask"].sum())
                    slots += batch["attention_mask"].numel()
            return real / slots

        at_cap = sum(n == settings.MAX_LENGTH for n in lengths)
        row(part, f"{task_name}: {len(features)} examples, tokens each",
            f"mean {statistics.mean(lengths):.0f}, max {max(lengths)} ({at_cap} cut at MAX_LENGTH)")
        for grouped in (True, False):
            default = grouped == settings.GROUP_BY_LENGTH   # the target applies to what config.py does
            value = share(grouped)
            row(part, f"{task_name}: real-token share, {'length-grouped' if grouped else 'random'} batches"
                      f"{' (the setting)' if default else ''}", f"{100 * value:.1f} %",
                ">= 90 %" if default else "(report)", value >= 0.90 if default else None)
        fixed = sum(lengths) / (len(lengths) * settings.MAX_LENGTH)
        row(part, f"{task_name}: real-token share, padded to MAX_LENGTH", f"{100 * fixed:.1f} %", "(report)")


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


# --- 4. GPU memory plan -----------------------------------------------------------------------------

def lora_widths(shape: dict) -> dict:
    """(input width, output width) of each linear layer LoRA can target in a Gemma layer."""
    h, inter = shape["hidden_size"], shape["intermediate_size"]
    q, kv = shape["num_attention_heads"] * shape["head_dim"], shape["num_key_value_heads"] * shape["head_dim"]
    return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}


def layer_bytes(shape: dict, batch: int, length: int, targets: list, r: int, dropout: float,
                mask_bytes: int = 1) -> int:
    """Bytes one decoder layer keeps for backward: transformers 4.38 Gemma with eager attention (what 4.38
    picks on the exam's torch 2.0), bf16 autocast, frozen bf16 base, peft LoRA weights in fp32.

    mask_bytes: a LoRA dropout mask is bool on CUDA (1 byte), the input's dtype on the CPU (fp32: 4).
    """
    h, inter, heads, hd = (shape[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "head_dim"))
    widths = lora_widths(shape)
    lora = sum((mask_bytes if dropout > 0 else 0) * widths[t][0]   # dropout mask
               + 2 * widths[t][0]                                  # bf16 input of lora_A (autocast's copy)
               + 2 * r                                             # bf16 input of lora_B
               for t in targets)
    per_token = (2 * 4 * h                     # two RMSNorms: each keeps an fp32 copy of its input
                 + lora
                 + 2 * heads * hd * 3          # q, and k, v repeated to every head, for the two attention matmuls
                 + (4 + 2) * heads * length    # attention probabilities: fp32 softmax output and its bf16 copy
                 + 2 * inter * 3)              # MLP: gelu input, gelu output, up projection
    rope = 2 * 2 * hd * length                 # RoPE cos and sin (one row per position)
    lora_copies = 2 * sum(r * sum(widths[t]) for t in targets)   # autocast's bf16 copies of the LoRA weights
    return batch * length * per_token + rope + lora_copies


def training_memory(shape: dict, batch: int, length: int, targets: list, r: int, dropout: float,
                    checkpointing: bool, answer_only: bool = True) -> dict:
    """Peak GPU memory (bytes) of one training step of a Gemma with LoRA on transformers 4.38.1 / torch 2.0.

    answer_only: the loss on the answer alone (PROMPT_LOSS_WEIGHT 0): logits only at the label and EOS positions
    of each row, and no KV cache (training.answer_only_loss passes use_cache=False)."""
    h, v, layers = shape["hidden_size"], shape["vocab_size"], shape["num_hidden_layers"]
    p = shape["max_position_embeddings"]
    kv = shape["num_key_value_heads"] * shape["head_dim"]
    widths = lora_widths(shape)
    params = v * h + h + layers * (sum(i * o for i, o in widths.values()) + 2 * h)
    lora_params = layers * sum(r * sum(widths[t]) for t in targets)
    tokens = batch * length
    one_layer = layer_bytes(shape, batch, length, targets, r, dropout)
    # Logits, 12 bytes each at the peak. Forward (4.38): bf16 logits, their shifted bf16 copy, autocast's fp32
    # copy, fp32 log-probs. Backward (any version): the saved fp32 log-probs, their gradient, the logits' gradient.
    logits = 12 * (2 * batch if answer_only else tokens) * v
    cache = 0 if answer_only else layers * tokens * 2 * 2 * kv   # k, v of every layer: 4.38 keeps use_cache on
    if checkpointing:   # each layer keeps only its input (and 4.38 keeps the 4-D mask it was passed)
        body = layers * tokens * 2 * h + batch * p * p * 2
        at_loss = body + max(logits, one_layer)   # the layer recomputed in backward comes after the head
    else:
        at_loss = layers * one_layer + tokens * 4 * h + cache + logits
    # 4.38 also builds a (batch, 1, P, P) mask at the start of every forward: an int64 repeat, then bf16 copies.
    at_mask = 10 * batch * p * p
    parts = {
        "weights (bf16)": 2 * params,
        "4.38's causal-mask buffer (int64, max_position_embeddings^2)": 8 * p * p,
        "LoRA fp32 weights + grads + Adam m, v": 16 * lora_params,
        f"activations + logits at the loss ({logits / GIB:.2f} GiB of it logits)": max(at_loss, at_mask),
    }
    dynamic = max(at_loss, at_mask)
    parts["allocator slack (10 % of activations) + CUDA context/cuBLAS (0.6 GiB)"] = 0.10 * dynamic + 0.6 * GIB
    return {"parts": parts, "total": sum(parts.values()), "params": params, "lora_params": lora_params}


def probe_memory(tiny: bool, cache: Path) -> dict:
    """Run in a child process: one LoRA training step (forward + backward) on a 2-layer Gemma of the real
    width on the CPU, as train.py sets it up; bytes kept for backward per layer, and the peak RSS rise."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    import modeling
    import versions

    settings = runtime.load_settings([])
    shape = dict(TINY if tiny else GEMMA_2B, num_hidden_layers=2, max_position_embeddings=512)
    batch, length = (2, 32) if tiny else (2, 128)
    workdir = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    folder = random_gemma_folder(shape, 2, tokenizer_folder(workdir), cache)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, attn_implementation="eager", hidden_act="gelu_pytorch_tanh",
        **{versions.DTYPE_ARGUMENT: torch.bfloat16})
    targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
    model = get_peft_model(model, LoraConfig(r=settings.LORA_R, lora_alpha=settings.LORA_ALPHA,
                                             lora_dropout=settings.LORA_DROPOUT, target_modules=targets,
                                             task_type="CAUSAL_LM"))
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    model.train()
    ids = torch.randint(5, shape["vocab_size"], (batch, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 2

    # Bytes saved for backward, by storage, attributed to the decoder layer that saved them.
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved, where = {}, ["outside the layers"]

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights and storage.data_ptr() not in saved:
            saved[storage.data_ptr()] = (storage.nbytes(), where[0])
        return t

    for i, layer in enumerate(modeling.causal_lm_parts(model)[0].layers):
        layer.register_forward_pre_hook(lambda *_, i=i: where.__setitem__(0, f"layer {i}"))
        layer.register_forward_hook(lambda *_: where.__setitem__(0, "outside the layers"))

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    peak, running = [rss()], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    with torch.no_grad():   # bring every weight into memory first (5.x maps the file and reads it on first use)
        for parameter in model.parameters():
            parameter.sum()
    before = rss()
    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    running[0] = False
    sampler.join()
    per_layer = [sum(n for n, w in saved.values() if w == f"layer {i}") for i in range(2)]
    shutil.rmtree(workdir, ignore_errors=True)
    return {"shape": shape, "batch": batch, "length": length, "targets": targets, "r": settings.LORA_R,
            "dropout": settings.LORA_DROPOUT, "per_layer": per_layer,
            "outside": sum(n for n, w in saved.values() if w == "outside the layers"),
            "peak_rise": peak[0] - before}


def bench_memory(settings, tiny: bool, cache: Path) -> None:
    part = "4 memory"
    targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
    lora = dict(targets=targets, r=settings.LORA_R, dropout=settings.LORA_DROPOUT)
    b, length = settings.BATCH_SIZE, settings.MAX_LENGTH
    lora["answer_only"] = settings.PROMPT_LOSS_WEIGHT == 0
    plan = training_memory(GEMMA_2B, b, length, checkpointing=settings.GRADIENT_CHECKPOINTING, **lora)
    a10 = GPUS["A10 24 GB"]
    row(part, "model", f"gemma-2b {plan['params'] / 1e9:.3f} B parameters; LoRA r={settings.LORA_R} on "
                       f"{len(targets)} projections: {plan['lora_params'] / 1e6:.1f} M trainable; on the exam "
                       f"stack (transformers 4.38.1, torch 2.0: eager attention; bf16 autocast), estimated; loss on "
                       f"{'the answer only' if lora['answer_only'] else 'every token'} (PROMPT_LOSS_WEIGHT "
                       f"{settings.PROMPT_LOSS_WEIGHT:g})")
    for name, size in plan["parts"].items():
        row(part, f"  {name}", f"{size / GIB:.2f} GiB")
    headroom = 1 - plan["total"] / GIB / a10
    row(part, f"peak, BATCH_SIZE {b} x MAX_LENGTH {length} (a full-length batch)",
        f"{plan['total'] / GIB:.1f} GiB of {a10:.1f}: headroom {100 * headroom:.0f} %", "headroom >= 25 %",
        headroom >= 0.25)
    largest = max((n for n in (1, 2, 4, 8, 16, 32) if training_memory(GEMMA_2B, n, length, checkpointing=False,
                                                                        **lora)["total"] / GIB <= 0.75 * a10), default=0)
    row(part, f"largest BATCH_SIZE (1, 2, 4, ... 32) with 25 % A10 headroom at MAX_LENGTH {length}", str(largest),
        f">= BATCH_SIZE ({b})", largest >= b)
    options = [(b, settings.GRAD_ACCUM, length, False, True), (4, 4, length, False, False),
               (8, 2, length, False, False), (4, 4, length, False, True), (8, 2, length, False, True),
               (16, 1, length, False, True), (16, 1, length, True, True), (2, 8, length, False, True),
               (1, 16, length, False, True), (2, 8, 128, True, True)]
    for batch, accumulation, max_length, checkpointing, answer_only in options:
        total = training_memory(GEMMA_2B, batch, max_length, checkpointing=checkpointing,
                                **dict(lora, answer_only=answer_only))["total"] / GIB
        fits = ", ".join(f"{gpu} {100 * (1 - total / size):.0f} %" for gpu, size in GPUS.items())
        row(part, f"  BATCH_SIZE {batch}, GRAD_ACCUM {accumulation}, MAX_LENGTH {max_length}"
                  f"{', GRADIENT_CHECKPOINTING' if checkpointing else ''}"
                  f"{'' if answer_only else ', PROMPT_LOSS_WEIGHT > 0 (logits everywhere)'}", f"{total:.1f} GiB; headroom {fits}")

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")   # RSS follows live tensors
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", "--cache", str(cache),
               "--threads", str(torch_threads())]
    command += ["--tiny"] if tiny else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        row(part, "CPU cross-check", f"failed: {done.stderr.strip().splitlines()[-1:]}")
        return
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    shape, tokens = probe["shape"], probe["batch"] * probe["length"]
    # Layer 1 stands for 17 of gemma-2b's 18 layers (layer 0's input needs no gradient: it keeps a bit less).
    expected_layer = layer_bytes(shape, probe["batch"], probe["length"], probe["targets"], probe["r"],
                                 probe["dropout"], mask_bytes=4)   # the CPU's dropout masks are fp32
    measured_layer = probe["per_layer"][1]
    row(part, "CPU cross-check model", f"2 layers of width {shape['hidden_size']}, vocab {shape['vocab_size']}, "
                                       f"batch {probe['batch']} x {probe['length']} tokens, eager attention, "
                                       f"bf16 autocast, LoRA as train.py sets it up")
    row(part, "  kept for backward per layer: formula / measured",
        f"{expected_layer / 2 ** 20:.1f} / {measured_layer / 2 ** 20:.1f} MiB "
        f"({100 * (measured_layer / expected_layer - 1):+.1f} %)", "within 10 %",
        abs(measured_layer / expected_layer - 1) <= 0.10)
    expected_peak = sum(probe["per_layer"]) + tokens * 4 * shape["hidden_size"] + 12 * tokens * shape["vocab_size"]
    row(part, "  step's peak rise: formula (layers + 12 bytes a logit) / measured RSS",
        f"{expected_peak / 2 ** 20:.0f} / {probe['peak_rise'] / 2 ** 20:.0f} MiB "
        f"({100 * (probe['peak_rise'] / expected_peak - 1):+.1f} %)", "within 15 %",
        None if tiny else abs(probe["peak_rise"] / expected_peak - 1) <= 0.15)   # tiny: below RSS resolution


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


def time_train_step(folder: Path, precision: str, reps: int, with_full: bool) -> dict:
    """CPU seconds of one optimiser step (GRAD_ACCUM micro-batches of BATCH_SIZE, as config.py says, LoRA as
    train.py builds it) by three paths: the full forward (logits at every position: the path before issue 8), the
    answer-only loss (training.answer_only_loss: the default), and the transformer body alone (the floor)."""
    import torch
    import modeling
    import training
    import train

    settings = runtime.load_settings(["--model_path", str(folder), "--precision", precision])
    model, tokenizer = train.build_model(settings)
    model.train()
    label_ids = modeling.label_token_ids(tokenizer)
    examples = step_examples(settings.BATCH_SIZE * settings.GRAD_ACCUM)
    encoded = [modeling.encode_example(tokenizer, e, settings.MAX_LENGTH, False, label_ids) for e in examples]
    for e in encoded:
        e.pop("truncated")
    from transformers import DataCollatorForSeq2Seq
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    batches = [collate(encoded[i:i + settings.BATCH_SIZE]) for i in range(0, len(encoded), settings.BATCH_SIZE)]
    body = modeling.causal_lm_parts(model)[0]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def full(b):
        return model(**b).loss

    def answer(b):
        return training.answer_only_loss(model, b["input_ids"], b["attention_mask"], b["labels"])[0]

    def body_alone(b):
        return body(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).last_hidden_state.float().mean()

    ways = {"answer": answer, "body": body_alone}
    if with_full:
        ways["full"] = full
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


# --- the table --------------------------------------------------------------------------------------

def table() -> str:
    header = ("part", "figure", "value", "target", "")
    widths = [max(len(str(r[i])) for r in ROWS + [header]) for i in range(5)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    ordered = sorted(ROWS, key=lambda r: r[0][0])   # parts 1-6 in order, whatever order they ran in
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in ordered]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="predict,padding,data,memory,startup,train",
                        help="comma-separated parts to run (default: all of predict,padding,data,memory,startup,train)")
    parser.add_argument("--layers", type=int, default=None,
                        help="decoder layers of the predict model (default: all 18)")
    parser.add_argument("--train-layers", type=int, default=2,
                        help="decoder layers of gemma-2b's shape in the train part (default 2: its full 18 take minutes "
                             "a step on a CPU)")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds for predict and data_process (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on cores shared with other jobs, 2 threads wait on each "
                             "other and timings swing 2x; use 2 on an idle machine)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and data: checks the bench works, in seconds")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help=f"folder for the random model weights, kept between runs (default {CACHE}; "
                             f"about 6.5 GB at full size: delete it when done)")
    parser.add_argument("--probe-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(args.tiny, args.cache)))
        return 0
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - {"predict", "padding", "data", "memory", "startup", "train"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}")
    settings = runtime.load_settings([])   # config.py's defaults
    shape = TINY if args.tiny else GEMMA_2B
    layers = args.layers or shape["num_hidden_layers"]
    python = Path(sys.executable)
    if ROOT in python.parents:
        python = python.relative_to(ROOT)
    command = f"{python} tools/bench.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if "startup" in parts:
            bench_startup(3 if args.tiny else 5)
        if "data" in parts:
            bench_data_process(workdir, 1 if args.tiny else args.reps, args.tiny)
        if "padding" in parts:
            bench_padding(workdir, settings)
        if "memory" in parts:
            bench_memory(settings, args.tiny, args.cache)
        if "predict" in parts:
            bench_predict(shape, layers, 1 if args.tiny else args.reps, workdir, args.cache, args.tiny)
        if "train" in parts:
            bench_train_step(workdir, args.cache, 1 if args.tiny else args.reps, args.tiny, args.train_layers)
    print(f"machine: {machine()}")
    print(f"stack:   {stack()}")
    print(f"command: {command}   ({time.time() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
