"""Plumbing every script shares: settings from config.py and the command line, project paths, clear
errors, atomic writes, locks and run records. No torch here, so the light scripts start fast.
"""
from __future__ import annotations

import difflib
import errno
import fcntl
import gc
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator, List, Optional

import config
from tasks import label_words, parse_label_file, read_label, task_named

ROOT = Path(__file__).resolve().parent
EXAM_DATA_DIR = Path("/home/aiservice/worksapce/data/questionBData")   # sic: the exam machine's spelling
EXAM_MODEL_DIR = Path("/home/aiservice/worksapce/model/gemma-2b")


class UserError(Exception):
    """A problem the user can fix: printed as one paragraph without a stack trace, exit code 2."""


# --- settings ---------------------------------------------------------------------------------------

def defaults() -> dict:
    return {name: value for name, value in vars(config).items() if name.isupper()}


def _convert(name: str, text: str, default):
    """`text` as the type of the default: an int is fine where a float is expected, bools take yes/no."""
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UserError(f"--{name.lower()} takes true or false, not {text!r}.")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise UserError(f"--{name.lower()} takes a whole number (default {default}), not {text!r}.") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise UserError(f"--{name.lower()} takes a number (default {default}), not {text!r}.") from None
    return text


def load_settings(argv: Optional[List[str]] = None, doc: str = "") -> SimpleNamespace:
    """config.py's settings with `--name value`, `--name=value` or a bare `--flag` from argv applied."""
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = defaults()
    overridden = set()
    if any(arg in ("-h", "--help") for arg in argv):
        print(textwrap.dedent(doc).strip() + "\n\nSettings (config.py; override with --name value):")
        for name, value in settings.items():
            print(f"  --{name.lower():<24} {value!r}")
        raise SystemExit(0)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise UserError(f"unexpected argument {arg!r}: settings are given as --name value (see --help).")
        name, has_value, value = arg[2:].partition("=")   # split on the first "=" only
        key = name.upper().replace("-", "_")
        if key not in settings:
            close = difflib.get_close_matches(key, list(settings), n=1)
            hint = f" Did you mean --{close[0].lower()}?" if close else ""
            valid = ", ".join(n.lower() for n in settings)
            raise UserError(f"unknown setting --{name}.{hint} Valid settings: {valid}.")
        default = settings[key]
        if not has_value:
            next_is_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            if isinstance(default, bool) and not next_is_value:
                settings[key] = True
                overridden.add(key)
                i += 1
                continue
            if not next_is_value:
                raise UserError(f"--{name} needs a value, e.g. --{name} {default!r}.")
            value = argv[i + 1]
            i += 1
        settings[key] = _convert(key, value, default)
        overridden.add(key)
        i += 1
    try:
        settings["DATA_SET"] = task_named(settings["DATA_SET"]).name   # "cola" is CoLA
    except ValueError as e:
        raise UserError(f"DATA_SET: {e} Set DATA_SET in config.py, or pass --data_set NAME.") from None
    try:
        label_words(settings["LABEL_WORDS"])
    except ValueError as e:
        raise UserError(f"{e} Set it in config.py for every script, so that they agree.") from None
    check_settings(settings)
    return SimpleNamespace(OVERRIDDEN=overridden, **settings)


# Every setting with a limit: what a valid value is, checked before any file is read or any model loaded.
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau")   # what both the exam's transformers 4.38.1 and today's know
RULES = {
    "HOLDOUT_SIZE": (lambda v: v >= 0, "0 or more, e.g. 400"),
    "MAX_BAD_SHARE": (lambda v: 0 <= v <= 1, "a share from 0 to 1, e.g. 0.05"),
    "SEED": (lambda v: 0 <= v < 2 ** 32, "a whole number from 0 to 4294967295, e.g. 42"),
    "PRECISION": (lambda v: v in ("auto", "bf16", "fp32"), "auto, bf16 or fp32 (fp16 overflows in Gemma)"),
    "LORA_R": (lambda v: v >= 1, "a rank of 1 or more, e.g. 16"),
    "LORA_ALPHA": (lambda v: v > 0, "a positive number, e.g. 32"),
    "LORA_DROPOUT": (lambda v: 0 <= v < 1, "a share from 0 to below 1, e.g. 0.05"),
    "LORA_TARGETS": (lambda v: bool([t for t in v.split(",") if t.strip()]), "module names, e.g. q_proj,v_proj"),
    "LORA_PLUS_RATIO": (lambda v: 0 < v <= 1000, "a positive multiple of LEARNING_RATE, e.g. 16 (1 = off)"),
    "EPOCHS": (lambda v: v >= 0, "0 or more, e.g. 2 (0 only with MAX_STEPS above 0)"),
    "LEARNING_RATE": (lambda v: 0 < v < 1, "a positive number below 1, e.g. 2e-4"),
    "BATCH_SIZE": (lambda v: v >= 1, "1 or more, e.g. 8"),
    "GRAD_ACCUM": (lambda v: v >= 1, "1 or more, e.g. 2"),
    "WARMUP_RATIO": (lambda v: 0 <= v <= 1, "a share from 0 to 1, e.g. 0.05"),
    "WEIGHT_DECAY": (lambda v: v >= 0, "0 or more, e.g. 0.0"),
    "LR_SCHEDULER": (lambda v: v in SCHEDULERS, "one of " + ", ".join(SCHEDULERS)),
    "MAX_LENGTH": (lambda v: v >= 16, "16 tokens or more, e.g. 256"),
    "PROMPT_LOSS_WEIGHT": (lambda v: 0 <= v <= 1, "from 0 (the answer only) to 1 (every token alike), e.g. 0.1"),
    "EVALS_PER_EPOCH": (lambda v: v >= 1, "1 or more, e.g. 4"),
    "KEEP_LATEST_WITHIN": (lambda v: 0 <= v <= 10, "standard errors from 0 (the best check) to 10, e.g. 1"),
    "THRESHOLD_MIN_GAIN": (lambda v: 0 <= v <= 1, "a share of the holdout from 0 to 1, e.g. 0.02"),
    "COLLAPSE_MCC": (lambda v: -1 <= v <= 1.01, "an MCC from -1 to 1, e.g. 0.1"),
    "RESTARTS": (lambda v: v >= 0, "0 or more, e.g. 2"),
    "RESTART_LR_FACTOR": (lambda v: 0 < v <= 1, "above 0 and at most 1, e.g. 0.5"),
    "TRAIN_BUDGET_MINUTES": (lambda v: v >= 0, "0 or more minutes, e.g. 60"),
    "LOGGING_STEPS": (lambda v: v >= 1, "1 or more, e.g. 10"),
    "AVERAGE_LAST_CHECKS": (lambda v: v >= 0, "0 (the check the holdout picks) or the number of last checks to average"),
    "PREDICT_COUNT": (lambda v: v >= 1, "1 or more, e.g. 150"),
    "SPLIT": (lambda v: v in ("dev", "val"), "dev (write the result file) or val (score the holdout)"),
    "DECODE": (lambda v: v in ("labels", "generate"), "labels or generate"),
    "DECISION": (lambda v: v in ("tuned", "plain"), "tuned (the holdout's threshold) or plain (the likelier label)"),
    "MAX_NEW_TOKENS": (lambda v: v >= 1, "1 or more, e.g. 5"),
}


def check_settings(settings: dict) -> None:
    """Refuse a setting out of its range, or settings that cannot work together, in one paragraph each."""
    for name, (valid, what) in RULES.items():
        if name in settings and not valid(settings[name]):
            raise UserError(f"{name}={settings[name]!r} cannot work: use {what} (config.py, or --{name.lower()} VALUE).")
    if settings.get("EPOCHS") == 0 and settings.get("MAX_STEPS", 0) <= 0:
        raise UserError("EPOCHS=0 with MAX_STEPS -1 trains nothing: give EPOCHS 1 or more (--epochs 2), or a number of "
                        "optimiser steps (--max_steps 500).")


# --- paths ------------------------------------------------------------------------------------------

def project_path(path: str) -> Path:
    """A setting's path, relative paths taken from the project folder."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def data_dir(settings: SimpleNamespace) -> Path:
    if settings.DATA_DIR:
        folder = project_path(settings.DATA_DIR)
    else:
        local = ROOT / "data" / "questionBData"
        folder = local if local.is_dir() else EXAM_DATA_DIR
    if not folder.is_dir():
        raise UserError(
            f"the data folder {folder} does not exist. Put <dataset>_train.tsv and <dataset>_dev.tsv in "
            f"data/questionBData/ here, or set DATA_DIR in config.py (or --data_dir PATH)."
        )
    return folder


def model_dir(settings: SimpleNamespace) -> Path:
    if settings.MODEL_PATH:
        return project_path(settings.MODEL_PATH)
    local = ROOT / "models" / "gemma-2b"
    return local if local.is_dir() else EXAM_MODEL_DIR


def pre_data_file(settings: SimpleNamespace, task_name: str, split: str) -> Path:
    """pre_data/<ds>/<ds>_<split>.json for split train | dev | val."""
    return project_path(settings.PRE_DATA_DIR) / task_name / f"{task_name}_{split}.json"


def adapter_dir(settings: SimpleNamespace, task_name: str) -> Path:
    return project_path(settings.SAVED_MODEL_DIR) / task_name


def checkpoint_step(checkpoint) -> int:
    """The optimiser step of a Trainer checkpoint folder (checkpoints/<ds>/checkpoint-500 -> 500)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def complete_checkpoints(folder: Path) -> list:
    """The Trainer checkpoints in folder, in step order, that are complete: trainer_state.json is written in full (it
    comes after the weights and the optimiser), so one a run killed while saving left behind is passed over."""
    complete = [c for c in folder.glob("checkpoint-*")
                if c.name.split("-")[-1].isdigit() and holds_json(c / "trainer_state.json")]
    return sorted(complete, key=checkpoint_step)


def holds_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):   # missing, or cut short by a kill
        return False


def shown(path: Path) -> str:
    """A path as short as it can be told: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except (ValueError, RuntimeError, OSError):   # outside the project, or a link that loops
        return str(path)


def result_file(settings: SimpleNamespace, task_name: str) -> Path:
    return project_path(settings.RESULT_DIR) / f"result_{task_name}.txt"


# --- files ------------------------------------------------------------------------------------------

TEMPORARY_SUFFIX = ".tmp"   # write_atomically's unfinished files, and the staging folders below
STAGING_PREFIX = ".staging-"


def through_links(path: Path) -> Path:
    """Where a path really leads. An output behind a symbolic link is written where the link points, so the link,
    and the file or folder it names, stay what the user made of them."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):   # Python < 3.13 raises RuntimeError on a loop
        raise UserError(f"{path} is a symbolic link that leads back to itself: replace it with a real folder or "
                        f"file (ls -l {path}).") from None


def readable_by_all(path: Path) -> None:
    """0644 for a file, 0755 for a folder and everything in it: the exam's grader reads them as another user."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(item, 0o755 if item.is_dir() else 0o644)


def write_atomically(path: Path, data: str) -> None:
    """Write the whole text or nothing: a crash leaves the old file, never a half-written one."""
    path = through_links(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp makes it private to its owner; the grader reads it as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path) -> int:
    """Delete what a run killed outright (SIGKILL, power cut) left in folder: unfinished temporary files and
    staging folders. Call it holding the folder's lock, so no running run's files are taken. Returns how many."""
    if not folder.is_dir():
        return 0
    found = [p for p in folder.iterdir() if p.name.startswith(".") and
             (p.name.endswith(TEMPORARY_SUFFIX) or p.name.startswith(STAGING_PREFIX))]
    for path in found:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return len(found)


def replace_folder(new: Path, final: Path) -> None:
    """Put a complete new folder in place of final, whole: every file of the old one or every file of the new.

    Two renames: final -> final.old, new -> final. A run killed between them leaves final.old and no final, and
    the next call (or restore_folder) puts final.old back first.
    """
    final = through_links(final)
    readable_by_all(new)
    restore_folder(final)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is where this folder belongs", str(final))
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def restore_folder(final: Path) -> None:
    """Undo a replace_folder cut short between its two renames: the old folder is the complete one."""
    old = final.with_name(final.name + ".old")
    if old.exists() and not final.exists():
        old.rename(final)


# One encoder for every item: json.dumps with an argument builds a new encoder on each call (a third of the time).
ENCODE_JSON = json.JSONEncoder(ensure_ascii=False).encode


def write_json(path: Path, obj) -> None:
    """obj as UTF-8 JSON; a list one item a line (readable, and json's C encoder: indent= runs its Python one)."""
    if isinstance(obj, list) and obj:
        text = "[\n" + ",\n".join(map(ENCODE_JSON, obj)) + "\n]\n"
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
    write_atomically(path, text)


def read_label_file(path: Path) -> tuple:
    """(labels, layout, problems) of an answer or result file, or a UserError that says why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(file_system_message(e)) from None
    if not data.strip():
        raise UserError(f"{shown(path)} is empty: it holds no answers.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in data[:200]:
        raise UserError(f"{shown(path)} is UTF-16 (or another encoding with zero bytes): save it as UTF-8, "
                        f"one label a line.")
    text = data.decode("utf-8", errors="replace")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if "," in first and "\t" not in first and len(first.split(",")) > 1 and all(
            read_label(part) is not None or part.strip().isdigit() for part in first.split(",") if part.strip()):
        raise UserError(f"{shown(path)} is comma-separated ({first[:40]!r}): write one label a line, or "
                        f"index<TAB>label.")
    return parse_label_file(text)


# What data_process built pre_data/<ds>/ from (the TSVs' paths and hashes, the instruction, the label words), beside
# the JSON files but not named *.json: the exam's checks of pre_data see the Alpaca files only.
SOURCE_RECORD = ".source"


def pre_data_source(settings: SimpleNamespace, task_name: str) -> dict:
    """pre_data/<ds>/.source, or {} for pre_data from elsewhere (nothing to compare)."""
    path = pre_data_file(settings, task_name, "train").parent / SOURCE_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def model_fingerprint(folder: Path) -> dict:
    """sha256 of the files that say what a model folder is: its configuration and its tokenizer."""
    names = ("config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json")
    return {name: sha256_of(folder / name) for name in names if (folder / name).is_file()}


def load_examples(path: Path) -> list:
    """The examples of a pre_data JSON file, or a clear error saying to run data_process.py."""
    if not path.is_file():
        raise UserError(f"{path} does not exist: run python data_process.py first.")
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}); run python data_process.py again.") from None
    if not isinstance(examples, list) or not examples:
        holdout = " with --holdout_size above 0 (train keeps the adapter that scores best on it)" \
            if path.name.endswith("_val.json") else ""
        raise UserError(f"{path} holds no examples; run python data_process.py again{holdout}.")
    return examples


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def exclusive(folder: Path, what: str = "", wait: bool = False) -> Iterator[None]:
    """Refuse a second run writing into `folder` at the same time (or, with wait, queue behind it: for quick
    read-modify-write steps such as adding a row to a shared table).

    The lock is the kernel's (flock on the folder itself): it leaves no file behind, and it ends with the process
    that holds it, however that process ends, so a stale lock cannot exist and two runs can never both go on.
    """

    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another {what} is writing into {folder} right now. Wait for it to finish, or stop it, then run "
                f"again."
            ) from None
        yield
    finally:
        os.close(descriptor)   # closing releases the lock


def package_versions(names=("python", "torch", "transformers", "peft", "accelerate", "datasets",
                            "tokenizers", "sentencepiece", "numpy")) -> dict:
    versions = {}
    for name in names:
        if name == "python":
            versions[name] = sys.version.split()[0]
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --- running a script -------------------------------------------------------------------------------

def file_system_message(error: OSError) -> str:
    """What an OSError means for the user, the path it concerns and what to do, in one paragraph."""
    path = error.filename or "a file"
    other = f" (and {error.filename2})" if getattr(error, "filename2", None) else ""
    where = Path(str(path)).parent if error.filename else "the folder"
    advice = {
        errno.EACCES: f"permission denied. Make it readable/writable for you (ls -l {path}; chmod u+rw), or point the "
                      f"setting for that folder (--pre_data_dir, --saved_model_dir, --result_dir, --data_dir) elsewhere.",
        errno.EPERM: "the operating system does not allow this operation there. Use a folder you own (e.g. under "
                     "your home folder) with the setting for that folder.",
        errno.EROFS: "the file system holding it is read-only. Copy the project to a writable folder, or point the "
                     "output settings (--pre_data_dir, --saved_model_dir, --result_dir) at one.",
        errno.ENOSPC: f"no space is left on the disk holding {where}. Free some space (df -h {where}) and run again; "
                      f"the files already there were not replaced.",
        errno.EDQUOT: f"your disk quota is used up on the disk holding {where}. Free some space and run again.",
        errno.ENOTDIR: "a part of this path is a file, not a folder. Move that file away or choose another folder.",
        errno.EEXIST: "a file is in the way where a folder is needed. Move that file away or choose another folder.",
        errno.EISDIR: "this is a folder, where a file is needed. Give the path of the file (or move the folder away).",
        errno.ENOENT: f"it does not exist (or is a link to something that no longer exists: ls -l {path}).",
        errno.ELOOP: "it is a link that leads back to itself. Replace it with the real file or folder.",
        errno.ENAMETOOLONG: "the path is too long for the file system. Use a shorter folder name.",
    }.get(error.errno, "check that the path exists and that you may read and write there.")
    return f"{path}{other}: {error.strerror or type(error).__name__}: {advice}"

def run(main: Callable[[SimpleNamespace], None], doc: str) -> None:
    """Run a script's main(settings): user errors as one paragraph (exit 2), Ctrl-C as one line (exit 130)."""
    # SIGTERM (a scheduler, `kill`) gets the same clean exit as Ctrl-C: temp files removed, locks freed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    script = Path(sys.argv[0]).name
    try:
        main(load_settings(doc=doc))
        return
    except UserError as e:
        failure, code = f"error: {e}", 2
    except OSError as e:   # the file system said no: one paragraph that names the path, never a traceback
        failure, code = f"error: {file_system_message(e)}", 2
    except KeyboardInterrupt:
        failure, code = "interrupted; files already written are complete, nothing is half-written.", 130
    # Out of the except blocks the failed frames can be freed: their progress bars close now, not after the message.
    gc.collect()
    print(f"\n{script}: {failure}", file=sys.stderr)
    raise SystemExit(code)
