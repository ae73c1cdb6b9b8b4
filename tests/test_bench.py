"""tools/bench.py runs and prints its table (tiny shapes; nothing here is timed), and its memory model
counts gemma-2b's parameters right."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT


def test_memory_model_counts_gemma_2b():
    from tools.bench_memory import GEMMA_2B, training_memory

    plan = training_memory(GEMMA_2B, 8, 256, targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"], r=16, dropout=0.05, checkpointing=False)
    assert plan["params"] == 2_506_172_416          # gemma-2b, output layer tied to the embedding
    assert plan["lora_params"] == 19_611_648        # r=16 on all seven projections of 18 layers
    smaller = training_memory(GEMMA_2B, 4, 256, targets=["q_proj"], r=16, dropout=0.05, checkpointing=True)
    assert smaller["total"] < plan["total"]


def test_bench_tiny_prints_every_part(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--tiny", "--cache", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("machine: ") and "\nstack:   " in out and "torch threads" in out
    for part in ("1 predict", "4 memory", "5 start-up"):
        assert f"| {part}" in out, part
    assert "failed" not in out
    assert "| passes per item in (a)" in out and "body 1, output layer 1 at 1 position(s) of 100" in out
    assert "| 6 train step" in out and "answer-only step / body forward + backward" in out
    assert "imports neither torch nor transformers" in out
    if (ROOT / "data" / "glue" / "QQP").is_dir():   # tools/get_glue.py (run_tests.sh runs it when it can)
        assert "| 2 padding" in out and "| 3 data_process" in out
