"""Every difference between the exam's stack (Python 3.9, torch 2.0.0, transformers 4.38.1, peft 0.10) and
today's releases that this project handles, in one place. Nothing outside this module compares versions.

Each entry names the release that brought the difference and, where there is one, the release that retires
it: once the oldest stack we support is past that release, the entry goes.
"""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable, Dict

import numpy as np
import torch
import transformers
from packaging.version import Version

TORCH = Version(torch.__version__.split("+")[0])
TRANSFORMERS = Version(transformers.__version__)


def transformers_at_least(release: str) -> bool:
    return TRANSFORMERS >= Version(release)


# transformers 4.56 renamed from_pretrained's torch_dtype= to dtype= (4.38 refuses dtype=, 5.x warns on torch_dtype=).
# Retired when the oldest stack is 4.56.
DTYPE_ARGUMENT = "dtype" if transformers_at_least("4.56") else "torch_dtype"

# The first transformers release that knows each model type a learner is likely to point MODEL_PATH at.
MODEL_TYPE_SINCE = {"gemma": "4.38", "gemma2": "4.42", "gemma3_text": "4.50", "gemma3": "4.50", "qwen2": "4.37",
                    "qwen3": "4.51", "llama": "4.28", "mistral": "4.34", "phi3": "4.40", "smollm3": "4.53"}


def checkpoint_loading() -> contextlib.AbstractContextManager:
    """A context in which the Trainer can read back its own checkpoint's RNG state.

    torch 2.6 loads with weights_only=True, and transformers before 4.4x does not allow the numpy arrays that
    rng_state.pth holds ("Unsupported global: numpy.core.multiarray._reconstruct"). Allow just those, as later
    transformers do. Nothing to do before torch 2.6 (the exam's 2.0).
    """
    if TORCH < Version("2.6"):
        return contextlib.nullcontext()
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray   # numpy 2 moved it
    return torch.serialization.safe_globals([multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))])


def gemma_activation(config) -> None:
    """gemma-2b was trained with the tanh form of GELU, and its config.json says "gelu". Up to 4.38.2 transformers
    runs whatever hidden_act says (exact GELU) and ignores hidden_activation even when the file has it; 4.39 reads
    hidden_activation and takes a missing one as the tanh form. Make the older releases do what 4.39 does.
    Retired when the oldest stack is 4.39."""
    if config.model_type != "gemma" or transformers_at_least("4.39"):
        return
    wanted = getattr(config, "hidden_activation", None) or "gelu_pytorch_tanh"
    config.hidden_act = wanted


def trim_causal_mask(model, size: int) -> None:
    """transformers 4.38 expands a max_position_embeddings-square mask (8192 x 8192 for gemma-2b) at every forward
    pass, whatever the input length: most of a short prompt's time and 0.5 GB of GPU memory a batch. A mask as
    long as our longest sequence gives the same attention. Retired by 4.39, which builds the mask per input."""
    body = getattr(model, "model", None)
    if transformers_at_least("4.39") or not hasattr(body, "causal_mask"):
        return
    body.register_buffer("causal_mask", body.causal_mask[:size, :size].clone(), persistent=False)


def _rotary_in_fp32(forward: Callable) -> Callable:
    @functools.wraps(forward)
    def exact_forward(self, x, *args, **kwargs):
        with torch.autocast(device_type=x.device.type, enabled=False):
            return forward(self, x, *args, **kwargs)
    exact_forward.computes_in_fp32 = True
    return exact_forward


def rotary_angles_in_fp32() -> None:
    """transformers 4.38.0/4.38.1 compute Gemma's and Llama's rotary angles (inv_freq @ position_ids) inside whatever
    autocast is active. Under bf16 autocast, which TrainingArguments(bf16=True) turns on for training and holdout
    evaluation, the angles are rounded to bf16: |cos error| up to 0.76 over 256 positions. predict.py, without
    autocast, saw exact angles, so the adapter was trained and chosen on other positions than it answered on.
    Compute them with autocast off, as 4.38.2 does. Retired when the oldest stack is 4.38.2."""
    if transformers_at_least("4.38.2"):
        return
    from transformers.models.gemma import modeling_gemma
    from transformers.models.llama import modeling_llama
    for rotary in (modeling_gemma.GemmaRotaryEmbedding, modeling_llama.LlamaRotaryEmbedding):
        if not getattr(rotary.forward, "computes_in_fp32", False):
            rotary.forward = _rotary_in_fp32(rotary.forward)


class CheckTheLastStep(transformers.TrainerCallback):
    """Check the holdout at the last optimiser step and save it, also where the step falls between two checks
    (500 steps, a check every 63: the last check would be step 441). transformers 5.4 does both itself (4.42 to 5.3
    save that step without checking it, so the best checkpoint cannot be it); 4.38.1, the exam's, does neither: the
    last eval_every - 1 steps, at the lowest learning rate, were trained and thrown away, as load_best_model_at_end
    went back to an earlier check. Where the library does it already, these flags are set twice, not acted on twice.
    Retired when the oldest stack is 5.4."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control


def training_argument_names(kwargs: Dict) -> Dict:
    """TrainingArguments' keyword arguments under the names this transformers uses."""
    fields = transformers.TrainingArguments.__dataclass_fields__
    kwargs = dict(kwargs)
    if "eval_strategy" in kwargs and not transformers_at_least("4.41"):   # 4.41 renamed evaluation_strategy
        kwargs["evaluation_strategy"] = kwargs.pop("eval_strategy")
    if "group_by_length" in kwargs and "train_sampling_strategy" in fields:   # 5.0 replaced group_by_length=True with a sampling strategy
        kwargs["train_sampling_strategy"] = "group_by_length" if kwargs.pop("group_by_length") else "random"
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),   # renamed in 5.x, old names warn
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        if old in kwargs and new in fields:
            kwargs[new] = kwargs.pop(old)
    return kwargs


# EXAM_POSITIONS_AS_SHIPPED=1 leaves 4.38.1's rotary angles as they are and predict without training's autocast,
# as this project ran before the fix: only to measure what the defect costs (docs/real_model.md).
POSITIONS_AS_SHIPPED = os.environ.get("EXAM_POSITIONS_AS_SHIPPED") == "1"
if not POSITIONS_AS_SHIPPED:
    rotary_angles_in_fp32()   # importing this module (modeling does) fixes the library for the whole process
