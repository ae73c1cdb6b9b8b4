"""Benchmarks: one table of the performance figures, with the machine and the package stack named.

    HF_HUB_OFFLINE=1 nice .venvs/exam/bin/python tools/bench.py       # everything, gemma-2b's real shape
    HF_HUB_OFFLINE=1 nice .venvs/latest/bin/python tools/bench.py     # + Gemma 3 270M in part 6
    python tools/bench.py --only train --reps 3                       # some parts: predict, padding, data, memory,
                                                                      # startup, train
    python tools/bench.py --tiny                                      # tiny shapes: proves it runs (tests)

Parts: 1 predict cost per item, 2 padding in training batches, 3 data_process time, 4 the A10 memory plan,
5 start-up, 6 the optimiser step by the answer-only loss vs the body alone vs the full forward. What each part
measures, why, and the latest figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib sets up the environment and the paths

from benchlib import ROOT  # noqa: E402  (first: before anything imports transformers)
import runtime  # noqa: E402

import bench_data  # noqa: E402
import bench_memory  # noqa: E402
import bench_predict  # noqa: E402
import bench_train  # noqa: E402
from benchlib import CACHE, GEMMA_2B, TINY, machine, stack, table  # noqa: E402


PARTS = ("predict", "padding", "data", "memory", "startup", "train")


def parse_arguments(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default: all of {','.join(PARTS)})")
    parser.add_argument("--layers", type=int, default=None,
                        help="decoder layers of the predict model (default: all 18)")
    parser.add_argument("--train-layers", type=int, default=2,
                        help="decoder layers of gemma-2b's shape in the train part (default 2: its full 18 take minutes "
                             "a step on a CPU)")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds for predict and data_process (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on cores shared with other jobs, 2 threads wait on each "
                             "other and timings swing 2x; use 2 on an idle machine)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and data: checks the bench works, in seconds")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help=f"folder for the random model weights, kept between runs (default {CACHE}; "
                             f"about 6.5 GB at full size: delete it when done)")
    parser.add_argument("--probe-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = args.parts - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}")
    return args


def run_parts(args: argparse.Namespace, workdir: Path) -> None:
    """Each chosen part adds its rows to benchlib's table; the cheap ones first."""
    settings = runtime.load_settings([])   # config.py's defaults
    reps = 1 if args.tiny else args.reps
    shape = TINY if args.tiny else GEMMA_2B
    if "startup" in args.parts:
        bench_predict.bench_startup(3 if args.tiny else 5)
    if "data" in args.parts:
        bench_data.bench_data_process(workdir, reps, args.tiny)
    if "padding" in args.parts:
        bench_data.bench_padding(workdir, settings)
    if "memory" in args.parts:
        bench_memory.bench_memory(settings, args.tiny, args.cache)
    if "predict" in args.parts:
        bench_predict.bench_predict(shape, args.layers or shape["num_hidden_layers"], reps, workdir, args.cache,
                                    args.tiny)
    if "train" in args.parts:
        bench_train.bench_train_step(workdir, args.cache, reps, args.tiny, args.train_layers)


def command_line(argv) -> str:
    """The command as a user in the project folder would type it."""
    python = Path(sys.executable)
    if ROOT in python.parents:
        python = python.relative_to(ROOT)
    return f"{python} tools/bench.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")


def main(argv=None) -> int:
    args = parse_arguments(argv)
    import torch
    torch.set_num_threads(args.threads)
    if args.probe_memory:
        print(json.dumps(bench_memory.probe_memory(args.tiny, args.cache)))
        return 0
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        run_parts(args, Path(tmp))
    print(f"machine: {machine()}")
    print(f"stack:   {stack()}")
    print(f"command: {command_line(argv)}   ({time.time() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
