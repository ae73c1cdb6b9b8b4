"""tools/compare_recipes.py: recipes compared seed against seed from a real_model.csv table."""
from __future__ import annotations

import csv
from pathlib import Path

from conftest import run_script

COLUMNS = ["task", "row", "model", "overrides", "dev_n", "dev_acc", "dev_mcc", "steps"]


def write_table(path: Path, rows: list) -> Path:
    """rows: (task, row, overrides, dev_n, dev_acc, dev_mcc)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for task, row, overrides, dev_n, acc, mcc in rows:
            writer.writerow([task, row, "gemma-3-270m", overrides, dev_n, acc, mcc, 500])
    return path


def test_it_pairs_seeds_and_reports_mean_difference_standard_error_and_t(tmp_path):
    """defaults at seeds 42 (no --seed: config's SEED), 43, 44; `wide` at 42, 43 and 45: only 42 and 43 pair.
    Rows right: defaults 80 / 70 / 75 of 100, wide 84 / 72 / 90: differences +4, +2, mean +3, SE 1, t 3."""
    table = write_table(tmp_path / "real_model.csv", [
        ("CoLA", "defaults", "--precision bf16", 100, "0.8000", "0.50"),
        ("CoLA", "defaults-seed-43", "--seed 43", 100, "0.7000", "0.30"),
        ("CoLA", "defaults-seed-44", "--seed 44", 100, "0.7500", "0.40"),
        ("CoLA", "wide", "--seed 42 --lora_r 32", 100, "0.8400", "0.55"),
        ("CoLA", "wide-seed-43", "--lora_r 32 --seed 43", 100, "0.7200", "0.35"),
        ("CoLA", "wide-seed-45", "--lora_r 32 --seed 45", 100, "0.9000", "0.70"),
        ("CoLA", "first-150", "--seed 42", 150, "0.7000", "0.20"),        # other dev rows: never paired
        ("CoLA", "never-scored", "--seed 42", "", "", ""),
        ("SST-2", "defaults", "", 872, "0.9000", "0.80")])
    out = run_script("tools/compare_recipes.py", str(table), "--task", "CoLA").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and "recipe" not in line}
    assert lines["defaults"].split()[1:5] == ["3", "0.7500", "0.0500", "0.400"]
    assert lines["wide"].split()[1:3] == ["3", "0.8200"]
    assert "+3.0 rows over 2 seed(s) (+4 +2), SE 1.00, t 3.00" in lines["wide"]
    assert "150 dev rows" in out and "against" not in lines["first-150"]
    assert "never-scored" not in out and "SST-2" not in out
    assert out.index("CoLA, 150 dev rows") < out.index("CoLA, 100 dev rows")   # the most dev rows first


def test_it_names_a_file_that_is_not_the_table_a_bad_number_and_an_unknown_recipe(tmp_path):
    other = tmp_path / "result_CoLA.txt"
    other.write_text("1\n0\n", encoding="utf-8")
    failed = run_script("tools/compare_recipes.py", str(other), check=False)
    assert failed.returncode == 2 and "result_CoLA.txt: not a real_model.csv table" in failed.stderr
    table = write_table(tmp_path / "real_model.csv", [("CoLA", "defaults", "", 100, "0.8", "0.5"),
                                                      ("CoLA", "odd", "", 100, "eighty", "0.5")])
    failed = run_script("tools/compare_recipes.py", str(table), check=False)
    assert failed.returncode == 2 and "line 3 (row 'odd')" in failed.stderr and "'eighty'" in failed.stderr
    table = write_table(tmp_path / "real_model.csv", [("CoLA", "defaults", "", 100, "0.8", "0.5")])
    failed = run_script("tools/compare_recipes.py", str(table), "--against", "nope", check=False)
    assert failed.returncode == 2 and "--against 'nope'" in failed.stderr and "its recipes: defaults" in failed.stderr
    failed = run_script("tools/compare_recipes.py", str(tmp_path / "missing.csv"), check=False)
    assert failed.returncode == 2 and "missing.csv: cannot be read" in failed.stderr
    assert "Traceback" not in failed.stderr
