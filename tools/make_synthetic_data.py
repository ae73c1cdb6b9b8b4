"""Write synthetic CoLA and QQP files in the exam's exact layouts, plus their answer files.

    python tools/make_synthetic_data.py OUT_DIR [--train-rows 800] [--dev-rows 200] [--seed 0]

OUT_DIR/data/{CoLA,QQP}_{train,dev}.tsv and OUT_DIR/answers/result_{CoLA,QQP}.txt (labels of the first
150 dev rows). The label is decided by which of two word lists the text is drawn from, so a tiny model
can learn it in a minute on a CPU: these files prove the pipeline works end to end, not that a model
understands grammar. The layouts are the real ones:
CoLA raw (source, label, annotation, sentence; no header) and GLUE QQP (header; CSV-quoted fields
with doubled inner quotes on some rows), with the dev files unlabelled.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

# Two disjoint word lists: a label-1 sentence draws every content word from the first, a label-0 one from
# the second. The label is then spread over the whole input rather than hidden in one token, which is
# what a tiny, randomly initialised model can pick up with LoRA in a minute on a CPU.
COLA_WORDS = {
    1: (["the cat", "my sister", "a teacher", "our neighbours"], ["read the book", "sang a song", "painted the door",
        "wrote a letter"], ["quietly", "gladly", "at noon", "today"]),
    0: (["the old man", "the children", "John", "Mary"], ["left the room", "ate the cake", "fixed the car",
        "visited Paris"], ["quickly", "yesterday", "again", "twice"]),
}
QQP_TOPICS = {1: ["learn Python", "improve my English", "write a novel", "become a doctor"],
              0: ["lose weight", "start a business", "save money", "travel to Japan"]}
QUESTION_FORMS = ["How can I {t}?", "What is the best way to {t}?", "Is it hard to {t}?",
                  "Why do people {t}?", "What should I do to {t}?"]


def cola_sentence(rng: random.Random, label: int) -> str:
    subjects, verbs, adverbs = COLA_WORDS[label]
    return f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} {rng.choice(adverbs)}."


def qqp_pair(rng: random.Random, label: int) -> tuple:
    q1 = rng.choice(QUESTION_FORMS).format(t=rng.choice(QQP_TOPICS[label]))
    q2 = rng.choice(QUESTION_FORMS).format(t=rng.choice(QQP_TOPICS[label]))
    if rng.random() < 0.1:   # GLUE QQP quotes some fields, doubling the quotes inside
        q1 = '"' + q1.replace("How", '""How""', 1) + '"'
    return q1, q2


def write(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_synthetic_data(out_dir: Path, train_rows: int = 800, dev_rows: int = 200, seed: int = 0) -> Path:
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    data, answers = out_dir / "data", out_dir / "answers"
    # CoLA: about 70 % acceptable, like the real data.
    train = []
    for i in range(train_rows):
        label = int(rng.random() < 0.7)
        train.append(f"syn{i % 17:02d}\t{label}\t{'' if label else '*'}\t{cola_sentence(rng, label)}")
    dev_labels = [int(rng.random() < 0.7) for _ in range(dev_rows)]
    dev = [f"syn_dev\t\t\t{cola_sentence(rng, label)}" for label in dev_labels]   # label column left empty
    write(data / "CoLA_train.tsv", train)
    write(data / "CoLA_dev.tsv", dev)
    write(answers / "result_CoLA.txt", [str(label) for label in dev_labels[:150]])
    # QQP: about 37 % duplicates, like the real data.
    train = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
    for i in range(train_rows):
        label = int(rng.random() < 0.37)
        q1, q2 = qqp_pair(rng, label)
        train.append(f"{i}\t{2 * i + 1}\t{2 * i + 2}\t{q1}\t{q2}\t{label}")
    dev_labels = [int(rng.random() < 0.37) for _ in range(dev_rows)]
    dev = ["id\tqid1\tqid2\tquestion1\tquestion2"]
    for i, label in enumerate(dev_labels):
        q1, q2 = qqp_pair(rng, label)
        dev.append(f"{100000 + i}\t{5 * i + 1}\t{5 * i + 2}\t{q1}\t{q2}")
    write(data / "QQP_train.tsv", train)
    write(data / "QQP_dev.tsv", dev)
    write(answers / "result_QQP.txt", [str(label) for label in dev_labels[:150]])
    return out_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train-rows", type=int, default=800)
    parser.add_argument("--dev-rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = make_synthetic_data(args.out_dir, args.train_rows, args.dev_rows, args.seed)
    print(f"make_synthetic_data: wrote {folder / 'data'}/{{CoLA,QQP}}_{{train,dev}}.tsv and {folder / 'answers'}/")
