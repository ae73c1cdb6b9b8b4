"""The adapter contract, in one place and without torch: what a saved_model/<ds>/ folder must hold for predict to
load it and for the exam to give it its 20 points, and the run record train.py writes beside it.

Used by train (writes the record), predict and the lab (check before loading, read the record), grade (every check,
with the reasons), and the tools (read the record). Reads safetensors headers and bytes itself, so grade.py starts
without torch.
"""
from __future__ import annotations

import array
import json
import struct
import sys
from pathlib import Path
from typing import List, Tuple

import runtime
from runtime import UserError

CONFIG, WEIGHTS, RUN_RECORD = "adapter_config.json", "adapter_model.safetensors", "run_record.json"
MAX_ADAPTER_BYTES = 2 * 1024 ** 3     # far above any LoRA of gemma-2b (~80 MB at r=16), far below a model copy (5 GB)


def require_loadable(folder: Path, allow_pickle: bool) -> None:
    """Refuse an adapter folder that is missing, empty, truncated or pickled, before peft sees it."""
    if not (folder / CONFIG).is_file():
        raise UserError(
            f"no adapter in {folder} (adapter_config.json is missing). Train one first: python train.py "
            f"--data_set {folder.name}"
        )
    weights = folder / WEIGHTS
    if not weights.is_file():
        if (folder / "adapter_model.bin").is_file() and not allow_pickle:
            raise UserError(
                f"{folder} has a pickled adapter_model.bin, which can run code when loaded. Re-save it as "
                f"safetensors, or set ALLOW_PICKLE = True (--allow_pickle) if you trust it."
            )
        if not (folder / "adapter_model.bin").is_file():
            raise UserError(f"{folder} has adapter_config.json but no adapter_model.safetensors: train again.")
    elif weights.stat().st_size == 0:
        raise UserError(f"{weights} is empty (0 bytes): a save or a copy was interrupted. Train again "
                        f"(python train.py --data_set {folder.name}) or copy the adapter folder again.")


def read_run_record(folder: Path) -> dict:
    """The run_record.json train.py wrote beside an adapter, or {} for an adapter from elsewhere (or a damaged record,
    which is no part of the adapter)."""
    try:
        record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_run_record(folder: Path, record: dict) -> None:
    (folder / RUN_RECORD).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")


def problems(folder: Path, task_name: str) -> Tuple[List[str], List[str]]:
    """(reasons the adapter in folder would lose its 20 points, notes that cost nothing): what grade.py reports."""
    shown = runtime.shown(folder)
    if not folder.is_dir():
        return [f"{shown}/ does not exist"], []
    config_path, weights = folder / CONFIG, folder / WEIGHTS
    for path in (config_path, weights):
        if not path.is_file():
            return [f"{shown}/{path.name} is missing"], []
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return [f"{shown}/{CONFIG} is not valid JSON ({e})"], []
    if not isinstance(config, dict):
        return [f"{shown}/{CONFIG} is not a JSON object"], []
    reasons = config_problems(config)
    trained_on = read_run_record(folder).get("data_set")
    if trained_on and trained_on != task_name:
        reasons.append(f"this adapter was trained on {trained_on}, so it is in the wrong place")
    try:
        header = read_safetensors_header(weights)
    except (ValueError, KeyError, TypeError, OverflowError, struct.error) as e:   # json and UTF-8 errors are ValueErrors
        return reasons + [f"{WEIGHTS} cannot be read: {e}"], []
    reasons += weights_problems(weights, header, config.get("r"))
    notes = ["every lora_B is zero: this adapter is untrained (it changes nothing)"] \
        if not reasons and lora_b_all_zero(weights, header) else []
    return reasons, notes


def config_problems(config: dict) -> List[str]:
    reasons = []
    r = config.get("r")
    if str(config.get("peft_type", "")).upper() != "LORA":
        reasons.append(f"{CONFIG} says peft_type {config.get('peft_type')!r}, not LORA")
    if not isinstance(r, int) or r < 1:
        reasons.append(f"{CONFIG} has r = {r!r}, not a positive whole number")
    if not config.get("target_modules"):
        reasons.append(f"{CONFIG} names no target_modules")
    if not config.get("base_model_name_or_path"):
        reasons.append(f"{CONFIG} names no base_model_name_or_path")
    return reasons


def weights_problems(weights: Path, header: dict, r) -> List[str]:
    names = [n for n in header if n != "__data_start__"]
    lora_a = [n for n in names if "lora_A" in n]
    lora_b = [n for n in names if "lora_B" in n]
    others = [n for n in names if "lora_" not in n]
    reasons = []
    if not lora_a or len(lora_a) != len(lora_b):
        reasons.append(f"{WEIGHTS} holds {len(lora_a)} lora_A and {len(lora_b)} lora_B tensors")
    if others:
        reasons.append(f"{WEIGHTS} also holds {len(others)} non-LoRA tensors (e.g. {others[0]}): a model copy, not an "
                       f"adapter")
    if weights.stat().st_size > MAX_ADAPTER_BYTES:
        reasons.append(f"{WEIGHTS} is {weights.stat().st_size / 1e9:.1f} GB: too big for a LoRA adapter")
    empty = [n for n in lora_a + lora_b if 0 in header[n]["shape"]]
    if empty:
        reasons.append(f"{len(empty)} LoRA tensors hold no numbers (e.g. {empty[0]} {header[empty[0]]['shape']}): "
                       f"an empty adapter")
    if isinstance(r, int):
        # lora_A is (r, in_features) and lora_B is (out_features, r): two dimensions, the rank where peft puts it
        bad_shape = ([n for n in lora_a if len(header[n]["shape"]) != 2 or header[n]["shape"][0] != r]
                     + [n for n in lora_b if len(header[n]["shape"]) != 2 or header[n]["shape"][1] != r])
        if bad_shape:
            reasons.append(f"{len(bad_shape)} LoRA tensors do not have rank r = {r} (e.g. {bad_shape[0]} "
                           f"{header[bad_shape[0]]['shape']})")
    broken = [] if reasons else non_finite_tensors(weights, header)
    if broken:
        reasons.append(f"{len(broken)} LoRA tensors hold NaN or infinite numbers (e.g. {broken[0]}): the training "
                       f"diverged, and predict refuses this adapter")
    return reasons


def read_safetensors_header(path: Path) -> dict:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), checked against its size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"only {size} bytes")
        header_length = struct.unpack("<Q", prefix)[0]
        if header_length > size - 8:
            raise ValueError("its header runs past the end of the file (truncated?)")
        header = json.loads(f.read(header_length))
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    header.pop("__metadata__", None)
    for name, tensor in header.items():
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
            raise ValueError(f"its header entry for {name!r} has no valid shape and data_offsets")
    end = max((t["data_offsets"][1] for t in header.values()), default=0)
    if 8 + header_length + end != size:
        raise ValueError(f"it is {size} bytes but its header describes {8 + header_length + end} (truncated?)")
    header["__data_start__"] = 8 + header_length
    return header


def lora_b_all_zero(path: Path, header: dict) -> bool:
    """True when every lora_B tensor is zero: the adapter was saved before any training step changed it."""
    with open(path, "rb") as f:
        for name, tensor in header.items():
            if "lora_B" in name:
                start, end = tensor["data_offsets"]
                f.seek(header["__data_start__"] + start)
                if f.read(end - start).strip(b"\0"):
                    return False
    return True


# The mask of the exponent bits in each float's high 16 bits; all of them set is NaN or infinity.
EXPONENT_MASKS = {"F32": 0x7F80, "BF16": 0x7F80, "F16": 0x7C00}


def non_finite_tensors(path: Path, header: dict) -> List[str]:
    """Names of the LoRA tensors that hold NaN or infinity (a training run that diverged), read by bit pattern."""
    found = []
    with open(path, "rb") as f:
        for name, tensor in header.items():
            mask = EXPONENT_MASKS.get(tensor.get("dtype")) if "lora_" in name else None
            if mask is None:
                continue
            start, end = tensor["data_offsets"]
            f.seek(header["__data_start__"] + start)
            halves = array.array("H")
            halves.frombytes(f.read(end - start))
            if sys.byteorder == "big":
                halves.byteswap()
            high = halves[1::2] if tensor["dtype"] == "F32" else halves
            if any(h & mask == mask for h in high):
                found.append(name)
    return found
