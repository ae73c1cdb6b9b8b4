"""Is one result file really better than another? Both scored on the same items, row by row (McNemar's test).

    python tools/compare_results.py answers/result_CoLA.txt run_a/questionB/result_CoLA.txt run_b/questionB/result_CoLA.txt

Two runs that differ by a few points of accuracy on a few hundred items may differ by chance alone. Scored on the
same items, only the items that one run gets right and the other wrong tell them apart: if the runs were equally
good, each such item would be as likely to fall on either side. This prints those two counts and the chance of a
split at least that uneven between equal runs (McNemar's chi-square with 1 degree of freedom, and the exact
binomial test, better when the counts are small). The files are read as grade.py reads them; items are matched by
line, over the first N lines, N being the shortest file's count; an answer that is not a label counts as wrong.

It compares two trained models, not two recipes: two seeds of one recipe can differ beyond this noise (QQP, 4000
examples, seeds 43 and 44: 66 items against 40, p = 0.015, docs/real_model.md). To compare recipes, train each with
several seeds and compare the spread; this test says whether one pair of runs differs on these items.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from runtime import UserError  # noqa: E402


def mcnemar(only_a: int, only_b: int) -> tuple:
    """(chi-square, its p, the exact two-sided binomial p) for the items right with one run only."""
    discordant = only_a + only_b
    if discordant == 0:
        return 0.0, 1.0, 1.0
    chi2 = (only_a - only_b) ** 2 / discordant
    tail = sum(math.comb(discordant, k) for k in range(min(only_a, only_b) + 1)) / 2 ** discordant
    return chi2, math.erfc(math.sqrt(chi2 / 2)), min(1.0, 2 * tail)


def compare(answers: Path, result_a: Path, result_b: Path) -> dict:
    """The paired counts of the two result files against the answer file."""
    gold, a, b = (runtime.read_label_file(path)[0] for path in (answers, result_a, result_b))
    n = min(len(gold), len(a), len(b))
    rows = [(g, x, y) for g, x, y in zip(gold[:n], a[:n], b[:n]) if g is not None]
    if not rows:
        raise UserError(f"{runtime.shown(answers)}: none of its first {n} lines is a label to score against.")
    right_a = [x == g for g, x, _ in rows]
    right_b = [y == g for g, _, y in rows]
    only_a = sum(p and not q for p, q in zip(right_a, right_b))
    only_b = sum(q and not p for p, q in zip(right_a, right_b))
    chi2, p_chi2, p_exact = mcnemar(only_a, only_b)
    return {"n": len(rows), "lines": n, "right_a": sum(right_a), "right_b": sum(right_b), "only_a": only_a,
            "only_b": only_b, "both": sum(p and q for p, q in zip(right_a, right_b)), "chi2": chi2, "p": p_chi2,
            "p_exact": p_exact}


def report(c: dict, answers: Path, result_a: Path, result_b: Path) -> str:
    verdict = ("the two models differ beyond the noise (exact p < 0.05)" if c["p_exact"] < 0.05 else
               "inside the noise: these items cannot tell the two models apart")
    return "\n".join([
        f"compare_results: {c['n']} items of {runtime.shown(answers)} (the first {c['lines']} lines of every file)",
        f"  A {runtime.shown(result_a)}: {c['right_a']} right, accuracy {c['right_a'] / c['n']:.4f}",
        f"  B {runtime.shown(result_b)}: {c['right_b']} right, accuracy {c['right_b'] / c['n']:.4f}",
        f"  right only with A: {c['only_a']}, only with B: {c['only_b']}, with both: {c['both']}",
        f"  McNemar chi-square {c['chi2']:.2f} (1 d.f.), p = {c['p']:.3f}; exact binomial p = {c['p_exact']:.3f}: "
        f"{verdict}"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("answers", type=Path, help="the labels (e.g. answers/result_CoLA.txt)")
    parser.add_argument("result_a", type=Path, help="one run's predictions (e.g. questionB/result_CoLA.txt)")
    parser.add_argument("result_b", type=Path, help="the other run's predictions, for the same items")
    args = parser.parse_args(argv)
    try:
        print(report(compare(args.answers, args.result_a, args.result_b), args.answers, args.result_a, args.result_b))
    except UserError as e:
        print(f"compare_results: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
