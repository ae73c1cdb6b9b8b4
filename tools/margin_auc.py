"""Is there signal under the argmax? The AUC of the label margin on a run's holdout, with and without its adapter.

    python tools/margin_auc.py real_runs/CoLA/base --data_set CoLA --model_path models/gemma-3-270m --precision bf16

RUN is a folder that tools/real_model.py wrote (RUN/pre_data, RUN/saved_model). For every holdout row the margin is
the logit of label 1 minus the logit of label 0 right after the prompt (modeling.label_logits, what label scoring
compares); the AUC is the chance that an acceptable/positive row gets a larger margin than an unacceptable/negative
one (0.5: no signal at all). A model that answers one class everywhere can still rank the rows: this tells which.
Other --name value pairs are config.py settings.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from tasks import label_words  # noqa: E402


def auc(margins: list, gold: list) -> float:
    positive = [m for m, g in zip(margins, gold) if g == "1"]
    negative = [m for m, g in zip(margins, gold) if g == "0"]
    return sum((p > n) + 0.5 * (p == n) for p in positive for n in negative) / (len(positive) * len(negative))


def margins_of(model, tokenizer, examples: list, settings) -> list:
    import modeling
    prompts = [modeling.encode_prompt(tokenizer, e["instruction"], e["input"], settings.MAX_LENGTH - 2)[0]
               for e in examples]
    logits = modeling.label_logits(model, prompts, modeling.label_token_ids(tokenizer, label_words(settings.LABEL_WORDS)), tokenizer.pad_token_id,
                                   settings.BATCH_SIZE)
    return (logits[:, 1] - logits[:, 0]).tolist()


def main(settings, run: Path) -> None:
    import modeling
    settings.PRE_DATA_DIR, settings.SAVED_MODEL_DIR = str(run / "pre_data"), str(run / "saved_model")
    holdout = runtime.load_examples(runtime.pre_data_file(settings, settings.DATA_SET, "val"))
    gold = [e["output"] for e in holdout]
    model, tokenizer = modeling.load_base_model(settings)
    model.eval()
    for name in ("untrained", "trained"):
        if name == "trained":
            model = modeling.load_adapter(model, settings, settings.DATA_SET)
            model.eval()
        margins = margins_of(model, tokenizer, holdout, settings)
        print(f"margin_auc: {run} {settings.DATA_SET} {name}: AUC {auc(margins, gold):.3f} over {len(holdout)} holdout "
              f"rows; margin {min(margins):.2f} .. {max(margins):.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    run_folder = Path(sys.argv.pop(1))
    runtime.run(lambda settings: main(settings, run_folder), __doc__)
