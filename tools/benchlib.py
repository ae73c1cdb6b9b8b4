"""What every benchmark shares: the one table of figures, the machine and stack lines, gemma-2b's shape and a random
Gemma with those weights on disk, loaded by the project's own loader. tools/bench.py runs the parts."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # the tiny Gemma lives with the tests
sys.path.insert(0, str(ROOT / "tools"))   # the benchmark's parts

import json
import platform
import shutil
import statistics
import tempfile

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


# --- the table --------------------------------------------------------------------------------------

def table() -> str:
    header = ("part", "figure", "value", "target", "")
    widths = [max(len(str(r[i])) for r in ROWS + [header]) for i in range(5)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    ordered = sorted(ROWS, key=lambda r: r[0][0])   # parts 1-6 in order, whatever order they ran in
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in ordered]
    return "\n".join(lines)
