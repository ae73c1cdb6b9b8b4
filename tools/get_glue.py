"""Put the real GLUE files the real-model tool and the lab use into this project: data/glue/<task>/{train,dev}.tsv.

    python tools/get_glue.py                        # from the Hugging Face hub, where this machine is online
    python tools/get_glue.py --from ~/glue_data     # from a local copy: the official GLUE or CoLA downloads
    python tools/get_glue.py --tasks CoLA --out /elsewhere

Both dev files keep their labels (they are what the real-model tool and the lab score against). Layouts:
  CoLA   train.tsv, dev.tsv    the raw release: no header; source, label, annotation, sentence
  SST-2  train.tsv, dev.tsv    header sentence<TAB>label
  QQP    train.tsv, dev.tsv    header id, qid1, qid2, question1, question2, is_duplicate
A local copy is searched for the files of the official downloads (cola_public/raw/in_domain_{train,dev}.tsv,
glue_data/<task>/{train,dev}.tsv); a QQP copy that has only a headerless sample of the train rows
(train_subset_noheader.tsv) gives its last QQP_DEV_ROWS rows as dev. Files are written whole or not at all.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime import UserError, write_atomically  # noqa: E402

GLUE_DIR = ROOT / "data" / "glue"
TASKS = ("CoLA", "QQP", "SST-2")
QQP_DEV_ROWS = 1000
QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
# Where each file of a task may lie in a local copy, first match wins (names of the official downloads).
LOCAL_NAMES = {
    ("CoLA", "train"): ["in_domain_train.tsv", "CoLA/train.tsv"],
    ("CoLA", "dev"): ["in_domain_dev.tsv", "CoLA/dev.tsv"],
    ("SST-2", "train"): ["SST-2/train.tsv"],
    ("SST-2", "dev"): ["SST-2/dev.tsv"],
    ("QQP", "train"): ["QQP/train.tsv"],
    ("QQP", "dev"): ["QQP/dev.tsv"],
}
FIELDS = {"CoLA": 4, "SST-2": 2, "QQP": 6}


def find(copy: Path, name: str) -> Optional[Path]:
    """The first file under copy whose path ends with name (a few levels deep at most)."""
    for path in sorted(copy.rglob(Path(name).name)):
        if path.as_posix().endswith(name) and len(path.relative_to(copy).parts) <= 5:
            return path
    return None


def rows_of(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def from_copy(copy: Path, task: str) -> Dict[str, str]:
    """{split: text} of a task from a local copy, or a UserError that names what is missing."""
    files = {split: next((p for p in map(lambda n: find(copy, n), LOCAL_NAMES[(task, split)]) if p), None)
             for split in ("train", "dev")}
    if task == "QQP" and (files["train"] is None or rows_of(files["train"]) < 100):
        subset = find(copy, "train_subset_noheader.tsv")
        if subset is not None:
            lines = subset.read_text(encoding="utf-8").splitlines(keepends=True)
            return {"train": QQP_HEADER + "".join(lines[:-QQP_DEV_ROWS]), "dev": QQP_HEADER + "".join(lines[-QQP_DEV_ROWS:])}
    missing = [split for split, path in files.items() if path is None]
    if missing:
        wanted = " or ".join(LOCAL_NAMES[(task, missing[0])])
        raise UserError(f"{copy} has no {task} {missing[0]} file ({wanted}): point --from at the folder that holds the "
                        f"official {task} download (e.g. glue_data/ or cola_public/).")
    return {split: path.read_text(encoding="utf-8") for split, path in files.items()}


def from_hub(task: str) -> Dict[str, str]:
    """{split: text} of a task from the hub's GLUE, written in the layouts above."""
    try:
        from datasets import load_dataset
        splits = load_dataset("glue", {"CoLA": "cola", "SST-2": "sst2", "QQP": "qqp"}[task])
    except Exception as e:  # noqa: BLE001 - offline, no route, no datasets: one answer for the user
        raise UserError(
            f"could not fetch GLUE {task} from the Hugging Face hub ({type(e).__name__}: {' '.join(str(e).split())[:160]}). "
            f"Offline, give a local copy instead: download the GLUE data (glue_data/) or CoLA (cola_public_1.1.zip) on "
            f"a machine that is online, copy it here, and run python tools/get_glue.py --from PATH.") from None
    texts = {}
    for split, name in (("train", "train"), ("dev", "validation")):
        rows = splits[name]
        if task == "CoLA":
            texts[split] = "".join(f"glue\t{r['label']}\t{'' if r['label'] else '*'}\t{r['sentence']}\n" for r in rows)
        elif task == "SST-2":
            texts[split] = "sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n" for r in rows)
        else:
            texts[split] = QQP_HEADER + "".join(f"{r['idx']}\t\t\t{r['question1']}\t{r['question2']}\t{r['label']}\n"
                                                for r in rows)
    return texts


def check(task: str, split: str, text: str) -> None:
    """Refuse a file that is not the task's layout (the wrong file found, or a damaged copy)."""
    lines = [line for line in text.splitlines() if line.strip()]
    fields = [len(line.split("\t")) for line in lines[:200]]
    if len(lines) < 50 or fields.count(FIELDS[task]) < 0.9 * len(fields):
        raise UserError(f"the {task} {split} file found has {len(lines)} rows and {max(set(fields), key=fields.count)} "
                        f"fields a row, not the {FIELDS[task]} of {task}'s layout: check the copy it came from.")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="copy", type=Path, help="a local copy (folder) of the official downloads")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", type=Path, default=GLUE_DIR)
    args = parser.parse_args(argv)
    try:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise UserError(f"unknown task {unknown[0]!r}: use {', '.join(TASKS)}.")
        if args.copy is not None and not args.copy.expanduser().is_dir():
            raise UserError(f"--from {args.copy}: no such folder.")
        for task in tasks:
            texts = from_copy(args.copy.expanduser(), task) if args.copy else from_hub(task)
            for split, text in texts.items():
                check(task, split, text)
            for split, text in texts.items():
                write_atomically(args.out / task / f"{split}.tsv", text)
            counts = ", ".join(f"{split} {rows_of(args.out / task / f'{split}.tsv')} lines" for split in texts)
            print(f"get_glue: {task}: {counts} -> {args.out / task}")
    except UserError as e:
        print(f"get_glue: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"get_glue: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    sys.exit(main())
