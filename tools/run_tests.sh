#!/usr/bin/env bash
# Set up what the tests need and run them: the whole suite on today's releases, then on the exam machine's own
# stack (Python 3.9.18, torch 2.0.0, transformers 4.38.1, ...: constraints-exam.txt).
#   bash tools/run_tests.sh                        # both
#   bash tools/run_tests.sh exam -x -k grade       # one stack; further arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
stacks=(latest exam)
if [ $# -gt 0 ] && [[ "$1" =~ ^(exam|latest)$ ]]; then stacks=("$1"); shift; fi
export HF_HUB_OFFLINE=1
# The tests' models are tiny: a second thread buys nothing, and when anything else keeps a core busy
# OpenMP's spin-waiting makes two threads many times slower than one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The real GLUE files for the real-model tests and benchmarks, laid out by the tool a user runs (tools/get_glue.py),
# from the copy beside the checkout where there is one; without it those tests skip and say why.
if [ -d ../shared/data ]; then python3 tools/get_glue.py --from ../shared/data; fi
for stack in "${stacks[@]}"; do
  python=$(bash tools/setup_env.sh "$stack" | tail -n 1)
  echo "=== $stack: $("$python" --version 2>&1), $("$python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
  started=$SECONDS
  if [ "$stack" = exam ]; then
    "$python" tools/check_py39.py   # every file compiles and runs on the exam's interpreter
    # The exam stack cannot read GGUF files: its real-model test loads the SmolLM2 folder the latest stack builds.
    latest=$(bash tools/setup_env.sh latest | tail -n 1)
    "$latest" tools/get_gemma3_270m.py --model smollm2 || echo "=== no SmolLM2 folder: the exam stack's real-model test will skip"
  fi
  status=0
  "$python" -m pytest -q -p no:cacheprovider -rs tests "$@" || status=$?
  # pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
  if [ $status -eq 5 ]; then echo "=== $stack: no tests were collected" >&2; exit 1; fi
  if [ $status -ne 0 ]; then echo "=== $stack: tests failed (exit $status)" >&2; exit $status; fi
  echo "=== $stack: passed in $((SECONDS - started)) s"
done
