"""Answer the first PREDICT_COUNT dev items with the fine-tuned model, one input at a time.

    python predict.py                        # questionB/result_<DATA_SET>.txt, one label a line
    python predict.py --split val            # score the labelled holdout: accuracy, MCC, F1, confusion matrix
    python predict.py --decode generate      # free decoding instead of comparing the label tokens

Loads MODEL_PATH + saved_model/<ds>/. By default each answer is the likelier of the label tokens "0" and
"1" right after the prompt (one forward pass, always a valid label); --decode generate lets the model
write freely and reads the label out of its text, counting answers that are not a label.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import adapters
import runtime
from runtime import UserError
from tasks import LabelFileLayout, decisions, format_metrics, label_counts, label_words, metrics, parse_label_file


def example_layout(settings, task_name: str) -> LabelFileLayout:
    """Mirror the layout (header, index column) of a result file for this task already in RESULT_DIR, if any."""
    folder = runtime.project_path(settings.RESULT_DIR)
    for path in sorted(folder.glob(f"result_{task_name}*.txt")):
        try:
            _, layout, _ = parse_label_file(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if layout != LabelFileLayout():
            print(f"mirroring the layout of {runtime.shown(path)} (header: {layout.header!r}, "
                  f"index from: {layout.index_start})")
            return layout
    return LabelFileLayout()


def check_answer_words(settings, record: dict, task_name: str) -> None:
    """The adapter answers with the words it was trained to give (run_record.json): scoring others reads noise."""
    trained = (record.get("settings") or {}).get("LABEL_WORDS", "0,1")
    if record and label_words(trained) != label_words(settings.LABEL_WORDS):
        raise UserError(f"{runtime.shown(runtime.adapter_dir(settings, task_name))} was trained to answer {trained} "
                        f"(LABEL_WORDS in its run_record.json), but LABEL_WORDS is {settings.LABEL_WORDS}: predict "
                        f"with --label_words {trained}, or set LABEL_WORDS in config.py and train again.")


def check_inputs(settings, record: dict, task_name: str, examples: list) -> None:
    """The pre_data predict is about to use is what the adapter was made for: the same data set and instruction, and
    a dev TSV that has not changed since data_process read it."""
    adapter = runtime.shown(runtime.adapter_dir(settings, task_name))
    if record.get("data_set") and record["data_set"] != task_name:
        return   # modeling.load_adapter says which data set the adapter is for, and what to do
    trained_with = record.get("instruction")
    if trained_with and examples and examples[0]["instruction"] != trained_with:
        raise UserError(f"pre_data/{task_name} was rebuilt with another instruction than {adapter} was trained with "
                        f"({examples[0]['instruction'][:60]!r} against {trained_with[:60]!r}): the adapter would read "
                        f"prompts it never saw. Train again (python train.py), or rebuild pre_data with the instruction "
                        f"it was trained with (--instruction, or INSTRUCTION in config.py).")
    source = runtime.pre_data_source(settings, task_name)
    dev_tsv = Path(source.get("dev_tsv", ""))
    if settings.SPLIT == "dev" and source and dev_tsv.is_file() and runtime.sha256_of(dev_tsv) != source.get("dev_sha256"):
        raise UserError(f"{dev_tsv} changed after data_process read it: pre_data/{task_name}/{task_name}_dev.json holds "
                        f"the old items, whose answers would not match the new file. Run python data_process.py again "
                        f"(the adapter can stay).")


def check_base_model(settings, record: dict, task_name: str, folder: Path) -> None:
    """MODEL_PATH holds the base model and tokenizer the adapter was trained on (run_record.json's fingerprints).
    Called by modeling.load_base_model once the folder itself has passed its checks, before the weights load."""
    trained_on = record.get("base_model_fingerprint") or {}
    now = runtime.model_fingerprint(folder) if trained_on else {}
    changed = sorted(name for name in set(trained_on) | set(now) if trained_on.get(name) != now.get(name))
    if changed and record.get("data_set", task_name) == task_name:
        raise UserError(f"{folder} is not the base model {runtime.shown(runtime.adapter_dir(settings, task_name))} "
                        f"was trained on ({', '.join(changed)} differ from {record.get('base_model')}): an adapter only "
                        f"fits the weights and tokenizer it was trained with. Point MODEL_PATH at that model, or train "
                        f"again on this one.")


def main(settings) -> None:
    task_name = settings.DATA_SET
    source = runtime.pre_data_file(settings, task_name, settings.SPLIT)
    examples = runtime.load_examples(source)
    if settings.SPLIT == "dev":
        if len(examples) < settings.PREDICT_COUNT:
            print(f"note: {source} has only {len(examples)} items, fewer than PREDICT_COUNT={settings.PREDICT_COUNT}")
        examples = examples[:settings.PREDICT_COUNT]

    record = adapters.read_run_record(runtime.adapter_dir(settings, task_name))
    check_answer_words(settings, record, task_name)
    check_inputs(settings, record, task_name, examples)
    threshold = float(record.get("decision_threshold") or 0.0) if settings.DECISION == "tuned" else 0.0
    import modeling   # torch and transformers load here, after the cheap checks

    model, tokenizer = modeling.load_base_model(settings, before_weights=partial(check_base_model, settings, record,
                                                                                 task_name))
    model = modeling.load_adapter(model, settings, task_name)
    # One input at a time, as the exam requires (batch_size=1: no padding, no interaction between items).
    labels, texts, truncated = modeling.answer_examples(
        model, tokenizer, examples, settings.MAX_LENGTH, decode=settings.DECODE,
        max_new_tokens=settings.MAX_NEW_TOKENS, batch_size=1, progress=f"{task_name} {settings.SPLIT}",
        words=label_words(settings.LABEL_WORDS), threshold=threshold,
    )
    if truncated:
        print(f"{truncated} inputs were longer than MAX_LENGTH={settings.MAX_LENGTH} tokens and were shortened")
    invalid = [i for i, label in enumerate(labels) if label is None]
    if invalid:
        print(f"{len(invalid)} answers were not a label, e.g. item {invalid[0]}: {texts[invalid[0]]!r}")

    if settings.SPLIT == "val":
        report_holdout(settings, examples, labels, texts, threshold)
    else:
        write_answers(settings, labels)


def report_holdout(settings, examples: list, labels: list, raw: list, threshold: float) -> None:
    """Accuracy, MCC, F1 and the confusion matrix on the labelled holdout, and what the threshold changed."""
    m = metrics([e["output"] for e in examples], labels)
    c = m["confusion"]
    print("confusion matrix (rows: true label, columns: predicted)")
    print(f"        pred 0  pred 1\n true 0 {c['tn']:>6}  {c['fp']:>6}\n true 1 {c['fn']:>6}  {c['tp']:>6}")
    if threshold and settings.DECODE == "labels":
        plain = metrics([e["output"] for e in examples], decisions(raw))
        print(f"  the likelier label (threshold 0): {format_metrics(plain)}")
        print(f"  with the decision threshold {threshold:+.3f} from training (what predict answers with):")
    print(f"predict: holdout {settings.DATA_SET} ({settings.DECODE}): {format_metrics(m)}")


def write_answers(settings, labels: list) -> None:
    """questionB/result_<ds>.txt, in the layout of a result file already there (if any)."""
    # An answer that is not a label still needs a line, or every later answer would shift: write the
    # majority answer there (it is wrong at most as often as a guess) and say so above.
    majority = max(("0", "1"), key=lambda label: labels.count(label))
    written = [label if label is not None else majority for label in labels]
    out = runtime.result_file(settings, settings.DATA_SET)
    with runtime.exclusive(out.parent, "predict.py"):
        runtime.remove_leftovers(out.parent)
        layout = example_layout(settings, settings.DATA_SET)
        runtime.write_atomically(out, layout.format(written))
    print(f"predict: wrote {len(written)} answers to {runtime.shown(out)} ({label_counts(written)})")


if __name__ == "__main__":
    runtime.run(main, __doc__)
