"""tools/get_glue.py: the GLUE files the real-model tool and the lab read, into the project, from a local copy
(the official downloads' layout, or ../shared/data) or from the hub; offline without a copy, one paragraph."""
from __future__ import annotations

import random

from conftest import run_script
from tools.get_glue import main


def sst2_copy(folder, train_rows=60, dev_rows=55):
    """A copy laid out like the official glue_data/ download, with SST-2 only."""
    rng = random.Random(0)
    sst = folder / "glue_data" / "SST-2"
    sst.mkdir(parents=True)
    for name, n in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        rows = "".join(f"a {'fine' if i % 2 else 'dull'} film number {rng.randint(0, 999)} \t{i % 2}\n" for i in range(n))
        (sst / name).write_text("sentence\tlabel\n" + rows)
    return folder


def test_a_local_copy_of_the_official_download_is_laid_out_in_data_glue(tmp_path):
    copy = sst2_copy(tmp_path / "copy")
    assert main(["--from", str(copy), "--tasks", "SST-2", "--out", str(tmp_path / "glue")]) == 0
    assert (tmp_path / "glue" / "SST-2" / "train.tsv").read_text() == (copy / "glue_data" / "SST-2" / "train.tsv").read_text()
    assert (tmp_path / "glue" / "SST-2" / "dev.tsv").read_text().startswith("sentence\tlabel\n")


def test_a_copy_without_the_task_or_in_another_layout_is_refused_with_what_is_missing(tmp_path, capsys):
    copy = sst2_copy(tmp_path / "copy")
    assert main(["--from", str(copy), "--tasks", "CoLA", "--out", str(tmp_path / "glue")]) == 2
    assert "has no CoLA train file (in_domain_train.tsv or CoLA/train.tsv)" in capsys.readouterr().err
    (copy / "glue_data" / "SST-2" / "dev.tsv").write_text("just one column\n" * 80)
    assert main(["--from", str(copy), "--tasks", "SST-2", "--out", str(tmp_path / "glue")]) == 2
    assert "not the 2 of SST-2's layout" in capsys.readouterr().err
    assert not (tmp_path / "glue" / "SST-2").exists()   # nothing written when a file is refused


def test_offline_without_a_copy_one_paragraph_says_what_to_do(tmp_path):
    done = run_script("tools/get_glue.py", "--tasks", "SST-2", "--out", str(tmp_path / "glue"), check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "python tools/get_glue.py --from PATH" in done.stderr and done.stderr.strip().count("\n") == 0


def test_the_shared_copy_gives_every_task(tmp_path, shared_data):
    assert main(["--from", str(shared_data), "--out", str(tmp_path / "glue")]) == 0
    lines = {task: {split: (tmp_path / "glue" / task / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
                    for split in ("train", "dev")} for task in ("CoLA", "QQP", "SST-2")}
    assert (len(lines["CoLA"]["train"]), len(lines["CoLA"]["dev"])) == (8551, 527)
    assert (len(lines["SST-2"]["train"]), len(lines["SST-2"]["dev"])) == (67350, 873)
    assert len(lines["QQP"]["dev"]) == 1001 and lines["QQP"]["dev"][0].startswith("id\tqid1")
