"""tools/compare_results.py: paired counts and McNemar's test on two result files, read as grade.py reads them."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import run_script
from tools.compare_results import compare, mcnemar


def write(path: Path, labels: list) -> Path:
    path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    return path


def test_mcnemar_matches_the_textbook_figures():
    chi2, p, p_exact = mcnemar(51, 25)                # docs/real_model.md: CoLA, the exam's instruction against ours
    assert chi2 == pytest.approx(676 / 76)
    assert p == pytest.approx(0.00286, abs=5e-5)
    assert p_exact == pytest.approx(0.00381, abs=5e-5)   # 2 x P(Binomial(76, 1/2) <= 25)
    assert mcnemar(3, 0)[2] == pytest.approx(0.25)      # 2 x (1/2)^3
    assert mcnemar(7, 7) == (0.0, 1.0, 1.0)
    assert mcnemar(0, 0) == (0.0, 1.0, 1.0)
    assert mcnemar(40, 66) == pytest.approx(mcnemar(66, 40))


def test_counts_pair_items_by_line(tmp_path):
    gold = ["1", "0", "1", "1", "0", "0", "1", "0"]
    a = ["1", "0", "1", "1", "1", "maybe", "1", "0"]   # wrong on items 4 and 5 (not a label counts as wrong)
    b = ["0", "0", "1", "0", "0", "0", "1", "1", "1"]  # wrong on 0, 3, 7; one answer more than there are items
    c = compare(write(tmp_path / "gold.txt", gold), write(tmp_path / "a.txt", a), write(tmp_path / "b.txt", b))
    assert (c["n"], c["lines"], c["right_a"], c["right_b"]) == (8, 8, 6, 5)
    assert (c["only_a"], c["only_b"], c["both"]) == (3, 2, 3)
    assert c["p_exact"] == pytest.approx(1.0)


def test_the_shortest_file_sets_the_items(tmp_path):
    gold = write(tmp_path / "gold.txt", ["1", "0"] * 100)
    c = compare(gold, write(tmp_path / "a.txt", ["1", "0"] * 75), write(tmp_path / "b.txt", ["1"] * 150))
    assert (c["n"], c["right_a"], c["right_b"], c["only_a"], c["only_b"]) == (150, 150, 75, 75, 0)
    assert c["p_exact"] == pytest.approx(2 / 2 ** 75)
    assert c["p"] == pytest.approx(math.erfc(math.sqrt(75 / 2)))


def test_the_command_prints_the_verdict_and_names_a_bad_file(tmp_path):
    gold = write(tmp_path / "gold.txt", ["1", "0"] * 50)
    good = write(tmp_path / "good.txt", ["1", "0"] * 50)
    bad = write(tmp_path / "bad.txt", ["1"] * 100)
    out = run_script("tools/compare_results.py", str(gold), str(good), str(bad)).stdout
    assert "right only with A: 50, only with B: 0" in out and "differ beyond the noise" in out
    out = run_script("tools/compare_results.py", str(gold), str(good), str(good)).stdout
    assert "inside the noise" in out
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    failed = run_script("tools/compare_results.py", str(gold), str(empty), str(good), check=False)
    assert failed.returncode == 2 and "empty.txt is empty" in failed.stderr and "Traceback" not in failed.stderr
