"""The whole exam flow on built-in data, on a CPU, in a few minutes: the project's main job.

    python tools/demo.py            # or: bash tools/run_demo.sh (sets up the packages first)

Builds a tiny random Gemma (tests/tiny_gemma.py) and synthetic CoLA/QQP files in the exam's
layouts (tools/make_synthetic_data.py), then runs exactly the four exam commands on them:
data_process.py -> train.py -> predict.py -> grade.py, for CoLA and QQP. Everything goes under
demo_run/ (the exam's pre_data/, saved_model/ and questionB/ are left alone). The labels are decided by a
keyword, so the tiny model can learn them: the demo proves the pipeline, not a model's grammar.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # the tiny Gemma lives with the tests

from tools.make_synthetic_data import make_synthetic_data  # noqa: E402
from tiny_gemma import TINY_TRAINING, build_tiny_gemma  # noqa: E402

RUN = ROOT / "demo_run"


def step(script: str, *args: str) -> None:
    print(f"\n$ python {script} {' '.join(args)}", flush=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"demo: {script} failed (exit {result.returncode}); see its message above")


def main() -> None:
    started = time.time()
    model = RUN / "tiny-gemma"
    if not (model / "config.json").is_file():
        print("building a tiny Gemma and its tokenizer ...", flush=True)
        build_tiny_gemma(model)
    make_synthetic_data(RUN)
    where = ["--data_dir", str(RUN / "data"), "--model_path", str(model), "--answer_dir", str(RUN / "answers"),
             "--pre_data_dir", str(RUN / "pre_data"), "--saved_model_dir", str(RUN / "saved_model"),
             "--result_dir", str(RUN / "questionB"), "--checkpoint_dir", str(RUN / "checkpoints")]
    step("data_process.py", *where, "--max_samples", "600", "--holdout_size", "100")
    for data_set in ("CoLA", "QQP"):
        step("train.py", *where, "--data_set", data_set, *TINY_TRAINING)
        step("predict.py", *where, "--data_set", data_set)
    step("grade.py", *where)
    print(f"\ndemo: finished in {time.time() - started:.0f} s; everything it wrote is in {RUN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
