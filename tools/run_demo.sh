#!/usr/bin/env bash
# Set up the packages (exam stack by default; STACK=latest for today's releases) and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash tools/setup_env.sh "${STACK:-exam}" | tail -n 1)
"$python" tools/demo.py
