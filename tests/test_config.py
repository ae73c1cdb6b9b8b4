"""Settings: config.py's values, command-line overrides and where relative paths point. No torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
import runtime
from conftest import ROOT, run_script
from runtime import UserError, load_settings


def test_the_contract_names_exist_with_their_documented_defaults():
    settings = load_settings([])
    assert settings.DATA_SET == "CoLA" and settings.MAX_SAMPLES == 4000 and settings.PREDICT_COUNT == 150
    assert settings.MAX_STEPS == -1 and isinstance(settings.EPOCHS, int) and isinstance(settings.SEED, int)
    for name in ("DATA_DIR", "MODEL_PATH", "ANSWER_DIR"):
        assert isinstance(getattr(settings, name), str)
    assert settings.OVERRIDDEN == set()
    assert {name for name in vars(settings) if name != "OVERRIDDEN"} == {n for n in vars(config) if n.isupper()}


def test_settings_are_read_from_config_at_each_call(monkeypatch):
    monkeypatch.setattr(config, "MAX_SAMPLES", 123)   # what editing config.py does
    assert load_settings([]).MAX_SAMPLES == 123


@pytest.mark.parametrize("argv", [["--max_samples", "2000"], ["--max_samples=2000"], ["--MAX_SAMPLES", "2000"],
                                  ["--max-samples", "2000"]])
def test_name_value_forms(argv):
    settings = load_settings(argv)
    assert settings.MAX_SAMPLES == 2000 and type(settings.MAX_SAMPLES) is int
    assert settings.OVERRIDDEN == {"MAX_SAMPLES"}


def test_several_overrides_and_negative_numbers():
    settings = load_settings(["--max_steps", "-1", "--epochs=3", "--max_samples", "-5", "--data_dir", "/x/y"])
    assert (settings.MAX_STEPS, settings.EPOCHS, settings.MAX_SAMPLES, settings.DATA_DIR) == (-1, 3, -5, "/x/y")
    assert settings.OVERRIDDEN == {"MAX_STEPS", "EPOCHS", "MAX_SAMPLES", "DATA_DIR"}


def test_split_on_the_first_equals_sign_only():
    assert load_settings(["--lora_targets=a=b"]).LORA_TARGETS == "a=b"
    assert load_settings(["--lora_targets==q"]).LORA_TARGETS == "=q"
    assert load_settings(["--data_dir="]).DATA_DIR == ""


def test_bare_flag_sets_a_boolean_true():
    assert load_settings(["--balanced"]).BALANCED is True
    settings = load_settings(["--resume", "--balanced", "--max_samples", "5"])
    assert settings.RESUME is True and settings.BALANCED is True and settings.MAX_SAMPLES == 5


@pytest.mark.parametrize("text, value", [("false", False), ("False", False), ("0", False), ("no", False),
                                         ("off", False), ("true", True), ("1", True), ("yes", True), ("ON", True)])
def test_boolean_with_a_value(text, value):
    assert load_settings(["--balanced", text]).BALANCED is value
    assert load_settings([f"--balanced={text}"]).BALANCED is value


def test_boolean_with_a_bad_value():
    with pytest.raises(UserError, match="takes true or false"):
        load_settings(["--balanced", "maybe"])


def test_int_where_a_float_is_expected():
    settings = load_settings(["--lora_alpha", "1", "--lora_dropout=0"])
    assert settings.LORA_ALPHA == 1 and load_settings(["--weight_decay", "1"]).WEIGHT_DECAY == 1.0
    assert type(load_settings(["--weight_decay", "1"]).WEIGHT_DECAY) is float
    assert settings.LORA_DROPOUT == 0.0 and type(settings.LORA_DROPOUT) is float
    assert load_settings(["--learning_rate", "3e-5"]).LEARNING_RATE == 3e-5


@pytest.mark.parametrize("argv, message", [
    (["--max_samples", "2.5"], "takes a whole number"),
    (["--max_samples", "lots"], "takes a whole number"),
    (["--learning_rate", "fast"], "takes a number"),
    (["--max_samples"], "needs a value"),
    (["--max_samples", "--balanced"], "needs a value"),
    (["max_samples", "5"], "unexpected argument"),
])
def test_bad_values_are_user_errors(argv, message):
    with pytest.raises(UserError, match=message):
        load_settings(argv)


def test_unknown_name_lists_valid_names_and_suggests_one():
    with pytest.raises(UserError) as error:
        load_settings(["--lerning_rate", "1e-4"])
    message = str(error.value)
    assert "unknown setting --lerning_rate" in message and "Did you mean --learning_rate?" in message
    assert "Valid settings: " + ", ".join(n.lower() for n in vars(config) if n.isupper()) + "." in message


def test_unknown_name_without_a_close_one():
    with pytest.raises(UserError) as error:
        load_settings(["--zzzzzz"])
    assert "Did you mean" not in str(error.value) and "Valid settings:" in str(error.value)


@pytest.mark.parametrize("given, name", [("cola", "CoLA"), ("COLA", "CoLA"), ("qqp", "QQP"), ("QQP", "QQP"),
                                         ("sst-2", "SST-2")])
def test_data_set_is_normalised(given, name):
    assert load_settings(["--data_set", given]).DATA_SET == name
    assert load_settings([f"--data_set={given}"]).DATA_SET == name


def test_unknown_data_set_is_a_user_error_with_a_suggestion():
    with pytest.raises(UserError) as error:
        load_settings(["--data_set", "qqpp"])
    assert "DATA_SET" in str(error.value) and "Did you mean QQP?" in str(error.value)


def test_help_in_process_exits_zero_and_lists_settings(capsys):
    with pytest.raises(SystemExit) as leave:
        load_settings(["--data_set", "QQP", "--help"], doc="\n    Does things.\n")
    assert leave.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Does things.") and "--max_samples" in out and "4000" in out


@pytest.mark.parametrize("script", ["data_process.py", "grade.py", "train.py", "predict.py"])
def test_help_on_the_command_line(script):
    result = run_script(script, "--help", timeout=120)
    assert result.returncode == 0
    assert f"python {script}" in result.stdout   # the script's own docstring first
    for name in ("--data_set", "--data_dir", "--model_path", "--max_samples", "--predict_count", "--seed"):
        assert name in result.stdout


def test_user_errors_on_the_command_line_are_one_paragraph_exit_2():
    result = run_script("grade.py", "--no_such_setting", "1", check=False)
    assert result.returncode == 2
    assert "grade.py: error: unknown setting --no_such_setting" in result.stderr and "Traceback" not in result.stderr


# --- paths -----------------------------------------------------------------------------------------------

def test_relative_paths_are_taken_from_the_project_whatever_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runtime.project_path("pre_data") == ROOT / "pre_data"
    assert runtime.project_path("a/b") == ROOT / "a" / "b"
    assert runtime.project_path(str(tmp_path / "x")) == tmp_path / "x"
    assert runtime.project_path("~/x") == Path.home() / "x"
    settings = load_settings(["--data_set", "qqp"])
    assert runtime.pre_data_file(settings, "QQP", "dev") == ROOT / "pre_data" / "QQP" / "QQP_dev.json"
    assert runtime.adapter_dir(settings, "QQP") == ROOT / "saved_model" / "QQP"
    assert runtime.result_file(settings, "QQP") == ROOT / "questionB" / "result_QQP.txt"


def test_default_data_and_model_folders():
    settings = load_settings([])
    local_data, local_model = ROOT / "data" / "questionBData", ROOT / "models" / "gemma-2b"
    assert runtime.model_dir(settings) == (local_model if local_model.is_dir() else runtime.EXAM_MODEL_DIR)
    assert str(runtime.EXAM_DATA_DIR) == "/home/aiservice/worksapce/data/questionBData"
    expected = local_data if local_data.is_dir() else runtime.EXAM_DATA_DIR
    if expected.is_dir():
        assert runtime.data_dir(settings) == expected
    else:
        with pytest.raises(UserError, match="DATA_DIR"):
            runtime.data_dir(settings)


def test_missing_data_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        runtime.data_dir(load_settings(["--data_dir", str(tmp_path / "nowhere")]))


def test_script_run_from_another_cwd_puts_relative_outputs_under_the_project(tmp_path, synthetic_data):
    """Relative settings name places under the project, not under the working directory.

    The relative path climbs out of the project into tmp_path, so nothing is written into the project: from the
    project it lands in tmp_path/out, from the working directory (tmp_path/elsewhere) it would land somewhere else.
    """
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    relative_out = os.path.relpath(tmp_path / "out", ROOT)
    relative_data = os.path.relpath(synthetic_data / "data", ROOT)
    result = subprocess.run(
        [sys.executable, str(ROOT / "data_process.py"), "--data_dir", relative_data, "--pre_data_dir", relative_out,
         "--data_set", "CoLA", "--max_samples", "50", "--holdout_size", "10"],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "out" / "CoLA" / "CoLA_train.json").read_text(encoding="utf-8"))
    assert len(written) == 50
    assert list(cwd.iterdir()) == []


def test_data_process_and_grade_run_where_torch_cannot_be_imported(tmp_path, synthetic_data, outputs, monkeypatch):
    """The light steps never load torch: they start in a second, and run on a machine that has only Python."""
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker.parent))
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--answer_dir", str(synthetic_data / "answers"),
                       "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "100", "--holdout_size", "20")
    graded = run_script("grade.py", *where, "--json", check=False)
    assert "torch" not in graded.stderr, graded.stderr[-2000:]
    assert json.loads(graded.stdout)["data_sets"][0]["pre_data"]["points"] == 10


@pytest.mark.parametrize("argv, needle", [
    (["--learning_rate", "-1e-4"], "LEARNING_RATE=-0.0001 cannot work: use a positive number"),
    (["--epochs", "0"], "EPOCHS=0 with MAX_STEPS -1 trains nothing"),
    (["--lr_scheduler", "cosine_annealing"], "LR_SCHEDULER='cosine_annealing' cannot work: use one of linear, cosine"),
    (["--logging_steps", "0"], "LOGGING_STEPS=0 cannot work"),
    (["--seed", "-1"], "SEED=-1 cannot work"),
    (["--max_new_tokens", "0"], "MAX_NEW_TOKENS=0 cannot work"),
    (["--lora_r", "0"], "LORA_R=0 cannot work: use a rank of 1 or more"),
    (["--predict_count", "0"], "PREDICT_COUNT=0 cannot work"),
    (["--precision", "fp16"], "PRECISION='fp16' cannot work: use auto, bf16 or fp32"),
    (["--split", "test"], "SPLIT='test' cannot work"),
    (["--lora_dropout", "1"], "LORA_DROPOUT=1.0 cannot work"),
    (["--restart_lr_factor", "0"], "RESTART_LR_FACTOR=0.0 cannot work"),
])
def test_every_setting_is_checked_before_any_work(argv, needle):
    with pytest.raises(UserError) as refused:
        load_settings(argv)
    message = str(refused.value)
    assert needle in message and "\n" not in message, message


def test_a_refused_setting_leaves_a_good_result_file_alone(tmp_path, outputs):
    """PREDICT_COUNT 0 used to replace a 150-line result file with an empty one; it now stops before any file."""
    result = tmp_path / "questionB" / "result_CoLA.txt"
    result.parent.mkdir(parents=True)
    result.write_text("1\n" * 150)
    refused = run_script("predict.py", *outputs, "--data_set", "CoLA", "--predict_count", "0", check=False)
    assert refused.returncode == 2 and "PREDICT_COUNT=0 cannot work" in refused.stderr
    assert result.read_text() == "1\n" * 150
