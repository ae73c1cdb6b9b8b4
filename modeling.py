"""What train, predict and the lab share: loading the model and adapter, prompts as token ids, and label scoring.

Written for both the exam's stack (torch 2.0.0, transformers 4.38.1, peft 0.10) and today's releases; where they
differ, versions.py says how.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

# Never reach for the hub: everything is local. Set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import warnings

import peft
import torch
import transformers
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

import adapters
import runtime
import versions
from runtime import UserError
from tasks import LABELS, build_prompt, decisions, prompt_parts, read_label

# peft asks the hub whether the base model's vocabulary changed each time it saves; offline it cannot, warns,
# and rightly assumes it did not (LoRA never touches the vocabulary). Nothing for the user to do: keep it quiet.
warnings.filterwarnings("ignore", message="Could not find a config file in")
# peft still reads the model's is_gradient_checkpointing, which transformers 5 renamed: nothing for the user to do.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def choose_dtype(precision: str) -> torch.dtype:
    """bf16 where the GPU supports it, else fp32. Never fp16: Gemma's activations overflow it (NaN losses)."""
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


def refuse_unknown_model_type(folder: Path) -> None:
    """One paragraph instead of a traceback when this transformers is too old for the model (Gemma 3 on 4.38.1)."""

    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    if not model_type or model_type in CONFIG_MAPPING_NAMES:
        return
    since = versions.MODEL_TYPE_SINCE.get(model_type)
    needs = f"transformers >= {since}" if since else "a newer transformers"
    raise UserError(
        f"{folder} holds a {model_type} model, which transformers {transformers.__version__} does not know: it needs "
        f"{needs} (the latest stack: bash tools/setup_env.sh latest). The exam's gemma-2b (model type gemma) loads on "
        f"the exam's transformers 4.38.1 as it is; keep MODEL_PATH pointing at it there."
    )


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


def load_base_model(settings: SimpleNamespace, before_weights: Optional[Callable[[Path], None]] = None
                    ) -> Tuple[torch.nn.Module, object]:
    """The base causal LM and its tokenizer from MODEL_PATH, on the GPU when there is one.

    before_weights(folder) runs once the folder, its model type and its tokenizer have passed their checks (whose
    messages say most about a broken folder), before the weights load: predict checks there that it is the model the
    adapter was trained on.
    """
    folder = runtime.model_dir(settings).resolve()   # absolute: peft looks relative names up on the hub
    check_model_folder(folder, settings.ALLOW_PICKLE)
    refuse_unknown_model_type(folder)
    tokenizer = load_tokenizer(folder)
    if before_weights is not None:
        before_weights(folder)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (ValueError, OSError, KeyError) as e:
        raise UserError(f"{folder / 'config.json'} is not a model configuration transformers "
                        f"{transformers.__version__} knows ({one_line(e)}). Point MODEL_PATH at the gemma-2b folder.") from None
    versions.gemma_activation(config)
    dtype = choose_dtype(settings.PRECISION)
    transformers.utils.logging.disable_progress_bar()   # a bar for a few seconds of loading; ours are the long steps
    try:
        model = AutoModelForCausalLM.from_pretrained(
            # ALLOW_PICKLE: safetensors still first, .bin only where there are none (False would refuse safetensors)
            str(folder), config=config, local_files_only=True, use_safetensors=None if settings.ALLOW_PICKLE else True,
            trust_remote_code=False, **{versions.DTYPE_ARGUMENT: dtype},
        )
    except torch.cuda.OutOfMemoryError:
        raise
    except ValueError as e:
        raise UserError(f"{folder} does not hold a causal language model that transformers can load: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - safetensors/OS errors: a damaged or incomplete copy
        raise UserError(f"the weights in {folder} cannot be loaded ({type(e).__name__}: {one_line(e)}); the copy may be "
                        f"incomplete or damaged: copy the model folder again.") from None
    versions.trim_causal_mask(model, settings.MAX_LENGTH + settings.MAX_NEW_TOKENS)
    if torch.cuda.is_available():
        model.to(device_of_this_process())
    return model, tokenizer


def device_of_this_process() -> torch.device:
    """This process's own GPU: under torchrun / accelerate launch each process has one (LOCAL_RANK), so no
    process puts a copy of the model on GPU 0 first. The CPU where there is no GPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(device)
    return device


def load_adapter(model, settings: SimpleNamespace, task_name: str):
    """base model + saved_model/<task>/, checked to belong to this task and this base model."""
    folder = runtime.adapter_dir(settings, task_name)
    adapters.require_loadable(folder, settings.ALLOW_PICKLE)
    trained_on = adapters.read_run_record(folder).get("data_set")
    if trained_on and trained_on != task_name:
        raise UserError(f"the adapter in {folder} was trained on {trained_on}, not {task_name}. Train one for "
                        f"{task_name} (python train.py --data_set {task_name}) or predict with --data_set {trained_on}.")
    try:
        adapted = PeftModel.from_pretrained(model, str(folder), is_trainable=False, config=known_lora_config(folder))
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
    broken = [name for name, p in adapted.named_parameters() if "lora_" in name and not torch.isfinite(p).all()]
    if broken:
        raise UserError(f"the adapter in {folder} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]}): "
                        f"its training diverged, and it would answer 0 to everything. Train again with a lower "
                        f"learning rate (--learning_rate).")
    return adapted


def known_lora_config(folder: Path):
    """The adapter's LoraConfig without the fields this peft does not know (a newer peft writes more), or None
    when there are none (peft then reads adapter_config.json itself). Unknown fields are named in a warning."""


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

def label_token_ids(tokenizer, words: Sequence[str] = LABELS) -> List[int]:
    """The token id of each answer word (LABEL_WORDS) as it follows the prompt: encode prompt + word, take the new token.

    Right for any tokenizer: Gemma's "0"/"1" are single tokens, but a tokenizer may merge the word with the
    newline before it, or split it; such a word is refused, since scoring needs one token per label.
    """
    prompt = build_prompt("Answer 1 or 0.", "an input")
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = []
    for word in words:
        with_word = tokenizer(prompt + word)["input_ids"]
        new = with_word[len(prompt_ids):]
        if with_word[:len(prompt_ids)] != prompt_ids or len(new) != 1:
            raise UserError(
                f"this model's tokenizer does not write the answer {word!r} as one token after the prompt (it gives "
                f"{len(new)} new token(s){'' if with_word[:len(prompt_ids)] == prompt_ids else ' and changes the prompt'}"
                f"); label scoring needs one token per label. Choose LABEL_WORDS it keeps whole (0,1 and no,yes are "
                f"single tokens for Gemma, Llama and Qwen2.5), e.g. --label_words 0,1.")
        ids.append(new[0])
    if ids[0] == ids[1]:
        raise UserError(f"LABEL_WORDS {words[0]!r} and {words[1]!r} are the same token for this tokenizer: choose two "
                        f"words it tells apart, e.g. --label_words 0,1.")
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


ANSWER_LENGTH = 2   # tokens of a training row's answer, always its last: the label and EOS (encode_example)


def encode_example(tokenizer, example: dict, max_length: int, label_prompt: bool, label_ids: List[int]) -> dict:
    """Token ids of prompt + label + EOS, with loss labels on the label and EOS only, or on every token with
    label_prompt (PROMPT_LOSS_WEIGHT > 0: prompt_weighted_loss then weighs them).

    label_ids: label_token_ids(tokenizer, LABEL_WORDS), so the answer is the very token that label scoring reads
    later; the example's output is the exam's label (0/1) and picks which.
    """
    answer = [label_ids[LABELS.index(example["output"])], tokenizer.eos_token_id]   # ANSWER_LENGTH tokens
    prompt, truncated = encode_prompt(tokenizer, example["instruction"], example["input"], max_length - ANSWER_LENGTH)
    input_ids = prompt + answer
    labels = list(input_ids) if label_prompt else [-100] * len(prompt) + answer
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels, "truncated": truncated}


# --- the output layer, only where it is needed ------------------------------------------------------

def unwrapped(model):
    """The causal LM inside DDP and peft wrappers (its LoRA layers stay in place and active)."""
    inner = getattr(model, "module", model)               # DistributedDataParallel under torchrun
    return inner.get_base_model() if hasattr(inner, "get_base_model") else inner


def causal_lm_parts(model):
    """(transformer body, output layer) of a causal LM, looking through DDP and peft wrappers."""
    inner = unwrapped(model)
    return inner.get_decoder(), inner.get_output_embeddings()


@contextlib.contextmanager
def output_layer_only_at(model, positions: torch.Tensor) -> Iterator[List[torch.Tensor]]:
    """Inside this context a forward pass of `model` applies its output layer only at `positions` (a bool mask,
    batch x sequence): its logits come back as (1, n, vocabulary) for the n chosen positions, row by row. The
    context yields a list that receives the (n, hidden) states at those positions, for label_scores.

    The transformer body runs as usual; a hook on it keeps the chosen hidden states only, so the model's own
    forward then applies its own output layer to them: its bias, final-logit soft-capping (Gemma 2) and LoRA on
    the output layer all count, and under torchrun the call still goes through DDP, which syncs the gradients.
    With a 256k-row vocabulary this is most of a training step's cost saved when only the answer has a loss.
    """
    kept: List[torch.Tensor] = []

    def keep_chosen(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
        kept.append(hidden[positions])
        if isinstance(output, tuple):
            return (kept[-1].unsqueeze(0),) + tuple(output[1:])
        output.last_hidden_state = kept[-1].unsqueeze(0)
        return output

    handle = causal_lm_parts(model)[0].register_forward_hook(keep_chosen)
    try:
        yield kept
    finally:
        handle.remove()


def autocast_as_in_training(model):
    """The autocast under which the Trainer trains and evaluates the holdout (bf16 for a bf16 base model, what
    TrainingArguments(bf16=True) turns on): scoring under the same one gives predict the very numbers by which
    the best checkpoint was chosen. None for an fp32 model."""
    weight = causal_lm_parts(model)[1].weight
    if weight.dtype != torch.bfloat16 or versions.POSITIONS_AS_SHIPPED:
        return contextlib.nullcontext()
    return torch.autocast(device_type=weight.device.type, dtype=torch.bfloat16)


def label_scores(model, hidden: torch.Tensor, label_ids: List[int]) -> torch.Tensor:
    """(n, labels) logits of the label tokens, computed in fp32 with autocast off from (n, hidden) states.

    In bf16 a logit keeps 8 bits: two label logits near 10 that differ by less than 0.06 round to one value, and
    the tie then always answers the first label. The two rows of the output layer in fp32 cost nothing.
    """
    inner = unwrapped(model)
    output_layer = inner.get_output_embeddings()
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        scores = hidden.float() @ output_layer.weight[label_ids].float().T
        if getattr(output_layer, "bias", None) is not None:
            scores = scores + output_layer.bias[label_ids].float()
        softcap = getattr(inner.config, "final_logit_softcapping", None)   # Gemma 2
        if softcap:
            scores = torch.tanh(scores / softcap) * softcap
    return scores


def score_labels(model, prompts: Sequence[List[int]], label_ids: List[int], pad_id: int,
                 batch_size: int = 1) -> List[str]:
    """The likelier label after each prompt: the body over the prompt, the output layer at its last position only."""
    return decisions(label_margins(model, prompts, label_ids, pad_id, batch_size))


def label_margins(model, prompts: Sequence[List[int]], label_ids: List[int], pad_id: int,
                  batch_size: int = 1) -> List[float]:
    """Label 1's logit less label 0's after each prompt: above 0 the model prefers 1."""
    scores = label_logits(model, prompts, label_ids, pad_id, batch_size)
    return (scores[:, 1] - scores[:, 0]).tolist()


@torch.no_grad()
def label_logits(model, prompts: Sequence[List[int]], label_ids: List[int], pad_id: int,
                 batch_size: int = 1) -> torch.Tensor:
    """(prompts, labels) float32 logits of each label token right after each prompt (the lab calibrates them),
    computed as the Trainer's holdout evaluation computes them (label_scores, under autocast_as_in_training)."""
    device = next(model.parameters()).device
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        longest = max(len(p) for p in batch)
        input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, p in enumerate(batch):                     # right padding: positions match unpadded inference
            input_ids[i, :len(p)] = torch.tensor(p)
            attention_mask[i, :len(p)] = 1
        last = torch.zeros_like(attention_mask, dtype=torch.bool)
        last[torch.arange(len(batch)), attention_mask.sum(dim=1) - 1] = True
        with output_layer_only_at(model, last.to(device)) as kept, autocast_as_in_training(model):
            model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=False)
        answers.append(label_scores(model, kept[-1], label_ids).cpu())
    return torch.cat(answers)


@torch.no_grad()
def generate_answer(model, tokenizer, prompt: List[int], max_new_tokens: int) -> str:
    """Free greedy decoding of one prompt: the raw text the model writes (predict reads the label out of it)."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    with contiguous_output_layer_input(model), autocast_as_in_training(model):
        output = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True)


def answer_examples(model, tokenizer, examples: Sequence[dict], max_length: int, decode: str = "labels",
           max_new_tokens: int = 5, batch_size: int = 1, progress: Optional[str] = None,
           words: Sequence[str] = LABELS, threshold: float = 0.0) -> Tuple[List[Optional[str]], list, int]:
    """Answers for examples: (labels "0"/"1" or None, raw outputs, how many inputs were shortened).

    decode="labels" answers 1 where label 1's logit beats label 0's by more than threshold (always a valid label;
    the raw outputs are those margins); decode="generate" decodes freely and reads the label out of the text (None
    when the text is not a label; the raw outputs are the texts). words: LABEL_WORDS.
    """

    room = max_length - ANSWER_LENGTH                     # the label and EOS come after the prompt in training
    encoded = [encode_prompt(tokenizer, e["instruction"], e["input"], room) for e in examples]
    prompts = [ids for ids, _ in encoded]
    truncated = sum(cut for _, cut in encoded)
    model.eval()
    if decode == "labels":
        label_ids = label_token_ids(tokenizer, words)
        margins: List[float] = []
        bar = tqdm(total=len(prompts), desc=progress, disable=progress is None)
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            margins += label_margins(model, chunk, label_ids, tokenizer.pad_token_id, batch_size=batch_size)
            bar.update(len(chunk))
        bar.close()
        return list(decisions(margins, threshold)), margins, truncated
    texts = [generate_answer(model, tokenizer, p, max_new_tokens)
             for p in tqdm(prompts, desc=progress, disable=progress is None)]
    return [read_label(t, words) for t in texts], texts, truncated


@contextlib.contextmanager
def contiguous_output_layer_input(model) -> Iterator[None]:
    """Inside this context the output layer gets a fresh copy of its input.

    generate() hands it the last position as a view whose strides still span the whole prompt. For such an input and
    a weight that needs no gradient (peft freezes it), torch's matmul copies the whole transposed output layer on
    every call: with Gemma 3 270M on torch 2.13's CPU that copy took 2.8 s of a 3 s decoding step (0.3 s without).
    """
    def fresh_input(module, args):
        return (args[0].clone(memory_format=torch.contiguous_format),) + args[1:]

    handle = causal_lm_parts(model)[1].register_forward_pre_hook(fresh_input)
    try:
        yield
    finally:
        handle.remove()
