"""Each step checks its inputs against what made them: predict refuses pre_data built with another instruction, another
base model or tokenizer, a dev TSV changed after data_process, and an adapter with NaN weights (which grade.py also
marks); train.py --resume refuses settings the checkpoints were not made with."""
from __future__ import annotations

import json
import shutil
import struct

import pytest

import adapters
import runtime
from conftest import run_script
from tiny_gemma import TINY_TRAINING


@pytest.fixture
def trained(tmp_path, tiny_gemma, synthetic_data, outputs):
    """A copy of the exam data and the tiny model, pre_data and a briefly trained adapter: (where, data, model)."""
    data, model = tmp_path / "data", tmp_path / "model"
    shutil.copytree(synthetic_data / "data", data)
    shutil.copytree(tiny_gemma, model)
    where = outputs + ["--data_dir", str(data), "--model_path", str(model), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "100", "--holdout_size", "20")
    run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "2", "--restarts", "0")
    return where, data, model


def refused(where, *more) -> str:
    done = run_script("predict.py", *where, *more, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.stderr


def test_pre_data_rebuilt_with_another_instruction_is_refused(trained):
    where, _, _ = trained
    run_script("data_process.py", *where, "--max_samples", "100", "--holdout_size", "20", "--instruction",
               "Is this sentence fine? Answer 1 or 0.")
    assert "rebuilt with another instruction" in refused(where)


def test_another_base_model_or_tokenizer_is_refused(trained):
    where, _, model = trained
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(dict(config, rms_norm_eps=1e-5)))
    assert "is not the base model" in refused(where) and "config.json" in refused(where)


def test_a_dev_file_changed_after_data_process_is_refused(trained):
    where, data, _ = trained
    dev = data / "CoLA_dev.tsv"
    dev.write_text(dev.read_text().replace("\n", "\nextra line\tnew\n", 1))
    assert "changed after data_process read it" in refused(where)


def test_an_adapter_with_nan_weights_is_refused_by_predict_and_costs_its_points_in_grade(trained, tmp_path):
    where, _, _ = trained
    weights = tmp_path / "saved_model" / "CoLA" / "adapter_model.safetensors"
    header = adapters.read_safetensors_header(weights)
    name = next(n for n in header if "lora_B" in n)
    raw = bytearray(weights.read_bytes())
    start = header["__data_start__"] + header[name]["data_offsets"][0]
    raw[start:start + 4] = struct.pack("<f", float("nan"))
    weights.write_bytes(bytes(raw))
    assert "NaN or infinite weights" in refused(where)
    reasons, _ = adapters.problems(runtime.adapter_dir(runtime.load_settings(where), "CoLA"), "CoLA")
    assert any("NaN or infinite" in r for r in reasons), reasons


def test_resume_with_other_settings_is_refused_and_with_the_same_goes_on(trained):
    where, _, _ = trained
    done = run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "2", "--restarts", "0", "--lora_r", "4",
                      "--resume", check=False)
    assert done.returncode == 2 and "made with other settings (LORA_R 8 -> 4)" in done.stderr, done.stderr[-1500:]
    again = run_script("train.py", *where, *TINY_TRAINING, "--max_steps", "4", "--restarts", "0", "--resume", check=False)
    assert "made with other settings (MAX_STEPS 2 -> 4)" in again.stderr
