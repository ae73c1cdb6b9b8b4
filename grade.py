"""Score your work the way the exam does, before you submit it.

    python grade.py                       # every data set with an answer file in ANSWER_DIR
    python grade.py --data_set CoLA --answer_dir /path/to/answers
    python grade.py --json                # the same report as JSON

Per data set: 10 points for well-formed pre_data JSON, 20 for a well-formed LoRA adapter in
saved_model/<ds>/, and 70 x the accuracy of questionB/result_<ds>.txt against ANSWER_DIR/result_<ds>*.txt
(e.g. result_CoLA_64.txt). The exam does not say how it combines data sets; this report gives each
data set's score out of 100 and their mean as the total, so each data set weighs the same.

Needs only Python: it reads safetensors headers itself instead of importing torch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import adapters
import runtime
from runtime import UserError
from tasks import LABELS, TASKS, format_metrics, metrics, task_named

EXPECTED_KEYS = {"instruction", "input", "output"}


def check_pre_data(settings, task_name: str) -> List[str]:
    """Reasons the pre_data JSON would lose its 10 points (empty when it is fine)."""
    reasons = []
    for split in ("train", "dev"):
        path = runtime.pre_data_file(settings, task_name, split)
        if not path.is_file():
            reasons.append(f"{runtime.shown(path)} is missing")
            continue
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            reasons.append(f"{runtime.shown(path)} is not valid UTF-8 JSON ({e})")
            continue
        if not isinstance(items, list) or not items:
            reasons.append(f"{runtime.shown(path)} is not a non-empty JSON list")
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != EXPECTED_KEYS or not all(isinstance(v, str) for v in item.values()):
                reasons.append(f"{runtime.shown(path)} item {i} is not an object with exactly the string keys "
                               f"instruction, input, output")
                break
            if split == "train" and item["output"] not in LABELS:
                reasons.append(f"{runtime.shown(path)} item {i} has output {item['output']!r}, not 0 or 1")
                break
    return reasons


def find_answer_file(settings, task_name: str) -> Optional[Path]:
    """ANSWER_FILE when given, else the one answer file for the task in ANSWER_DIR (result_<ds>*.txt, the data set
    named in any spelling data_process accepts: result_sst2.txt is SST-2's); two candidates are an error, never a
    silent pick."""
    if settings.ANSWER_FILE:
        path = runtime.project_path(settings.ANSWER_FILE)
        if not path.is_file():
            raise UserError(f"ANSWER_FILE {path} does not exist (or is not a file): give the path of the answer file "
                            f"for {task_name} with --answer_file PATH.")
        return path
    folder = runtime.project_path(settings.ANSWER_DIR)
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.glob("result_*.txt") if names_task(p.name, task_name))
    if len(found) > 1:
        raise UserError(f"{folder} holds {len(found)} answer files for {task_name}: {', '.join(p.name for p in found)}. "
                        f"Say which one to score: python grade.py --data_set {task_name} --answer_file "
                        f"{runtime.shown(found[0])} (or move the others away).")
    return found[0] if found else None


def names_task(file_name: str, task_name: str) -> bool:
    """Whether result_<name>[_anything].txt names the task: result_CoLA_64.txt, result_sst2.txt, result_SST-2.txt."""
    name = file_name[len("result_"):-len(".txt")]
    for end in [len(name)] + [i for i, c in enumerate(name) if c in "_."]:
        try:
            if task_named(name[:end]).name == task_name:
                return True
        except ValueError:
            continue
    return False


def score_answers(settings, gold_file: tuple, result: tuple, answer_path: Path, result_path: Path,
                  accuracy: dict) -> None:
    """Fill `accuracy` with the score of the result file's labels against the answer file's, line by line."""
    gold, _, gold_problems = gold_file
    predicted, _, problems = result
    if len(gold) > settings.PREDICT_COUNT:   # the exam asks for the first PREDICT_COUNT items: score those
        accuracy["notes"] = [f"the answer file has {len(gold)} answers; scored over the first "
                             f"{settings.PREDICT_COUNT} (PREDICT_COUNT), the items predict.py answers"]
        gold = gold[:settings.PREDICT_COUNT]
        gold_problems = [p for p in gold_problems if p.line <= settings.PREDICT_COUNT + 1]
    if gold_problems:
        accuracy["reasons"].append(f"answer file {answer_path.name}: " + "; ".join(map(str, gold_problems[:3])))
    n = len(gold)
    if len(predicted) != n:
        accuracy["reasons"].append(
            f"{runtime.shown(result_path)} has {len(predicted)} answers for {n} questions: "
            f"{'missing ones count as wrong' if len(predicted) < n else 'the extra ones are ignored'}")
    if problems:
        accuracy["reasons"].append(f"{runtime.shown(result_path)}: {len(problems)} unreadable lines, e.g. {problems[0]}")
    aligned = (predicted + [None] * n)[:n]
    scored = [(g, p) for g, p in zip(gold, aligned) if g is not None]
    m = metrics([g for g, _ in scored], [p for _, p in scored])
    accuracy.update(points=70 * m["accuracy"], metrics=m, summary=format_metrics(m),
                    mistakes=[{"item": i, "expected": g, "got": p} for i, (g, p) in enumerate(zip(gold, aligned))
                              if g != p][:5])


def grade_task(settings, task_name: str) -> dict:
    report = {"data_set": task_name}
    pre_reasons = check_pre_data(settings, task_name)
    adapter_reasons, adapter_notes = adapters.problems(runtime.adapter_dir(settings, task_name), task_name)
    report["pre_data"] = {"points": 0 if pre_reasons else 10, "of": 10, "reasons": pre_reasons}
    report["adapter"] = {"points": 0 if adapter_reasons else 20, "of": 20, "reasons": adapter_reasons,
                         "notes": adapter_notes}
    answer_path = find_answer_file(settings, task_name)
    result_path = runtime.result_file(settings, task_name)
    accuracy = {"points": 0.0, "of": 70, "reasons": [], "answer_file": str(answer_path) if answer_path else None}
    if answer_path is None:
        accuracy["reasons"].append(f"no answer file result_{task_name}*.txt in {runtime.project_path(settings.ANSWER_DIR)}")
    elif not result_path.is_file():
        accuracy["reasons"].append(f"{runtime.shown(result_path)} is missing: run python predict.py")
    else:
        try:
            score_answers(settings, runtime.read_label_file(answer_path), runtime.read_label_file(result_path),
                          answer_path, result_path, accuracy)
        except UserError as e:   # a file that holds no answers to read: 0 points, and why
            accuracy["reasons"].append(str(e))
    report["accuracy"] = accuracy
    report["total"] = report["pre_data"]["points"] + report["adapter"]["points"] + accuracy["points"]
    return report


def print_report(reports: List[dict], total: float) -> None:
    for report in reports:
        print(f"[{report['data_set']}]")
        for part, label in (("pre_data", "pre_data JSON"), ("adapter", "LoRA adapter"), ("accuracy", "accuracy")):
            item = report[part]
            why = "" if not item["reasons"] else "  <- " + "; ".join(item["reasons"])
            print(f"  {label:<14} {item['points']:6.2f} / {item['of']}{why}")
            for note in item.get("notes", []):
                print(f"  {'':<14} note: {note}")
        accuracy = report["accuracy"]
        if "summary" in accuracy:
            for mistake in accuracy["mistakes"]:
                print(f"    item {mistake['item']:>4}: expected {mistake['expected']}, got {mistake['got']}")
            print(f"  {accuracy['summary']}   (answers: {Path(accuracy['answer_file']).name})")
        print(f"  score {report['total']:.2f} / 100")
    print(f"grade: total {total:.2f} / 100 (mean of {', '.join(r['data_set'] for r in reports)})")


def main(settings) -> None:
    if "DATA_SET" in settings.OVERRIDDEN or settings.ANSWER_FILE:   # one answer file is for one data set
        names = [settings.DATA_SET]
    else:
        names = [name for name in TASKS if find_answer_file(settings, name)]
        if not names:   # no answer files: still check the structure of what exists
            names = [name for name in TASKS if runtime.pre_data_file(settings, name, "train").is_file()]
        if not names:
            raise UserError(
                f"nothing to grade: no answer files result_<dataset>*.txt in {runtime.project_path(settings.ANSWER_DIR)} "
                f"and no pre_data. Run data_process/train/predict first, or set --answer_dir."
            )
    reports = [grade_task(settings, name) for name in names]
    total = sum(r["total"] for r in reports) / len(reports)
    left_out = [f"{name} has work here ({', '.join(work)}) but no answer file result_{name}*.txt in "
                f"{runtime.shown(runtime.project_path(settings.ANSWER_DIR))}: it is not in the total"
                for name in TASKS if name not in names for work in [work_for(settings, name)] if work]
    if settings.JSON:
        print(json.dumps({"data_sets": reports, "total": total, "left_out": left_out}, indent=1, ensure_ascii=False))
    else:
        print_report(reports, total)
        for line in left_out:
            print(f"note: {line}")


def work_for(settings, task_name: str) -> List[str]:
    """What of a task's work exists: its pre_data, adapter and result file."""
    places = {"pre_data": runtime.pre_data_file(settings, task_name, "train"),
              "adapter": runtime.adapter_dir(settings, task_name) / "adapter_config.json",
              "result file": runtime.result_file(settings, task_name)}
    return [what for what, path in places.items() if path.is_file()]


if __name__ == "__main__":
    runtime.run(main, __doc__)
