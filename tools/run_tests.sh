#!/usr/bin/env bash
# Set up what the tests need and run them: the full suite on the exam's pinned stack and on today's
# releases, then the real Python 3.9 byte-compiles every file and runs the torch-free tests.
#   bash tools/run_tests.sh                 # all three
#   bash tools/run_tests.sh latest -x -k grade   # one stack; further arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
stacks=(exam latest py39)
if [ $# -gt 0 ] && [[ "$1" =~ ^(exam|latest|py39)$ ]]; then stacks=("$1"); shift; fi
export HF_HUB_OFFLINE=1
# The tests' models are tiny: a second thread buys nothing, and when anything else keeps a core busy
# OpenMP's spin-waiting makes two threads many times slower than one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The parts that must run where only Python is installed (no torch): see tools/check_py39.py.
torch_free=(tests/test_config.py tests/test_tasks.py tests/test_data_process.py tests/test_grade.py tests/test_shared_data.py
           tests/test_reliability_inputs.py tests/test_reliability_grade.py tests/test_reliability_round2.py
           tests/test_label_words.py)
for stack in "${stacks[@]}"; do
  python=$(bash tools/setup_env.sh "$stack" | tail -n 1)
  echo "=== $stack: $("$python" --version 2>&1)"
  started=$SECONDS
  status=0
  if [ "$stack" = py39 ]; then
    "$python" tools/check_py39.py
    "$python" -m pytest -q -p no:cacheprovider "${torch_free[@]}" "$@" || status=$?
  else
    "$python" -m pytest -q -p no:cacheprovider tests "$@" || status=$?
  fi
  # pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
  if [ $status -eq 5 ]; then echo "=== $stack: no tests were collected" >&2; exit 1; fi
  if [ $status -ne 0 ]; then echo "=== $stack: tests failed (exit $status)" >&2; exit $status; fi
  echo "=== $stack: passed in $((SECONDS - started)) s"
done
