"""Part 4: the A10 memory plan. The figures are an analytic ESTIMATE of what training keeps for backward, checked
against a probe on the CPU; no GPU has measured them (tools/gpu_check.py does, where one is at hand)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib (it sets up the rest), also as tools.bench_...
from benchlib import ROOT  # noqa: E402

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import runtime  # noqa: E402
from benchlib import GEMMA_2B, GIB, GPUS, TINY, random_gemma_folder, row, tokenizer_folder, torch_threads  # noqa: E402

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


def lora_probe_model(shape: dict, settings, folder: Path):
    """A random Gemma of `shape` with LoRA as train.py sets it up (bf16 weights, fp32 trainable ones), in training
    mode; and its target names."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    import versions

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
    return model, targets


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_rss_rise(result: dict):
    """result["peak_rise"] = the largest rise of this process's RSS above its level at entry, sampled every 2 ms."""
    before, peak, running = rss(), [rss()], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield
    finally:
        running[0] = False
        sampler.join()
        result["peak_rise"] = peak[0] - before


@contextlib.contextmanager
def saved_for_backward(model, saved: dict):
    """saved[storage] = (bytes, "layer i" | "outside the layers"): what autograd keeps, by the decoder layer that
    kept it; the weights themselves are not counted."""
    import torch
    import modeling

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    where = ["outside the layers"]

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights and storage.data_ptr() not in saved:
            saved[storage.data_ptr()] = (storage.nbytes(), where[0])
        return t

    hooks = []
    for i, layer in enumerate(modeling.causal_lm_parts(model)[0].layers):
        hooks.append(layer.register_forward_pre_hook(lambda *_, i=i: where.__setitem__(0, f"layer {i}")))
        hooks.append(layer.register_forward_hook(lambda *_: where.__setitem__(0, "outside the layers")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield
    finally:
        for hook in hooks:
            hook.remove()


def probe_memory(tiny: bool, cache: Path) -> dict:
    """Run in a child process: one LoRA training step (forward + backward) on a 2-layer Gemma of the real
    width on the CPU, as train.py sets it up; bytes kept for backward per layer, and the peak RSS rise."""
    import torch

    settings = runtime.load_settings([])
    shape = dict(TINY if tiny else GEMMA_2B, num_hidden_layers=2, max_position_embeddings=512)
    batch, length = (2, 32) if tiny else (2, 128)
    workdir = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    model, targets = lora_probe_model(shape, settings, random_gemma_folder(shape, 2, tokenizer_folder(workdir), cache))
    ids = torch.randint(5, shape["vocab_size"], (batch, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 2
    with torch.no_grad():   # bring every weight into memory first (5.x maps the file and reads it on first use)
        for parameter in model.parameters():
            parameter.sum()
    saved, peak = {}, {}
    with peak_rss_rise(peak):
        with torch.autocast("cpu", dtype=torch.bfloat16), saved_for_backward(model, saved):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    shutil.rmtree(workdir, ignore_errors=True)
    return {"shape": shape, "batch": batch, "length": length, "targets": targets, "r": settings.LORA_R,
            "dropout": settings.LORA_DROPOUT,
            "per_layer": [sum(n for n, w in saved.values() if w == f"layer {i}") for i in range(2)],
            "outside": sum(n for n, w in saved.values() if w == "outside the layers"),
            "peak_rise": peak["peak_rise"]}


def bench_memory(settings, tiny: bool, cache: Path) -> None:
    """The analytic estimate for gemma-2b on an A10 (labelled as one), then the CPU cross-check of its formulas."""
    estimate_rows(settings)
    cross_check_rows(tiny, cache)


def estimate_rows(settings) -> None:
    part = "4 memory"
    targets = [t.strip() for t in settings.LORA_TARGETS.split(",") if t.strip()]
    lora = dict(targets=targets, r=settings.LORA_R, dropout=settings.LORA_DROPOUT,
                answer_only=settings.PROMPT_LOSS_WEIGHT == 0)
    b, length = settings.BATCH_SIZE, settings.MAX_LENGTH
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


def cross_check_rows(tiny: bool, cache: Path) -> None:
    """probe_memory in a child process (a clean RSS), its measured bytes against the formulas."""
    part = "4 memory"
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")   # RSS follows live tensors
    command = [sys.executable, str(ROOT / "tools" / "bench.py"), "--probe-memory", "--cache", str(cache),
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

