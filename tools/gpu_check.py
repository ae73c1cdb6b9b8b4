"""What only a GPU can tell: gemma-2b's shape (random weights) through data_process, train and predict at the
defaults, on worst-case batches (every example 256 tokens), with the allocator capped at an A10's 22 GiB.

    python tools/gpu_check.py             # on a CUDA GPU: a few minutes
    python tools/gpu_check.py --dry_run   # on a CPU: a 2-layer model of the same family, the same steps (tests)

Prints one line per check and exits 1 if any fails:
  memory      peak GPU memory of training and of prediction, against the README's estimate (14.7 GiB)
  placement   base weights bf16, LoRA weights fp32, every weight on the GPU
  attention   the attention implementation transformers picked (eager on torch 2.0.0, SDPA from 2.1.1)
  gelu        Gemma's MLP runs the tanh form of GELU it was trained with
  positions   rotary angles under bf16 autocast (training) equal those without it
  oom         a batch too large for the card ends in train.py's one-paragraph message, not a traceback
A random model learns nothing: accuracy is not checked here (docs/real_model.md has real models).
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # the tiny Gemma lives with the tests

import torch  # noqa: E402

import data_process  # noqa: E402
import predict  # noqa: E402
import runtime  # noqa: E402
import train  # noqa: E402
from tiny_gemma import build_tiny_gemma  # noqa: E402

GEMMA_2B = dict(hidden_size=2048, num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1, head_dim=256,
                intermediate_size=16384, vocab_size=256000, max_position_embeddings=8192)
DRY_RUN = dict(GEMMA_2B, num_hidden_layers=2, hidden_size=256, intermediate_size=1024, num_attention_heads=2,
               head_dim=128, vocab_size=4096)
A10_USABLE_GIB = 22.0
ESTIMATED_PEAK_GIB = 14.7   # README, "Memory plan": the estimate for the defaults at 8 x 256


def random_model_folder(shape: dict, folder: Path) -> Path:
    """A tiny Gemma's tokenizer beside a random model of `shape`, built on the GPU in bf16 where there is one."""
    from transformers import GemmaConfig, GemmaForCausalLM

    build_tiny_gemma(folder)   # the tokenizer (and a tiny model, replaced below)
    config = GemmaConfig(hidden_act="gelu", pad_token_id=0, eos_token_id=1, bos_token_id=2, **shape)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = GemmaForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(str(folder), safe_serialization=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return folder


def worst_case_data(folder: Path) -> Path:
    """CoLA files whose every sentence is longer than MAX_LENGTH: every training batch is BATCH_SIZE x 256."""
    words = "the cat sat on a mat while my sister wrote a long letter to our old neighbours about the garden".split()
    long_sentence = " ".join(words[i % len(words)] for i in range(400))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "CoLA_train.tsv").write_text("".join(f"gj04\t{i % 2}\t\t{long_sentence} {i}.\n" for i in range(200)))
    (folder / "CoLA_dev.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{long_sentence}\n" for i in range(150)))
    return folder


def gelu_form(model) -> str:
    """'tanh' or 'exact': which GELU the first MLP computes, read off its value at 1."""
    value = model.model.layers[0].mlp.act_fn(torch.tensor([1.0])).item()
    tanh_form = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
    return "tanh" if abs(value - tanh_form) < 1e-5 else "exact"


def rotary_error_under_autocast(model, device: str) -> float:
    """Max |cos difference| of the first rotary embedding's angles with bf16 autocast on and off, 256 positions."""
    rotary = next(m for m in model.modules() if type(m).__name__.endswith("RotaryEmbedding"))
    x = torch.zeros(1, 1, 256, 8, dtype=torch.bfloat16, device=device)
    positions = torch.arange(256, device=device)[None, :]
    exact, _ = rotary(x, positions)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        rounded, _ = rotary(x, positions)
    return (exact.float() - rounded.float()).abs().max().item()


def gib(n_bytes: int) -> float:
    return n_bytes / 2 ** 30


class Checks:
    """PASS / FAIL lines as the checks run, and whether all passed."""

    def __init__(self):
        self.results = []

    def __call__(self, name: str, ok: bool, detail: str) -> None:
        self.results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'}  {name:<10} {detail}", flush=True)


def check_model(settings, device: str, check: Checks) -> None:
    """What train.py builds: the precision and place of every weight, the attention, GELU and rotary angles."""
    model, _ = train.build_model(settings)
    base = {p.dtype for n, p in model.named_parameters() if "lora_" not in n}
    lora = {p.dtype for n, p in model.named_parameters() if "lora_" in n}
    devices = {p.device.type for p in model.parameters()}
    check("placement", base == {torch.bfloat16} and lora == {torch.float32} and devices == {device},
          f"base {sorted(map(str, base))}, LoRA {sorted(map(str, lora))}, on {sorted(devices)}")
    attention = getattr(model.config, "_attn_implementation", "eager")
    check("attention", attention in ("eager", "sdpa"), f"{attention} (torch {torch.__version__})")
    check("gelu", gelu_form(model.get_base_model()) == "tanh", gelu_form(model.get_base_model()))
    error = rotary_error_under_autocast(model, device)
    check("positions", error == 0.0, f"max |cos error| under bf16 autocast over 256 positions: {error:.4f}")


def check_train_and_predict(settings, where: list, on_gpu: bool, check: Checks) -> None:
    """train.py and predict.py at the defaults on worst-case batches, their peaks, and the out-of-memory message."""
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    train.main(settings)
    if on_gpu:
        peak = gib(torch.cuda.max_memory_allocated())
        check("memory", peak <= A10_USABLE_GIB, f"training peak {peak:.1f} GiB at {settings.BATCH_SIZE} x "
              f"{settings.MAX_LENGTH} (estimate {ESTIMATED_PEAK_GIB} GiB, cap {A10_USABLE_GIB} GiB)")
        torch.cuda.reset_peak_memory_stats()
    predict.main(settings)
    lines = runtime.result_file(settings, "CoLA").read_text().splitlines()
    check("predict", len(lines) == 150, f"{len(lines)} answers written")
    if not on_gpu:
        print("skip  memory, oom: no GPU (dry run)")
        return
    check("memory", True, f"prediction peak {gib(torch.cuda.max_memory_allocated()):.1f} GiB")
    try:
        train.main(runtime.load_settings(where + ["--batch_size", "64", "--grad_accum", "1"]))
        check("oom", False, "batch 64 x 256 did not run out of memory: raise it in this script")
    except runtime.UserError as e:
        check("oom", "ran out of memory" in str(e), str(e)[:100])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry_run", action="store_true", help="a small model, on the CPU if there is no GPU")
    args = parser.parse_args(argv)
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not args.dry_run:
        print("gpu_check: no CUDA GPU here; run it with --dry_run to check the steps on a CPU", file=sys.stderr)
        return 2
    device = "cuda" if on_gpu else "cpu"
    if on_gpu:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, A10_USABLE_GIB * 2 ** 30 / total))
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    model_folder = random_model_folder(DRY_RUN if args.dry_run else GEMMA_2B, work / "model")
    where = ["--data_set", "CoLA", "--data_dir", str(worst_case_data(work / "data")), "--model_path", str(model_folder),
             "--pre_data_dir", str(work / "pre_data"), "--saved_model_dir", str(work / "saved_model"),
             "--result_dir", str(work / "questionB"), "--checkpoint_dir", str(work / "checkpoints"),
             "--precision", "bf16", "--max_samples", "64", "--holdout_size", "16", "--max_steps", "4",
             "--evals_per_epoch", "1", "--logging_steps", "1"]
    settings = runtime.load_settings(where)
    data_process.main(settings)
    check = Checks()
    check_model(settings, device, check)
    check_train_and_predict(settings, where, on_gpu, check)
    passed = all(check.results)
    if passed:
        shutil.rmtree(work)
    kept = "" if passed else f"; its files are in {work}"
    print(f"gpu_check: {sum(check.results)}/{len(check.results)} checks passed "
          f"({'dry run, ' if args.dry_run else ''}{device}){kept}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
