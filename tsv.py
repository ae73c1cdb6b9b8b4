"""Reading the exam's TSV files: the layouts GLUE and the CoLA authors publish, told apart by header or field count,
with every doubt refused in one paragraph (a header this reader does not know, labels or ids where the text should be,
an encoding other than UTF-8). data_process.py and the lab read through it.
"""
from __future__ import annotations

import csv
import gc
import os
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from runtime import UserError
from tasks import LABELS, Task

# Column names we recognise in a header row, across GLUE's files.
HEADER_WORDS = {"index", "id", "qid1", "qid2", "sentence", "question1", "question2", "label", "is_duplicate"}
LABEL_COLUMNS = ("label", "is_duplicate")
CSV_QUOTED = {"QQP"}   # GLUE writes QQP with CSV quoting; in CoLA's raw files (and SST-2) quotes are literal text


class Row(NamedTuple):      # a tuple: a full-size QQP file is 364k of them
    line: int                 # 1-based line number in the file, for messages
    texts: List[str]          # the task's text fields, in task.text_fields order
    label: Optional[str]      # "0" / "1" for training rows, None for dev rows


@dataclass
class Layout:
    """Where a file keeps its text fields and label: column positions, plus whether line 1 is a header."""
    has_header: bool
    n_fields: int
    text_columns: Tuple[int, ...]
    label_column: Optional[int]
    description: str


def read_lines(path: Path) -> List[str]:
    """The file's lines, decoded strictly as UTF-8; a byte-order mark, CRLF endings and a missing final newline are fine.

    Anything else is named exactly, with the command that converts it: UTF-16 (with or without a byte-order mark),
    GBK or Windows-1252 bytes, old-Mac CR-only line endings.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise UserError(f"{path} is a link to {os.readlink(path)}, which does not exist: copy the real file "
                            f"there instead of the link.") from None
        raise UserError(f"{path} does not exist.") from None
    name = path.name
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path} is UTF-16 text (it starts with a UTF-16 byte-order mark); the files must be UTF-8. "
                        f"Convert it: iconv -f UTF-16 -t UTF-8 {name} > fixed.tsv, then use fixed.tsv.")
    utf16 = utf16_without_bom(data)
    if utf16:
        raise UserError(f"{path} looks like {utf16} text without a byte-order mark (every other byte is 0); the files "
                        f"must be UTF-8. Convert it: iconv -f {utf16} -t UTF-8 {name} > fixed.tsv, then use fixed.tsv.")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        encoding, iconv_name = guess_legacy_encoding(data)
        raise UserError(
            f"{path}, line {line}: bytes that are not UTF-8 ({data[e.start:e.start + 4]!r}); the file looks like "
            f"{encoding}. Save it as UTF-8: iconv -f {iconv_name} -t UTF-8 {name} > fixed.tsv, then use fixed.tsv."
        ) from None
    # The scans below look at the bytes, not the text: in UTF-8 these characters are these bytes, and a bytes
    # search is several times faster than a search of a text that holds wider characters.
    has_cr = b"\r" in data
    if has_cr and b"\n" not in data:
        raise UserError(f"{path} has old-Mac line endings (CR only, no line feed), so it reads as one line. Convert "
                        f"them: tr '\\r' '\\n' < {name} > fixed.tsv, then use fixed.tsv.")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise UserError(f"{path}, line {line}: a NUL character, which no text file holds: the file is damaged or not "
                        f"text. Put the exam's original file there.")
    lines = text.split("\n")
    while lines and not lines[-1].strip():   # trailing newline(s) at the end of the file
        lines.pop()
    if not lines:
        raise UserError(f"{path} is empty: it should hold tab-separated rows. Put the exam's file there.")
    if not has_cr:
        return lines
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def utf16_without_bom(data: bytes) -> Optional[str]:
    """"UTF-16LE" / "UTF-16BE" when the bytes look like mostly-ASCII UTF-16 (a 0 byte beside each character)."""
    sample = data[:4000]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "UTF-16LE"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "UTF-16BE"
    return None


def guess_legacy_encoding(data: bytes) -> Tuple[str, str]:
    """(what the non-UTF-8 bytes look like, iconv's name for it): GBK when every byte above 0x80 pairs up as a
    GB2312 character (Chinese), else Windows-1252 (Western accents and curly quotes, as Excel on Windows saves)."""
    pairs = strays = i = 0
    while i < len(data):
        if data[i] < 0x80:
            i += 1
        elif i + 1 < len(data) and 0xA1 <= data[i] <= 0xF7 and 0xA1 <= data[i + 1] <= 0xFE:
            pairs, i = pairs + 1, i + 2
        else:
            strays, i = strays + 1, i + 1
    if pairs and not strays:
        return "GBK (Chinese Windows)", "GBK"
    try:
        data.decode("cp1252")
        return "Windows-1252 (cp1252, Western Windows)", "CP1252"
    except UnicodeDecodeError:
        return "neither GBK nor Windows-1252 (check how it was saved)", "YOUR-ENCODING"


def unquote(field: str) -> str:
    """GLUE's QQP wraps some fields in CSV quotes with doubled inner quotes; give the text as a person reads it."""
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


LABEL_SPELLINGS = {"0": "0", "1": "1", "0.0": "0", "1.0": "1"}   # 1.0 / 0.0: labels saved by pandas as floats


def drop_trailing_empty_column(lines: List[str]) -> Tuple[List[str], bool]:
    """Lines without the empty last field that every one of them has (a tab at the end of each line)."""
    if all(line.endswith("\t") for line in lines):
        return [line[:-1] for line in lines], True
    return lines, False


def is_header(fields: Sequence[str]) -> bool:
    return any(f.strip().lower() in HEADER_WORDS for f in fields) and not any(f.strip() in LABEL_SPELLINGS for f in fields)


def looks_comma_separated(lines: List[str]) -> bool:
    """Whether tab-less lines split into the same number (2 or more) of CSV fields each, as a CSV file does."""
    counts = {len(next(csv.reader([line]))) for line in lines if line.strip()}
    return len(lines) >= 3 and len(counts) == 1 and counts.pop() >= 2


def find_layout(task: Task, path: Path, lines: List[str], labelled: bool) -> Layout:
    """Work out the file's layout: a header names the columns, else the usual field count of the first lines decides
    (the usual one, so that one malformed first row does not decide for the whole file)."""
    first = lines[0].split("\t")
    if is_header(first):
        names = [f.strip().lower() for f in first]
        try:
            text_columns = tuple(names.index(name) for name in task.text_fields)
        except ValueError:
            raise UserError(
                f"{path}, line 1: the header {first} has no column named "
                f"{' / '.join(n for n in task.text_fields if n not in names)}. A {task.name} file needs "
                f"{', '.join(task.text_fields)}{' and a label' if labelled else ''}."
            ) from None
        label_column = next((names.index(n) for n in LABEL_COLUMNS if n in names), None)
        if labelled and label_column is None:
            raise UserError(f"{path}, line 1: the header {first} has no label column ({' or '.join(LABEL_COLUMNS)}).")
        return Layout(True, len(first), text_columns, label_column if labelled else None,
                      "header: " + " | ".join(first))
    # No header: the layouts of the files GLUE and the CoLA authors publish, told apart by field count.
    n = Counter(line.count("\t") + 1 for line in lines[:50]).most_common(1)[0][0]
    if task.name == "CoLA":
        # train: source, label, annotation, sentence. dev: the same with an empty label, or fewer columns.
        known = {4: ((3,), 1, "source | label | annotation | sentence"),
                 3: ((2,), None, "source | annotation | sentence"),
                 2: ((1,), None, "id | sentence"),
                 1: ((0,), None, "sentence")}
    elif task.name == "QQP":
        known = {6: ((3, 4), 5, "id | qid1 | qid2 | question1 | question2 | is_duplicate"),
                 5: ((3, 4), None, "id | qid1 | qid2 | question1 | question2"),
                 3: ((1, 2), None, "id | question1 | question2")}
    else:  # SST-2
        known = {2: ((0,), 1, "sentence | label") if labelled else ((1,), None, "index | sentence"),
                 1: ((0,), None, "sentence")}
    if n == 1 and looks_comma_separated(lines[:50]):   # else a CSV would pass for one sentence a line
        raise UserError(
            f"{path}: no line has a tab, but every line has the same number of commas: the file looks comma-separated "
            f"(CSV). The files must be tab-separated: save it as TSV (e.g. pandas to_csv(sep='\\t')), then run again."
        )
    if n not in known or (labelled and known[n][1] is None):
        expected = " or ".join(f"{k} ({v[2]})" for k, v in known.items() if v[1] is not None or not labelled)
        hint = " It looks comma-separated: the files must be tab-separated." if "," in first[0] and n == 1 else ""
        raise UserError(
            f"{path}: most lines have {n} tab-separated field(s) and there is no header; a {task.name} "
            f"{'training' if labelled else 'dev'} file has {expected}.{hint}"
        )
    text_columns, label_column, description = known[n]
    return Layout(False, n, text_columns, label_column if labelled else None, description)


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector off while a file becomes rows: it would scan the growing list of new rows again and
    again (half the time of reading a full QQP file), and rows hold no cycles for it to find."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@without_cyclic_gc()
def read_rows(task: Task, path: Path, labelled: bool) -> Tuple[List[Row], Dict[int, str], int]:
    """Rows of a TSV file, plus the unreadable ones (line -> reason) and the number of data lines.

    Training rows that cannot be read are skipped and reported. A dev row that cannot be read is an
    error: dropping it would shift every later answer, and predict answers the first 150 by position.
    """
    lines, trailing = drop_trailing_empty_column(read_lines(path))
    if trailing:
        print(f"  note: every line of {path.name} ends with a tab (an empty last column): ignored")
    layout = find_layout(task, path, lines, labelled)
    start = 1 if layout.has_header else 0
    if start >= len(lines):
        raise UserError(f"{path} has a header but no rows. Put the exam's full file there.")
    rows: List[Row] = []
    bad: Dict[int, str] = {}
    # This loop runs once a row (364k for a full QQP): what does not change from row to row is worked out first.
    quoted = task.name in CSV_QUOTED
    n_fields, text_columns, label_column = layout.n_fields, layout.text_columns, layout.label_column
    new_row = Row._make
    for number, line in enumerate(lines[start:], start=start + 1):
        fields = line.split("\t")
        problem = None
        if len(fields) != n_fields:
            problem = f"{len(fields)} fields instead of {n_fields}"
        else:
            texts = [(unquote(fields[i]) if quoted and fields[i][:1] == '"' else fields[i]).strip() for i in text_columns]
            raw = fields[label_column].strip() if label_column is not None else None
            label = LABEL_SPELLINGS.get(raw, raw) if raw is not None else None
            if labelled and label not in LABELS:
                problem = f"label {raw!r} is not 0 or 1"
            elif labelled and not all(texts):
                problem = "empty text"
        if problem is None:
            rows.append(new_row((number, texts, label)))
        elif labelled:
            bad[number] = problem
        else:
            raise UserError(
                f"{path}, line {number}: {problem} (layout {layout.description}). Dev rows cannot be skipped, "
                f"because answers are matched to questions by position: fix this line, then run again."
            )
    check_layout(task, path, layout, lines, rows, labelled)
    return rows, bad, len(lines) - start


def check_layout(task: Task, path: Path, layout: Layout, lines: List[str], rows: List[Row], labelled: bool) -> None:
    """Stop when what was read contradicts the layout it was read with: a header this reader does not know taken
    for a row, labels or ids where the text should be, rows lost. A doubtful layout never passes silently."""
    how = (f"Give the file a first line naming its columns ({', '.join(task.text_fields)}"
           f"{', label' if labelled else ''}, tab-separated), or put its columns in the order {layout.description}.")
    read_as = f"it was read as {'a header, then ' if layout.has_header else ''}{layout.description}"
    if not layout.has_header and len(lines) >= 2:
        first = lines[0].split("\t")
        others = [line.split("\t") for line in lines[1:51]]
        for column in range(layout.n_fields if len(first) == layout.n_fields else 0):   # else a malformed row
            value = first[column].strip()
            below = Counter(shape(row[column]) for row in others if len(row) == layout.n_fields)
            usual, count = below.most_common(1)[0] if below else ("", 0)
            if below and below[shape(value)] == 0 and count >= 0.9 * sum(below.values()):
                if column in layout.text_columns and shape(value) == "word":
                    raise UserError(f"{path}, line 1: the text column {column + 1} holds the single word {value!r} "
                                    f"where the other rows hold sentences: line 1 looks like a header this reader does "
                                    f"not know ({read_as}). {how}")
                raise UserError(f"{path}, line 1: {value!r} in column {column + 1}, where every other row has "
                                f"{SHAPE_NAMES[usual]}: line 1 looks like a header this reader does not know ({read_as}, "
                                f"so it would become a row and shift every answer by one). {how}")
        for column in layout.text_columns:
            value = first[column].strip() if column < len(first) else ""
            texts = [row[column] for row in others if len(row) == layout.n_fields]
            words = [len(text.split()) for text in texts]
            if re.fullmatch(r"[A-Za-z_]+", value) and words and sum(n >= 2 for n in words) >= 0.9 * len(words):
                raise UserError(f"{path}, line 1: the text column {column + 1} holds the single word {value!r} where "
                                f"the other rows hold sentences: line 1 looks like a header this reader does not know "
                                f"({read_as}). {how}")
            if has_cjk(value) and texts and sum(map(has_cjk, texts)) < 0.1 * len(texts):
                raise UserError(f"{path}, line 1: the text column {column + 1} holds {value!r}, in another script than "
                                f"the rows below: line 1 looks like a header this reader does not know ({read_as}). "
                                f"{how}")
    for position, column in enumerate(layout.text_columns):
        texts = [row.texts[position] for row in rows[:500]]   # a sample: a full QQP file has 364k rows
        if texts and not any(row.texts[position] for row in rows):
            raise UserError(f"{path}: column {column + 1}, read as the {task.text_fields[position]} text, is empty on "
                            f"every row ({read_as}). {how}")
        if texts and sum(shape(t) == "code" for t in texts) >= 0.9 * len(texts):
            raise UserError(f"{path}: column {column + 1}, read as the {task.text_fields[position]} text, holds short "
                            f"codes such as {texts[0]!r}: it looks like ids ({read_as}). {how}")
        if texts and all(row.texts[position] in LABEL_SPELLINGS for row in rows):
            raise UserError(f"{path}: column {column + 1}, read as the {task.text_fields[position]} text, holds only 0 "
                            f"and 1: it looks like labels ({read_as}). {how}")
        if texts and all(row.texts[position].isdigit() for row in rows):
            raise UserError(f"{path}: column {column + 1}, read as the {task.text_fields[position]} text, holds only "
                            f"numbers: it looks like ids ({read_as}). {how}")


SHAPE_NAMES = {"blank": "nothing (or a mark such as *)", "number": "a number", "code": "a short code or id (gj04, q0001)",
               "word": "a single word", "text": "text of several words"}


def shape(value: str) -> str:
    """What kind of value a field holds, to compare line 1 with the rows below it column by column."""
    value = value.strip()
    if not any(c.isalnum() for c in value):
        return "blank"                     # empty, or an annotation mark such as * or ?*
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        return "number"
    if " " not in value and len(value) <= 16 and any(c.isdigit() for c in value):
        return "code"
    return "word" if " " not in value else "text"


def has_cjk(text: str) -> bool:
    return any("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in text)


def plain_name(name: str) -> str:
    """A file name without case, dashes or underscores: sst2_train.tsv, SST-2_train.tsv and CoLA_Train.tsv match."""
    return re.sub(r"[-_ ]", "", name.lower())


def find_file(folder: Path, task: Task, split: str) -> Path:
    """<ds>_<split>.tsv in folder, forgiving the case of the name (cola_train.tsv is fine)."""
    wanted = plain_name(f"{task.name}_{split}.tsv")
    for path in sorted(folder.iterdir()):
        if plain_name(path.name) == wanted:
            return path
    raise UserError(
        f"{folder / (task.name + '_' + split + '.tsv')} does not exist (the folder holds: "
        f"{', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}). Put the file there, or point "
        f"DATA_DIR at the folder that has it."
    )
