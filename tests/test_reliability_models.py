"""Issue 3, cases 7 (long inputs), 9-16: models, adapters and faults, on the tiny Gemma.

One module-scoped run (data_process -> train -> predict, with some very long inputs) gives a good adapter
and a good result file; each test copies them, provokes its failure, and checks the message, the exit
code, and that the adapter and result file are byte-identical afterwards. Every script run as a subprocess
has the hub unreachable and every connection refused and recorded (tests/_reliability.py); in-process runs
refuse connections the same way.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from _reliability import ROOT, Started, assert_unchanged, error_message, run, snapshot

pytest.importorskip("torch")
pytest.importorskip("peft")

# Short training, with a checkpoint (and a holdout check) every 6 steps: 6, 12, 18, 24.
TRAIN = ["--data_set", "CoLA", "--learning_rate", "1e-2", "--batch_size", "4", "--grad_accum", "1", "--max_steps", "24",
         "--evals_per_epoch", "4", "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0", "--warmup_ratio", "0",
         "--logging_steps", "4"]
LONG = "The cat gladly " + " ".join(["read the old book again and"] * 120) + " left."   # far beyond MAX_LENGTH=256
INTERRUPTED = "interrupted; files already written are complete, nothing is half-written."


def places(out: Path, model: Path) -> list:
    return ["--model_path", str(model), "--pre_data_dir", str(out / "pre_data"), "--saved_model_dir",
            str(out / "saved_model"), "--result_dir", str(out / "questionB"), "--checkpoint_dir", str(out / "checkpoints")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_data, tiny_gemma):
    """A good run: pre_data for CoLA and QQP, a CoLA adapter, and questionB/result_CoLA.txt."""
    base = tmp_path_factory.mktemp("reliability-run")
    data = base / "data"
    shutil.copytree(synthetic_data / "data", data)
    with open(data / "CoLA_train.tsv", "a", encoding="utf-8") as f:
        f.writelines(f"long{i}\t1\t\t{LONG} ({i})\n" for i in range(6))   # six texts: copies of a holdout text stay out
    dev = (data / "CoLA_dev.tsv").read_text(encoding="utf-8").splitlines()
    for i in (1, 4):
        dev[i] = f"syn_dev\t\t\t{LONG}"
    (data / "CoLA_dev.tsv").write_text("\n".join(dev) + "\n", encoding="utf-8")
    out = base / "out"
    where = places(out, tiny_gemma)
    assert run("data_process.py", *where, "--data_dir", str(data), "--holdout_size", "24").returncode == 0
    training = run("train.py", *where, *TRAIN)
    assert training.returncode == 0, training
    predicting = run("predict.py", *where, "--data_set", "CoLA")
    assert predicting.returncode == 0, predicting
    result = out / "questionB" / "result_CoLA.txt"
    assert len(result.read_text().splitlines()) == 150
    return SimpleNamespace(out=out, model=tiny_gemma, train=training, predict=predicting, result=result.read_bytes(),
                           answers=synthetic_data / "answers")


@pytest.fixture
def work(tmp_path, trained):
    """A private copy of the good run's outputs (without its checkpoints), with a snapshot to compare against."""
    out = tmp_path / "out"
    shutil.copytree(trained.out, out, ignore=shutil.ignore_patterns("checkpoints"))
    return SimpleNamespace(out=out, where=places(out, trained.model), adapter=out / "saved_model" / "CoLA",
                           result=out / "questionB" / "result_CoLA.txt", model=trained.model,
                           adapter_before=snapshot(out / "saved_model"), result_before=snapshot(out / "questionB"),
                           adapter_files=snapshot(out / "saved_model" / "CoLA"))


def intact(work) -> None:
    """The adapter and the result file of the good run are still there, byte for byte, and no lock is left."""
    assert_unchanged(work.out / "saved_model", work.adapter_before)
    assert_unchanged(work.out / "questionB", work.result_before)


@pytest.fixture
def background(tmp_path):
    """Start scripts in the background; any still running when the test ends is killed (by its own pid)."""
    started = []

    def start(script: str, *args: str) -> Started:
        started.append(Started(script, *args, folder=tmp_path / "logs"))
        return started[-1]

    yield start
    for run_ in started:
        if run_.process.poll() is None:
            run_.process.kill()
            run_.process.wait()
        run_.log.unlink(missing_ok=True)


@pytest.fixture
def no_network(monkeypatch):
    """In-process: every connection and name lookup is refused and recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access refused by the reliability tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


@pytest.fixture
def cli(monkeypatch, capsys, no_network):
    """Run a script's main in-process exactly as its command line does (runtime.run); (exit code, stdout, stderr)."""
    import torch

    import runtime
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the CPU is shared: oversubscribed threads make the tiny model far slower

    def call(script: str, *args: str):
        module = __import__(script[:-3])
        monkeypatch.setattr(sys, "argv", [str(ROOT / script), *args])
        before = signal.getsignal(signal.SIGTERM)
        try:
            runtime.run(module.main, module.__doc__)
            code = 0
        except SystemExit as e:
            code = e.code
        finally:
            signal.signal(signal.SIGTERM, before)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield call
    torch.set_num_threads(threads)


def in_process_error(result, script: str, *needles: str) -> str:
    code, out, err = result
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in err
    message = err.rsplit(f"{script}: error: ", 1)[1].strip()
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    return message


# --- 7. long inputs: never the answer marker or the label is cut; the count is reported -----------------

def test_train_and_predict_report_how_many_inputs_were_shortened(trained):
    examples = json.loads((trained.out / "pre_data" / "CoLA" / "CoLA_train.json").read_text())
    long_ones = sum(len(e["input"]) > 1000 for e in examples)   # those not drawn for the holdout
    assert long_ones >= 1
    assert f"({long_ones} shortened to MAX_LENGTH=256)" in trained.train.stdout
    assert "2 inputs were longer than MAX_LENGTH=256 tokens and were shortened" in trained.predict.stdout


@pytest.mark.parametrize("max_length", [160, 256])
def test_truncation_keeps_the_response_marker_and_the_label(tiny_gemma, max_length):
    import modeling
    from tasks import TASKS, build_prompt
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    task = TASKS["CoLA"]
    encoded = modeling.encode_example(tokenizer, {"instruction": task.instruction, "input": LONG, "output": "1"},
                                      max_length, label_prompt=False, label_ids=modeling.label_token_ids(tokenizer))
    ids = encoded["input_ids"]
    assert encoded["truncated"] and len(ids) == max_length
    label = tokenizer("1", add_special_tokens=False)["input_ids"]
    assert ids[-2:] == label + [tokenizer.eos_token_id]
    assert [x for x in encoded["labels"] if x != -100] == label + [tokenizer.eos_token_id]
    prompt = tokenizer.decode(ids[:-2], skip_special_tokens=True)
    assert prompt.endswith("### Response:\n") and prompt.startswith(build_prompt(task.instruction, "")[:200])
    ids, cut = modeling.encode_prompt(tokenizer, task.instruction, LONG, max_length - 2)    # as predict does
    assert cut and len(ids) == max_length - 2
    assert tokenizer.decode(ids, skip_special_tokens=True).endswith("### Response:\n")


def test_max_length_too_small_for_the_instruction_names_the_setting(tiny_gemma):
    import modeling
    from runtime import UserError
    from tasks import TASKS
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    with pytest.raises(UserError, match=r"MAX_LENGTH is too small: it leaves 20 tokens for the prompt.* raise --max_length"):
        modeling.encode_prompt(tokenizer, TASKS["CoLA"].instruction, LONG, 20)


# --- 9. MODEL_PATH problems: clear error, no network --------------------------------------------------

def spoil_model(model: Path, folder: Path, how: str) -> Path:
    """A copy of the tiny Gemma, spoilt in one way."""
    if how == "missing":
        return folder / "no-such-model"
    if how == "a-file":
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gemma-2b.zip").write_bytes(b"PK")
        return folder / "gemma-2b.zip"
    copy = folder / "model"
    shutil.copytree(model, copy)
    config = json.loads((copy / "config.json").read_text())
    if how == "no-config":
        (copy / "config.json").unlink()
    elif how == "no-weights":
        (copy / "model.safetensors").unlink()
    elif how == "only-pickle-weights":
        (copy / "model.safetensors").rename(copy / "pytorch_model.bin")
    elif how == "truncated-weights":
        data = (copy / "model.safetensors").read_bytes()
        (copy / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif how == "no-tokenizer":
        for name in ("tokenizer.model", "tokenizer.json"):
            (copy / name).unlink(missing_ok=True)
    elif how == "broken-tokenizer":
        (copy / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    elif how == "config-not-json":
        (copy / "config.json").write_text('{"model_type": "gemma",\n  "hidden_size": 64,,\n}')
    elif how == "unknown-model-type":
        config.update(model_type="gemma99", architectures=["Gemma99ForCausalLM"])
    elif how == "not-a-causal-lm":
        config.update(model_type="bert", architectures=["BertForSequenceClassification"])
    elif how == "custom-code":
        config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                              "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
        (copy / "modeling_evil.py").write_text("raise SystemExit('custom code ran')\n")
    if how in ("unknown-model-type", "not-a-causal-lm", "custom-code"):
        (copy / "config.json").write_text(json.dumps(config))
    return copy


MODEL_PROBLEMS = {
    "missing": ("no-such-model", "does not exist", "MODEL_PATH", "--model_path"),
    "a-file": ("gemma-2b.zip", "is a file, not a folder", "MODEL_PATH"),
    "no-config": ("has no config.json", "MODEL_PATH"),
    "no-weights": ("has no weights", "MODEL_PATH"),
    "only-pickle-weights": ("only pickled *.bin weights", "ALLOW_PICKLE", "safetensors"),
    "truncated-weights": ("cannot be loaded", "copy the model folder again"),
    "no-tokenizer": ("has no tokenizer", "MODEL_PATH"),
    "broken-tokenizer": ("could not load the tokenizer", "copy the model folder again"),
    "config-not-json": ("config.json cannot be read", "line 2", "copy the model folder again"),
    "unknown-model-type": ("holds a gemma99 model", "does not know: it needs a newer transformers", "MODEL_PATH"),
    "not-a-causal-lm": ("BertForSequenceClassification, not a causal language model", "MODEL_PATH"),
    "custom-code": ("custom code", "trust_remote_code", "MODEL_PATH"),
}


@pytest.mark.parametrize("how", list(MODEL_PROBLEMS))
def test_model_path_problems_are_explained_without_network(work, tmp_path, cli, how):
    model = spoil_model(work.model, tmp_path / "spoilt", how)
    args = places(work.out, model) + ["--data_set", "CoLA"]
    message = in_process_error(cli("predict.py", *args), "predict.py", *MODEL_PROBLEMS[how])
    assert model.name in message or str(model) in message
    intact(work)


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_a_hub_name_as_model_path_fails_fast_with_the_hub_unreachable(work, script):
    result = run(script, *work.where[2:], "--model_path", "google/gemma-2b", "--data_set", "CoLA")   # no network: run() checks
    error_message(result, "google/gemma-2b does not exist", "MODEL_PATH", "--model_path")
    assert result.seconds < 120
    intact(work)


# --- 10. adapters: missing, other data set, other base model, newer peft, truncated, empty ------------

def test_predict_and_grade_without_an_adapter(work, cli):
    shutil.rmtree(work.adapter)
    work.adapter_before = snapshot(work.out / "saved_model")
    message = in_process_error(cli("predict.py", *work.where, "--data_set", "CoLA"), "predict.py",
                               "no adapter in", "adapter_config.json is missing", "python train.py --data_set CoLA")
    assert str(work.adapter) in message
    code, out, err = cli("grade.py", *work.where, "--data_set", "CoLA", "--answer_dir", str(work.out / "none"), "--json")
    adapter = json.loads(out)["data_sets"][0]["adapter"]
    assert code == 0 and adapter["points"] == 0 and adapter["reasons"] == [f"{work.adapter}/ does not exist"]
    intact(work)


def test_an_adapter_trained_for_the_other_data_set_is_refused(work, cli):
    shutil.copytree(work.adapter, work.out / "saved_model" / "QQP")
    work.adapter_before = snapshot(work.out / "saved_model")
    in_process_error(cli("predict.py", *work.where, "--data_set", "QQP"), "predict.py",
                     "saved_model/QQP was trained on CoLA, not QQP", "python train.py --data_set QQP",
                     "--data_set CoLA")
    code, out, _ = cli("grade.py", *work.where, "--data_set", "QQP", "--json")
    reasons = json.loads(out)["data_sets"][0]["adapter"]["reasons"]
    assert code == 0 and "this adapter was trained on CoLA, so it is in the wrong place" in reasons
    intact(work)


def test_an_adapter_for_another_base_model_is_refused(work, tmp_path, cli):
    from transformers import AutoConfig, AutoModelForCausalLM
    other = tmp_path / "other-model"
    shutil.copytree(work.model, other, ignore=shutil.ignore_patterns("model.safetensors", "config.json"))
    config = AutoConfig.from_pretrained(str(work.model))
    config.intermediate_size = 96
    AutoModelForCausalLM.from_config(config).save_pretrained(str(other))
    # run_record.json knows the model it was trained on: refused before any weights load, naming both folders.
    in_process_error(cli("predict.py", *places(work.out, other), "--data_set", "CoLA"), "predict.py",
                     "is not the base model", str(other), "config.json", "Point MODEL_PATH at that model")
    intact(work)


def test_an_adapter_config_from_a_newer_peft_loads_with_a_warning(work):
    path = work.adapter / "adapter_config.json"
    config = json.loads(path.read_text())
    # What peft 0.21 writes beyond peft 0.10's fields, and a field no peft knows yet.
    newer = {"peft_version": "0.21.2", "exclude_modules": None, "trainable_token_indices": None, "eva_config": None,
             "corda_config": None, "lora_bias": False, "target_parameters": None, "use_qalora": False,
             "qalora_group_size": 16, "ensure_weight_tying": False, "field_from_peft_9": None}
    config.update(newer)
    path.write_text(json.dumps(config, indent=2))
    result = run("predict.py", *work.where, "--data_set", "CoLA")
    assert result.returncode == 0, result
    assert "does not know (written by a newer peft); loading without them" in result.stdout
    assert "field_from_peft_9=None" in result.stdout
    assert work.result.read_bytes() == work.result_before["result_CoLA.txt"]     # the same answers as before


@pytest.mark.parametrize("how", ["truncated", "empty", "config-not-json"])
def test_a_damaged_adapter_is_refused_by_predict_and_reported_by_grade(work, cli, how):
    weights, config = work.adapter / "adapter_model.safetensors", work.adapter / "adapter_config.json"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
        needles = ("cannot be loaded", "truncated", "train again")
        graded = "cannot be read"
    elif how == "empty":
        weights.write_bytes(b"")
        needles = ("adapter_model.safetensors is empty (0 bytes)", "Train again", "copy the adapter folder again")
        graded = "only 0 bytes"
    else:
        config.write_text('{"peft_type": "LORA",\n "r": 4,,\n}')
        needles = ("adapter_config.json cannot be read", "line 2", "train again")
        graded = "not valid JSON"
    work.adapter_before = snapshot(work.out / "saved_model")
    message = in_process_error(cli("predict.py", *work.where, "--data_set", "CoLA"), "predict.py", *needles)
    assert str(work.adapter) in message
    code, out, _ = cli("grade.py", *work.where, "--data_set", "CoLA", "--json")
    adapter = json.loads(out)["data_sets"][0]["adapter"]
    assert code == 0 and adapter["points"] == 0 and any(graded in r for r in adapter["reasons"]), adapter
    intact(work)


# --- 11. pickled weights need a setting; no remote code -------------------------------------------------

def test_a_pickled_adapter_needs_allow_pickle(work, cli):
    import torch
    from safetensors.torch import load_file
    weights = work.adapter / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), str(work.adapter / "adapter_model.bin"))
    weights.unlink()
    work.adapter_before = snapshot(work.out / "saved_model")
    in_process_error(cli("predict.py", *work.where, "--data_set", "CoLA"), "predict.py",
                     "pickled adapter_model.bin", "can run code", "ALLOW_PICKLE", "--allow_pickle")
    intact(work)
    code, out, err = cli("predict.py", *work.where, "--data_set", "CoLA", "--allow_pickle")
    assert code == 0, err[-3000:]
    assert work.result.read_bytes() == work.result_before["result_CoLA.txt"]


def test_nothing_runs_with_trust_remote_code():
    calls = []
    for path in list(ROOT.glob("*.py")) + list((ROOT / "tools").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"trust_remote_code\s*=\s*True", line):
                calls.append(f"{path.name}:{number}")
    assert not calls, f"trust_remote_code=True at {calls}"
    text = (ROOT / "modeling.py").read_text()
    assert text.count("trust_remote_code=False") >= 3     # config, model and tokenizer loads say so explicitly


# --- 12. train killed: the old adapter survives, --resume reaches the same step count -------------------

def test_train_killed_keeps_the_adapter_and_resume_finishes_the_same_steps(work, background, trained):
    checkpoints = work.out / "checkpoints" / "CoLA"
    started = background("train.py", *work.where, *TRAIN)
    started.wait_for(lambda: any((c / "trainer_state.json").is_file() for c in checkpoints.glob("checkpoint-*")),
                     "a complete checkpoint")
    killed = started.kill()
    assert killed.returncode == -signal.SIGKILL
    steps_done = max(int(c.name.split("-")[1]) for c in checkpoints.glob("checkpoint-*"))
    assert steps_done < 24, "the run ended before it was killed"
    assert snapshot(work.adapter) == work.adapter_files   # the previous good adapter, byte for byte
    # A run killed while saving a checkpoint leaves an incomplete one (transformers 5 saves in place): passed over.
    (checkpoints / "checkpoint-23").mkdir(exist_ok=True)
    (checkpoints / "checkpoint-23" / "adapter_model.safetensors").write_bytes(b"")

    resumed = run("train.py", *work.where, *TRAIN, "--resume")
    assert resumed.returncode == 0, resumed
    assert re.search(r"resuming from \S*checkpoint-(6|12|18)\b", resumed.stdout), resumed.stdout
    record = json.loads((work.adapter / "run_record.json").read_text())
    uninterrupted = json.loads((trained.out / "saved_model" / "CoLA" / "run_record.json").read_text())
    assert record["steps"] == uninterrupted["steps"] == 24
    assert not (work.out / "saved_model" / ".lock").exists()


def test_resume_without_a_complete_checkpoint_is_an_error(work):
    (work.out / "checkpoints" / "CoLA" / "checkpoint-6").mkdir(parents=True)     # incomplete: no trainer_state.json
    result = run("train.py", *work.where, *TRAIN, "--resume")
    message = error_message(result, "--resume: no complete checkpoint in", "run without --resume")
    assert str(work.out / "checkpoints" / "CoLA") in message
    intact(work)


def test_a_swap_interrupted_between_its_two_renames_is_recovered(tmp_path):
    from runtime import replace_folder
    final, new = tmp_path / "CoLA", tmp_path / "CoLA.new"
    (tmp_path / "CoLA.old").mkdir()
    (tmp_path / "CoLA.old" / "adapter_model.safetensors").write_text("good")   # final already renamed away
    new.mkdir()
    (new / "adapter_model.safetensors").write_text("newer")
    replace_folder(new, final)
    assert (final / "adapter_model.safetensors").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CoLA"]


# --- 13. predict killed: the previous result file is intact, no partial file under its name ------------

@pytest.fixture
def slow_predict(work, background):
    """predict.py on 3000 dev items (the tiny model needs a while), started and past its first answers."""
    dev = work.out / "pre_data" / "CoLA" / "CoLA_dev.json"
    items = json.loads(dev.read_text())
    dev.write_text(json.dumps((items * 20)[:3000]))
    started = background("predict.py", *work.where, "--data_set", "CoLA", "--predict_count", "3000")
    started.wait_for(lambda: re.search(r"CoLA dev:\s+\d+%\|[^\r\n]*\| *[1-9]\d*/3000", started.output()),
                     "progress on the dev items")
    return started


def test_predict_killed_keeps_the_previous_result_file(work, slow_predict):
    killed = slow_predict.kill()
    assert killed.returncode == -signal.SIGKILL
    intact(work)
    assert sorted(p.name for p in (work.out / "questionB").iterdir()) == ["result_CoLA.txt"]


# --- 14. out of GPU memory -------------------------------------------------------------------------------

@pytest.mark.parametrize("when", ["training", "final-evaluation"])
def test_out_of_memory_names_the_settings_that_lower_memory(work, cli, monkeypatch, when):
    import torch
    import transformers

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    if when == "training":
        monkeypatch.setattr(transformers.Trainer, "train", out_of_memory)
    else:
        monkeypatch.setattr(transformers.Trainer, "train", lambda self, **kwargs: None)
        monkeypatch.setattr(transformers.Trainer, "evaluate", out_of_memory)   # the best checkpoint's own scores
    in_process_error(cli("train.py", *work.where, *TRAIN), "train.py",
                     "ran out of memory", "BATCH_SIZE", "GRAD_ACCUM", "MAX_LENGTH", "GRADIENT_CHECKPOINTING")
    intact(work)
    assert not (work.out / "saved_model" / "CoLA.new").exists()


# --- 15. Ctrl-C (and SIGTERM): one line, exit 130, within seconds -------------------------------------

def interrupted(result, script: str) -> None:
    assert result.returncode == 130, result
    assert "Traceback" not in result.stderr, result
    assert result.stderr.rstrip().splitlines()[-1] == f"{script}: {INTERRUPTED}", result
    assert result.said_seconds < 10, f"{script} took {result.said_seconds:.1f} s to say it was interrupted"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_predict(work, slow_predict, signum):
    interrupted(slow_predict.signal(signum), "predict.py")
    intact(work)
    assert sorted(p.name for p in (work.out / "questionB").iterdir()) == ["result_CoLA.txt"]


def test_ctrl_c_during_train(work, background):
    started = background("train.py", *work.where, *TRAIN)
    started.wait_for(lambda: re.search(r"\| *[1-9]\d*/24 ", started.output()), "a training step")
    interrupted(started.signal(signal.SIGINT), "train.py")
    intact(work)                                        # adapter untouched, lock released


def test_ctrl_c_in_any_script_is_one_line_and_exit_130(monkeypatch, capsys):
    import runtime

    def main(settings):
        raise KeyboardInterrupt

    for script in ("data_process.py", "grade.py"):
        monkeypatch.setattr(sys, "argv", [script])
        before = signal.getsignal(signal.SIGTERM)
        with pytest.raises(SystemExit) as stopped:
            runtime.run(main, "doc")
        signal.signal(signal.SIGTERM, before)
        assert stopped.value.code == 130
        assert capsys.readouterr().err.strip() == f"{script}: {INTERRUPTED}"


# --- 16. two runs into one folder: the second refuses ------------------------------------------------

@pytest.mark.parametrize("script,folder", [("train.py", "saved_model"), ("predict.py", "questionB")])
def test_a_second_run_into_the_same_folder_refuses(work, script, folder):
    import runtime
    with runtime.exclusive(work.out / folder, script):
        args = TRAIN if script == "train.py" else ["--data_set", "CoLA"]
        result = run(script, *work.where, *args)
        error_message(result, f"another {script} is writing into", str(work.out / folder), "right now",
                      "Wait for it to finish")
    intact(work)
