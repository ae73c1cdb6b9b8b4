"""The lab's report: the Markdown table (a summary by method and size, then every cell) and the plot of accuracy
against training-sample size, both made from the results CSV that lab/sweep.py writes."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Dict, List

METHODS = ("head", "lora", "zeroshot", "calibrated", "fewshot")
UNTRAINED = ("zeroshot", "calibrated")   # one cell per task (size 0): no sample, drawn as flat lines
COLUMNS = ["method", "size", "seed", "n_train", "n_eval", "accuracy", "mcc", "f1", "invalid", "predicted_1",
           "train_seconds", "steps", "batch", "epochs", "model", "note", "cell_seconds", "ms_per_item", "device",
           "depends"]


def summary(rows: List[Dict[str, str]]) -> List[dict]:
    """One line per method and size: mean and spread over seeds."""
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], int(r["n_train"]), r["size"]), []).append(r)
    lines = []
    for (method, n, size), group in sorted(groups.items()):
        acc = [float(r["accuracy"]) for r in group]
        mcc = [float(r["mcc"]) for r in group]
        lines.append({"method": method, "size": size, "n_train": n, "seeds": len(group),
                      "acc_mean": statistics.mean(acc), "acc_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                      "mcc_mean": statistics.mean(mcc),
                      "mcc_sd": statistics.stdev(mcc) if len(mcc) > 1 else 0.0,
                      "f1_mean": statistics.mean(float(r["f1"]) for r in group),
                      "invalid": ", ".join(r["invalid"] for r in group if r["invalid"]) or "–",
                      "seconds": statistics.mean(float(r["train_seconds"]) for r in group),
                      "cell_seconds": mean_of(group, "cell_seconds"), "ms_per_item": mean_of(group, "ms_per_item"),
                      "device": "/".join(sorted({r.get("device") or "–" for r in group})),
                      "epochs": "/".join(sorted({r["epochs"] for r in group})),
                      "collapsed": sum(r["note"].startswith("COLLAPSED") for r in group)})
    return lines


def mean_of(group: List[dict], column: str) -> str:
    """The mean of a column over seeds, or "–" for rows written before the column existed."""
    values = [float(r[column]) for r in group if r.get(column)]
    return f"{statistics.mean(values):.0f}" if values else "–"


def at_a_glance(lines: List[dict], column: str, digits: int) -> List[str]:
    """A method x size table of one score (mean over seeds), so the curves can be read side by side."""
    sizes = sorted({(line["n_train"], line["size"]) for line in lines if line["size"] != "0"})
    out = ["| method | untrained | " + " | ".join(size for _, size in sizes) + " |", "|---|" + "---:|" * (len(sizes) + 1)]
    for method in sorted({line["method"] for line in lines}):
        cell = {line["size"]: f"{line[column]:.{digits}f}" for line in lines if line["method"] == method}
        out.append(f"| {method} | {cell.get('0', '')} | " + " | ".join(cell.get(size, "") for _, size in sizes) + " |")
    return out


def markdown(task_name: str, rows: List[Dict[str, str]], eval_source: str, majority: float) -> str:
    lines = summary(rows)
    out = [f"# {task_name}: classification head vs LoRA vs prompting (zero-shot, calibrated, few-shot)\n",
           f"Eval set: {eval_source}; always answering the majority class scores {majority:.4f}.\n",
           "Accuracy by training-sample size (mean over seeds; `untrained`: zero-shot and calibrated, no sample; "
           "empty: not run):\n",
           *at_a_glance(lines, "acc_mean", 4), "", "MCC by training-sample size (mean over seeds):\n",
           *at_a_glance(lines, "mcc_mean", 3), "",
           "Mean ± standard deviation over seeds (accuracy and MCC on the eval set); `invalid` = answers in free "
           "generation that are not a label, as k/N on the first N eval rows (LLM methods); `collapsed` = seeds whose "
           "predictions were all one class; `cell s` = wall time of the whole cell (training and scoring), `ms/item` = "
           "that per eval item; `–` = not recorded (cells run before the cost columns existed).\n",
           "| method | size | n_train | seeds | accuracy | MCC | F1 | invalid | collapsed | epochs | train s | cell s | "
           "ms/item | device |",
           "|---|---|---:|---:|---|---|---:|---|---:|---|---:|---:|---:|---|"]
    for s in lines:
        several = s["seeds"] > 1
        accuracy = f"{s['acc_mean']:.4f}" + (f" ± {s['acc_sd']:.4f}" if several else "")
        mcc = f"{s['mcc_mean']:.3f}" + (f" ± {s['mcc_sd']:.3f}" if several else "")
        out.append(f"| {s['method']} | {s['size']} | {s['n_train']} | {s['seeds']} | {accuracy} | {mcc} | {s['f1_mean']:.3f} "
                   f"| {s['invalid']} | {s['collapsed']} | {s['epochs']} | {s['seconds']:.0f} | {s['cell_seconds']} "
                   f"| {s['ms_per_item']} | {s['device']} |")
    out += ["\n## Every cell\n", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(r.get(c) or "" for c in COLUMNS) + " |" for r in rows]
    return "\n".join(out) + "\n"


def plot(task_name: str, rows: List[Dict[str, str]], majority: float, path: Path) -> None:
    """Accuracy (left) and MCC (right) against the sample size: one line per method, min-max over seeds."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no plot (pip install matplotlib)")
        return
    sizes = sorted({int(r["n_train"]) for r in rows if int(r["n_train"]) > 0})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, metric, name, floor in ((axes[0], "accuracy", "accuracy", majority), (axes[1], "mcc", "MCC", 0.0)):
        for method, color in zip(METHODS, ("tab:blue", "tab:orange", "tab:green", "tab:olive", "tab:purple")):
            mine = [r for r in rows if r["method"] == method]
            if not mine:
                continue
            if method in UNTRAINED:
                ax.axhline(float(mine[0][metric]), linestyle="--", color=color, label=f"{method} (no training)")
                continue
            by_size: Dict[int, List[float]] = {}
            for r in mine:
                by_size.setdefault(int(r["n_train"]), []).append(float(r[metric]))
            x = sorted(by_size)
            mean = [statistics.mean(by_size[n]) for n in x]
            spread = [[m - min(by_size[n]) for m, n in zip(mean, x)], [max(by_size[n]) - m for m, n in zip(mean, x)]]
            ax.errorbar(x, mean, yerr=spread, marker="o", capsize=4, color=color, label=f"{method} (mean, min–max over seeds)")
            for r in mine:
                collapsed = r["note"].startswith("COLLAPSED")
                ax.plot(int(r["n_train"]), float(r[metric]), "x" if collapsed else ".", zorder=3,
                        color="red" if collapsed else "grey", markersize=9 if collapsed else 6)
        ax.axhline(floor, linestyle=":", color="grey",
                   label="always the majority class" if metric == "accuracy" else "no better than chance")
        if any(r["note"].startswith("COLLAPSED") for r in rows):
            ax.plot([], [], "x", color="red", label="a run whose answers were all one class")
        ax.set_xscale("log")
        if sizes:
            ax.set_xticks(sizes)
            ax.set_xticklabels([str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training examples (log scale)")
        ax.set_ylabel(f"{name} on the eval set")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"{task_name}: scores on the eval set vs training-sample size")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- the three methods -------------------------------------------------------------------------------
