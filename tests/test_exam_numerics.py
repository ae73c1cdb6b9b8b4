"""The numerics the exam's stack (torch 2.0.0, transformers 4.38.1) gets wrong unless versions.py corrects them,
checked on whatever stack runs the suite: rotary angles under bf16 autocast, Gemma's GELU, label scores that tie
in bf16, several GPUs without torchrun, and the holdout accuracy training records against predict.py's."""
from __future__ import annotations

import json

import pytest

from conftest import run_script
from tiny_gemma import TINY_TRAINING

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from tools.gpu_check import gelu_form, rotary_error_under_autocast  # noqa: E402


@pytest.mark.parametrize("family", ["gemma", "llama"])
def test_rotary_angles_under_bf16_autocast_are_the_angles_without_it(family):
    """Training runs under bf16 autocast (TrainingArguments(bf16=True)), predict without: both must see one set
    of positions. transformers 4.38.1 rounds the angles to bf16 under autocast (|cos error| up to 0.76)."""
    import modeling  # noqa: F401 - importing it applies versions.py's corrections, as train and predict do

    shape = dict(vocab_size=64, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                 num_key_value_heads=1, max_position_embeddings=512)
    config = (transformers.GemmaConfig(head_dim=16, **shape) if family == "gemma"
              else transformers.LlamaConfig(**shape))
    model_class = transformers.GemmaForCausalLM if family == "gemma" else transformers.LlamaForCausalLM
    error = rotary_error_under_autocast(model_class(config), "cpu")
    assert error == 0.0, f"max |cos error| under bf16 autocast: {error:.3f}"


@pytest.mark.parametrize("hidden_activation", [None, "gelu_pytorch_tanh"])
def test_gemma_runs_the_tanh_gelu_it_was_trained_with_whatever_its_config_carries(tmp_path, tiny_gemma,
                                                                                  hidden_activation):
    """gemma-2b's config.json says hidden_act "gelu"; re-saved copies also carry hidden_activation. Up to 4.38.2
    transformers runs hidden_act as written (exact GELU) and ignores hidden_activation."""
    import shutil

    import modeling
    import runtime

    folder = tmp_path / "gemma"
    shutil.copytree(tiny_gemma, folder)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_act"] = "gelu"
    config.pop("hidden_activation", None)
    if hidden_activation:
        config["hidden_activation"] = hidden_activation
    (folder / "config.json").write_text(json.dumps(config))
    settings = runtime.load_settings(["--model_path", str(folder), "--precision", "fp32"])
    model, _ = modeling.load_base_model(settings)
    assert gelu_form(model) == "tanh"


def test_label_scores_that_round_to_one_bf16_value_are_still_told_apart(tiny_gemma):
    """Two label logits near 8 that differ by 0.01 are one bf16 value (its step there is 0.06): compared in bf16
    they tie and the tie answers the first label. In fp32 the larger one wins."""
    import modeling
    import runtime
    from tasks import LABELS

    settings = runtime.load_settings(["--model_path", str(tiny_gemma), "--precision", "bf16"])
    model, tokenizer = modeling.load_base_model(settings)
    label_ids = modeling.label_token_ids(tokenizer)
    prompt = [i for i in tokenizer("the cat sat on a mat")["input_ids"] if i not in label_ids]
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([prompt])).last_hidden_state[0, -1].float()
        j = int(hidden.abs().argmax())
        row = torch.sign(hidden) * 0.25
        row[j] = 0.0
        row *= 8.0 / float(hidden @ row)                          # label 0's logit: about 8
        row = row.to(torch.bfloat16)
        nudge = torch.tensor(0.01 / float(hidden[j])).to(torch.bfloat16)   # label 1's: 0.01 above it
        weight = modeling.causal_lm_parts(model)[1].weight
        weight[label_ids[0]] = row
        weight[label_ids[1]] = row
        weight[label_ids[1], j] = nudge
        full = model(input_ids=torch.tensor([prompt])).logits[0, -1, label_ids]
    assert full[0] == full[1], "the two bf16 logits were meant to tie"
    assert modeling.score_labels(model, [prompt], label_ids, tokenizer.pad_token_id) == [LABELS[1]]


def test_several_gpus_without_torchrun_are_refused_before_the_model_loads(monkeypatch):
    """The Trainer would wrap the model in nn.DataParallel, whose replicas each get the whole batch's position
    mask from the output-layer hook: a crash at step 1. One paragraph instead, with the two ways out."""
    import train
    from runtime import UserError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match="torchrun --nproc_per_node 2 train.py.*CUDA_VISIBLE_DEVICES=0"):
        train.refuse_data_parallel()
    monkeypatch.setenv("WORLD_SIZE", "2")
    train.refuse_data_parallel()   # under torchrun each process has its own GPU: fine


def test_bf16_training_records_the_holdout_accuracy_predict_reproduces(tmp_path, tiny_gemma, synthetic_data, outputs):
    """In bf16 the Trainer scores the holdout under autocast; predict.py --split val must score it the same way,
    with the same rotary angles, or the best checkpoint is chosen by numbers predict never sees."""
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
                       "--data_set", "CoLA", "--precision", "bf16"]
    run_script("data_process.py", *where, "--max_samples", "400", "--holdout_size", "100")
    # Few steps: a model halfway through learning has many close calls, where any difference in numerics shows.
    run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "30")
    record = json.loads((tmp_path / "saved_model" / "CoLA" / "run_record.json").read_text())
    val = run_script("predict.py", *where, "--split", "val").stdout
    assert f"= {100 * record['holdout_accuracy']:.2f} %" in val, (record["holdout_accuracy"], val[-600:])
    final = val[val.index("predict: holdout"):]   # the decision predict answers with: the threshold applied
    assert f"= {100 * record['tuned_holdout_accuracy']:.2f} %" in final, (record["tuned_holdout_accuracy"], final)


def test_the_gpu_check_dry_runs_on_a_cpu():
    """tools/gpu_check.py is meant for a GPU; its dry run takes every step with a 2-layer model on the CPU."""
    checked = run_script("tools/gpu_check.py", "--dry_run")
    assert "5/5 checks passed (dry run" in checked.stdout, checked.stdout[-2000:]
