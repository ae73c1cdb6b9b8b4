"""Shared fixtures: the project on sys.path, a tiny Gemma built on the spot, synthetic exam data, and a
helper that runs the scripts the way a user does (a subprocess with --name value overrides)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"   # real GLUE files beside the clone in CI; absent on users' machines
sys.path.insert(0, str(ROOT))

def run_script(script: str, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `python <script> args...` from the project folder with the hub unreachable; output captured."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")   # tiny models: one thread is as fast, and immune to a busy second core
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} exited {result.returncode}\n"
                             f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


@pytest.fixture
def outputs(tmp_path: Path) -> List[str]:
    """Overrides that send every output of the scripts into tmp_path (never into the project's own folders)."""
    return ["--pre_data_dir", str(tmp_path / "pre_data"), "--saved_model_dir", str(tmp_path / "saved_model"),
            "--result_dir", str(tmp_path / "questionB"), "--checkpoint_dir", str(tmp_path / "checkpoints")]


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """OUT/data/{CoLA,QQP}_{train,dev}.tsv and OUT/answers/result_*.txt, keyword-labelled."""
    from tools.make_synthetic_data import make_synthetic_data
    return make_synthetic_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory) -> Path:
    """A tiny random Gemma with a SentencePiece tokenizer, built by the stack under test."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_gemma import build_tiny_gemma
    return build_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma") / "model")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real GLUE files not found at {SHARED_DATA}")
    return SHARED_DATA
