"""Is one recipe really better than another? Seeds against seeds, from the real-model table.

    python tools/compare_recipes.py                                  # docs/real_model.csv, every task, against defaults
    python tools/compare_recipes.py real_runs/real_model.csv --task CoLA --against epochs-3

One run is one draw: two seeds of one recipe can differ by 20 dev rows (docs/real_model.md), more than most levers
move. So a recipe is compared with another over the seeds both were trained with, each seed's pair sharing its
sample, holdout and initialisation: the difference in dev rows right, seed by seed, its mean, its standard error
(the seeds' spread / sqrt(n)) and t = mean / standard error. A difference under two standard errors is inside the
noise; with few seeds even a larger one is weak (t with n - 1 degrees of freedom: 2.78 for p = 0.05 at 5 seeds).

The table's rows name their recipe, and a row `<recipe>-seed-<n>` is that recipe with another seed (the seed is
read from the row's `--seed`; without one it ran at config.py's SEED). Rows are compared only on the same dev rows
(`dev_n`); tools/compare_results.py compares two single runs item by item.
"""
from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from runtime import UserError  # noqa: E402

NEEDED = ("task", "row", "overrides", "dev_n", "dev_acc", "dev_mcc")


def runs_of(path: Path) -> list:
    """(task, dev_n, recipe, seed, rows right, accuracy, MCC) for each scored row of a real_model.csv table."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{runtime.shown(path)}: cannot be read as a table ({e}); give the real_model.csv that "
                        f"tools/real_model.py writes (docs/real_model.csv is ours).")
    missing = [column for column in NEEDED if table and column not in table[0]]
    if not table or missing:
        raise UserError(f"{runtime.shown(path)}: not a real_model.csv table (it lacks the column(s) "
                        f"{', '.join(missing) or 'and rows'}); give the table tools/real_model.py writes.")
    default_seed = runtime.defaults()["SEED"]
    runs = []
    for line, row in enumerate(table, start=2):
        if not row["dev_acc"] or not row["dev_n"]:
            continue                                   # a row whose predict never ran
        try:
            dev_n, accuracy, mcc = int(row["dev_n"]), float(row["dev_acc"]), float(row["dev_mcc"] or "nan")
        except ValueError:
            raise UserError(f"{runtime.shown(path)}, line {line} (row {row['row']!r}): dev_n {row['dev_n']!r} / "
                            f"dev_acc {row['dev_acc']!r} is not a number; fix or remove the row.")
        seed = re.search(r"--seed (\d+)", row["overrides"] or "")
        runs.append((row["task"], dev_n, re.sub(r"-seed-\d+$", "", row["row"]),
                     int(seed.group(1)) if seed else default_seed, round(accuracy * dev_n), accuracy, mcc))
    return runs


def summary(runs: list, against: str) -> list:
    """One dict per (task, dev rows, recipe): its seeds, mean and spread, and the paired difference with `against`."""
    groups = {}
    for task, dev_n, recipe, seed, right, accuracy, mcc in runs:
        groups.setdefault((task, dev_n, recipe), {})[seed] = (right, accuracy, mcc)

    def order(group):   # by task; the most dev rows first; in each, `against`, then the recipes with most seeds
        (task, dev_n, recipe), by_seed = group
        return task, -dev_n, recipe != against, -len(by_seed), recipe

    lines = []
    for (task, dev_n, recipe), by_seed in sorted(groups.items(), key=order):
        accuracies = [accuracy for _, accuracy, _ in by_seed.values()]
        line = {"task": task, "dev_n": dev_n, "recipe": recipe, "seeds": sorted(by_seed), "acc": statistics.mean(
                accuracies), "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                "mcc": statistics.mean(mcc for _, _, mcc in by_seed.values())}
        base = groups.get((task, dev_n, against))
        paired = sorted(set(by_seed) & set(base or {}))
        if recipe != against and paired:
            differences = [by_seed[seed][0] - base[seed][0] for seed in paired]
            line["differences"] = differences
            line["mean_difference"] = statistics.mean(differences)
            if len(differences) > 1:
                line["se"] = statistics.stdev(differences) / len(differences) ** 0.5
                line["t"] = line["mean_difference"] / line["se"] if line["se"] else float("inf")
        lines.append(line)
    return lines


def report(lines: list, path: Path, against: str) -> str:
    out = [f"compare_recipes: {runtime.shown(path)}; dev rows right, seed by seed, against {against!r} "
           f"(t = mean difference / its standard error)"]
    width = max(len(line["recipe"]) for line in lines)
    shown_task = None
    for line in lines:
        if (line["task"], line["dev_n"]) != shown_task:
            shown_task = (line["task"], line["dev_n"])
            out.append(f"\n{line['task']}, {line['dev_n']} dev rows")
            out.append(f"  {'recipe':<{width}}  seeds  {'dev acc':>7}  {'sd':>6}  {'MCC':>6}  against {against}")
        sd = f"{line['sd']:.4f}" if line["sd"] is not None else "-"
        text = f"  {line['recipe']:<{width}}  {len(line['seeds']):>5}  {line['acc']:>7.4f}  {sd:>6}  {line['mcc']:>6.3f}"
        if "differences" in line:
            each = " ".join(f"{d:+d}" for d in line["differences"])
            text += f"  {line['mean_difference']:+.1f} rows over {len(line['differences'])} seed(s) ({each})"
            if "se" in line:
                text += f", SE {line['se']:.2f}, t {line['t']:.2f}"
        out.append(text)
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("table", type=Path, nargs="?", default=ROOT / "docs" / "real_model.csv",
                        help="a real_model.csv (default: docs/real_model.csv)")
    parser.add_argument("--task", help="one task only, e.g. CoLA")
    parser.add_argument("--against", default="defaults", help="the recipe to compare with (default: defaults)")
    args = parser.parse_args(argv)
    try:
        every_run = runs_of(args.table)
        runs = [run for run in every_run if args.task in (None, run[0])]
        if not runs:
            raise UserError(f"{runtime.shown(args.table)}: no scored row for task {args.task!r}; the tasks in it: "
                            f"{', '.join(sorted({run[0] for run in every_run}))}.")
        if args.against not in {run[2] for run in runs}:
            raise UserError(f"--against {args.against!r}: no such recipe in {runtime.shown(args.table)}; its "
                            f"recipes: {', '.join(sorted({run[2] for run in runs}))}.")
        print(report(summary(runs, args.against), args.table, args.against))
    except UserError as e:
        print(f"compare_recipes: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
