"""The one place that loads models and turns prompts into answers; used by train, predict and the tools.

Written for both the exam's stack (transformers 4.38.1, peft 0.10) and today's releases: where their APIs
differ, the difference is handled here and nowhere else.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional, Sequence, Tuple

# Never reach for the hub: everything is local. Set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import warnings

import torch
import transformers
from packaging import version
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

import runtime
from runtime import UserError
from tasks import LABELS, prompt_parts, read_label

# peft asks the hub whether the base model's vocabulary changed each time it saves; offline it cannot, warns,
# and rightly assumes it did not (LoRA never touches the vocabulary). Nothing for the user to do: keep it quiet.
warnings.filterwarnings("ignore", message="Could not find a config file in")

TRANSFORMERS_VERSION = version.parse(transformers.__version__)
# transformers 4.56 renamed from_pretrained's torch_dtype= to dtype= (4.38 refuses dtype=, 5.x warns on torch_dtype=).
DTYPE_ARGUMENT = "dtype" if TRANSFORMERS_VERSION >= version.parse("4.56") else "torch_dtype"


def resumable():
    """A context in which the Trainer can read back its own checkpoint's RNG state.

    torch >= 2.6 loads with weights_only=True, and transformers before 4.4x does not allow the numpy arrays that
    rng_state.pth holds ("Unsupported global: numpy.core.multiarray._reconstruct"). Allow just those, as later
    transformers do; torch before 2.6 (the exam's 2.0) needs nothing.
    """
    import contextlib

    import numpy as np
    if not hasattr(torch.serialization, "safe_globals"):
        return contextlib.nullcontext()
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    return torch.serialization.safe_globals([multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))])


def choose_dtype(precision: str) -> torch.dtype:
    """bf16 where the GPU supports it, else fp32. Never fp16: Gemma's activations overflow it (NaN losses)."""
    if precision not in ("auto", "bf16", "fp32"):
        raise UserError(f"PRECISION={precision!r}: use auto, bf16 or fp32 (fp16 overflows in Gemma).")
    if precision == "auto":
        has_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if has_bf16 else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32


def check_model_folder(folder: Path, allow_pickle: bool) -> None:
    """Fail before transformers does, with a message that says which setting to change."""
    hint = "Set MODEL_PATH in config.py (or --model_path PATH) to the local gemma-2b folder."
    if not folder.exists():
        raise UserError(f"the model folder {folder} does not exist. {hint}")
    if not folder.is_dir():
        raise UserError(f"MODEL_PATH {folder} is a file, not a folder. {hint}")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has no config.json, so it is not a Hugging Face model folder. {hint}")
    try:
        model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except ValueError as e:   # bad JSON or bad UTF-8
        raise UserError(f"{folder / 'config.json'} cannot be read ({one_line(e)}): copy the model folder again. {hint}") from None
    if not isinstance(model_config, dict):
        raise UserError(f"{folder / 'config.json'} is not a JSON object: copy the model folder again. {hint}")
    if "auto_map" in model_config:
        raise UserError(
            f"{folder / 'config.json'} asks for custom code from the model folder (auto_map); this project never runs "
            f"such code (trust_remote_code stays off). Use the standard gemma-2b folder. {hint}"
        )
    architectures = model_config.get("architectures") or []
    if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise UserError(f"{folder} holds a {', '.join(map(str, architectures))}, not a causal language model "
                        f"(*ForCausalLM) like gemma-2b. {hint}")
    names = {p.name for p in folder.iterdir()}
    if not any(n.endswith(".safetensors") for n in names):
        has_bin = any(n.endswith(".bin") for n in names)
        if not has_bin:
            raise UserError(f"{folder} has no weights (*.safetensors). {hint}")
        if not allow_pickle:
            raise UserError(
                f"{folder} has only pickled *.bin weights, which can run code when loaded. Convert them to "
                f"safetensors, or set ALLOW_PICKLE = True (--allow_pickle) if you trust the files."
            )
    if not names & {"tokenizer.json", "tokenizer.model"}:
        raise UserError(f"{folder} has no tokenizer (tokenizer.json or tokenizer.model). {hint}")


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's text on one line, shortened: messages to the user stay one paragraph."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def load_tokenizer(folder: Path):
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - any failure here means the same thing to the user
        raise UserError(f"could not load the tokenizer from {folder} ({one_line(e)}): copy the model folder again, "
                        f"with tokenizer.model / tokenizer.json and tokenizer_config.json.") from None
    tokenizer.padding_side = "right"   # training batches pad on the right; scoring reads each row's last real token
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(settings: SimpleNamespace) -> Tuple[torch.nn.Module, object]:
    """The base causal LM and its tokenizer from MODEL_PATH, on the GPU when there is one."""
    folder = runtime.model_dir(settings).resolve()   # absolute: peft looks relative names up on the hub
    check_model_folder(folder, settings.ALLOW_PICKLE)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (ValueError, OSError, KeyError) as e:
        raise UserError(f"{folder / 'config.json'} is not a model configuration transformers "
                        f"{transformers.__version__} knows ({one_line(e)}). Point MODEL_PATH at the gemma-2b folder.") from None
    if config.model_type == "gemma" and not hasattr(config, "hidden_activation") and config.hidden_act == "gelu":
        # gemma-2b was trained with the tanh approximation of GELU. Its config.json says "gelu", which
        # transformers 4.38 takes as exact GELU; later releases read it as the approximation. Do as they do.
        config.hidden_act = "gelu_pytorch_tanh"
    dtype = choose_dtype(settings.PRECISION)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            # ALLOW_PICKLE: safetensors still first, .bin only where there are none (False would refuse safetensors)
            str(folder), config=config, local_files_only=True, use_safetensors=None if settings.ALLOW_PICKLE else True,
            trust_remote_code=False, **{DTYPE_ARGUMENT: dtype},
        )
    except torch.cuda.OutOfMemoryError:
        raise
    except ValueError as e:
        raise UserError(f"{folder} does not hold a causal language model that transformers can load: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - safetensors/OS errors: a damaged or incomplete copy
        raise UserError(f"the weights in {folder} cannot be loaded ({type(e).__name__}: {one_line(e)}); the copy may be "
                        f"incomplete or damaged: copy the model folder again.") from None
    body = getattr(model, "model", None)
    if TRANSFORMERS_VERSION < version.parse("4.39") and hasattr(body, "causal_mask"):
        # transformers 4.38 expands a max_position_embeddings-square mask (8192 x 8192 for gemma-2b) at every
        # forward pass, whatever the input length: ~30 % of a prediction's time and 0.5 GB of GPU memory per
        # batch (tools/bench.py). A mask as long as our longest sequence gives the same attention.
        size = settings.MAX_LENGTH + settings.MAX_NEW_TOKENS
        body.register_buffer("causal_mask", body.causal_mask[:size, :size].clone(), persistent=False)
    tokenizer = load_tokenizer(folder)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer


def adapter_files(folder: Path, allow_pickle: bool) -> None:
    """Refuse an adapter folder that is missing, empty, truncated or pickled, before peft sees it."""
    if not (folder / "adapter_config.json").is_file():
        raise UserError(
            f"no adapter in {folder} (adapter_config.json is missing). Train one first: python train.py "
            f"--data_set {folder.name}"
        )
    weights = folder / "adapter_model.safetensors"
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


def load_adapter(model, settings: SimpleNamespace, task_name: str):
    """base model + saved_model/<task>/, checked to belong to this task and this base model."""
    from peft import PeftModel

    folder = runtime.adapter_dir(settings, task_name)
    adapter_files(folder, settings.ALLOW_PICKLE)
    record_path = folder / "run_record.json"
    if record_path.is_file():
        trained_on = json.loads(record_path.read_text(encoding="utf-8")).get("data_set")
        if trained_on and trained_on != task_name:
            raise UserError(
                f"the adapter in {folder} was trained on {trained_on}, not {task_name}. Train one for "
                f"{task_name} (python train.py --data_set {task_name}) or predict with --data_set {trained_on}."
            )
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=False, config=known_lora_config(folder))
    except RuntimeError as e:
        if "size mismatch" in str(e):
            raise UserError(
                f"the adapter in {folder} was trained for a base model of another shape than {runtime.model_dir(settings)}: "
                f"use the base model it was trained on (see base_model_name_or_path in its adapter_config.json)."
            ) from None
        raise UserError(f"the adapter in {folder} cannot be loaded ({one_line(e)}); it may be truncated: train again.") from None
    except Exception as e:  # noqa: BLE001 - safetensors/json/peft errors all mean a broken adapter
        raise UserError(f"the adapter in {folder} cannot be loaded ({type(e).__name__}: {one_line(e)}); it may be truncated "
                        f"or damaged: train again (python train.py --data_set {task_name}) or copy it again.") from None


def known_lora_config(folder: Path):
    """The adapter's LoraConfig without the fields this peft does not know (a newer peft writes more), or None
    when there are none (peft then reads adapter_config.json itself). Unknown fields are named in a warning."""
    import dataclasses

    import peft

    path = folder / "adapter_config.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:   # bad JSON or bad UTF-8
        raise UserError(f"{path} cannot be read ({one_line(e)}): train again (python train.py --data_set "
                        f"{folder.name}) or copy the adapter folder again.") from None
    if not isinstance(saved, dict) or str(saved.get("peft_type", "")).upper() != "LORA":
        return None   # not ours to fix: peft explains
    known = {field.name for field in dataclasses.fields(peft.LoraConfig)}
    unknown = sorted(set(saved) - known)
    if not unknown:
        return None
    print(f"warning: {path} has fields peft {peft.__version__} does not know (written by a newer peft); loading "
          f"without them: {', '.join(f'{name}={saved[name]!r}' for name in unknown)}")
    return peft.LoraConfig(**{name: value for name, value in saved.items() if name in known})


# --- prompts as token ids ---------------------------------------------------------------------------

def label_token_ids(tokenizer) -> List[int]:
    """The token id of each label, as it follows the prompt ("0" and "1" are single tokens in Gemma)."""
    ids = []
    for label in LABELS:
        pieces = tokenizer(label, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise UserError(f"the tokenizer splits the label {label!r} into {len(pieces)} tokens; labels must be single tokens.")
        ids.append(pieces[0])
    return ids


def encode_prompt(tokenizer, instruction: str, input_text: str, max_tokens: int) -> Tuple[List[int], bool]:
    """BOS + prompt as token ids, at most max_tokens long, and whether the input had to be shortened.

    Only the input is ever cut: the instruction and the "### Response:" marker the answer follows stay whole.
    """
    head, text, tail = prompt_parts(instruction, input_text)
    ids = tokenizer(head + text + tail)["input_ids"]            # adds BOS; Gemma needs it
    if len(ids) <= max_tokens:
        return ids, False
    head_ids = tokenizer(head)["input_ids"]
    tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    room = max_tokens - len(head_ids) - len(tail_ids)
    if room < 1:
        raise UserError(f"MAX_LENGTH is too small: it leaves {max_tokens} tokens for the prompt, and the instruction and "
                        f"template alone take {len(head_ids) + len(tail_ids)}; raise --max_length (default 256).")
    text_ids = tokenizer(text, add_special_tokens=False)["input_ids"][:room]
    return head_ids + text_ids + tail_ids, True


def encode_example(tokenizer, example: dict, max_length: int, train_on_inputs: bool) -> dict:
    """Token ids of prompt + label + EOS, with the loss on the label and EOS only unless train_on_inputs."""
    answer = tokenizer(example["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt, truncated = encode_prompt(tokenizer, example["instruction"], example["input"], max_length - len(answer))
    input_ids = prompt + answer
    labels = list(input_ids) if train_on_inputs else [-100] * len(prompt) + answer
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels, "truncated": truncated}


# --- answers ----------------------------------------------------------------------------------------

def causal_lm_parts(model):
    """(transformer body, output layer) of a causal LM, looking through a peft wrapper (LoRA stays active)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()


@torch.no_grad()
def score_labels(model, prompts: Sequence[List[int]], label_ids: List[int], pad_id: int,
                 batch_size: int = 1) -> List[str]:
    """The likelier label after each prompt: one forward pass of the body, then the output layer's label rows only.

    Computing two rows of the 256k-row output layer at one position, instead of all rows at every
    position, gives the same argmax at a fraction of the cost (see tools/bench.py).
    """
    body, head = causal_lm_parts(model)
    device = next(model.parameters()).device
    rows = head.weight[label_ids]                         # (labels, hidden)
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        longest = max(len(p) for p in batch)
        input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, p in enumerate(batch):                     # right padding: positions match unpadded inference
            input_ids[i, :len(p)] = torch.tensor(p)
            attention_mask[i, :len(p)] = 1
        hidden = body(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).last_hidden_state
        last = attention_mask.sum(dim=1).to(device) - 1
        final = hidden[torch.arange(len(batch), device=device), last]          # (batch, hidden)
        scores = final @ rows.T
        answers += [LABELS[i] for i in scores.argmax(dim=-1).tolist()]
    return answers


@torch.no_grad()
def generate_answer(model, tokenizer, prompt: List[int], max_new_tokens: int) -> str:
    """Free greedy decoding of one prompt: the raw text the model writes (predict reads the label out of it)."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    output = model.generate(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
        do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True)


def decide(model, tokenizer, examples: Sequence[dict], max_length: int, decode: str = "labels",
           max_new_tokens: int = 5, batch_size: int = 1,
           progress: Optional[str] = None) -> Tuple[List[Optional[str]], List[str], int]:
    """Answers for examples: (labels or None, raw texts, how many inputs were shortened).

    decode="labels" compares the label tokens' scores (always a valid label); decode="generate" decodes
    freely and reads the label out of the text (None when the text is not a label).
    """
    from tqdm.auto import tqdm

    if decode not in ("labels", "generate"):
        raise UserError(f"DECODE={decode!r}: use labels or generate.")
    room = max_length - 2                                 # the label and EOS come after the prompt in training
    encoded = [encode_prompt(tokenizer, e["instruction"], e["input"], room) for e in examples]
    prompts = [ids for ids, _ in encoded]
    truncated = sum(cut for _, cut in encoded)
    model.eval()
    if decode == "labels":
        label_ids = label_token_ids(tokenizer)
        labels: List[Optional[str]] = []
        bar = tqdm(total=len(prompts), desc=progress, disable=progress is None)
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            labels += score_labels(model, chunk, label_ids, tokenizer.pad_token_id, batch_size=batch_size)
            bar.update(len(chunk))
        bar.close()
        return labels, list(labels), truncated
    texts = [generate_answer(model, tokenizer, p, max_new_tokens)
             for p in tqdm(prompts, desc=progress, disable=progress is None)]
    return [read_label(t) for t in texts], texts, truncated
