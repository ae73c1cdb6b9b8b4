"""Dev files read right or refused, by evidence: line 1 is data only if it looks like the rows below it in every
column; a text column of codes, or empty everywhere, is refused. Known layouts still read as before."""
from __future__ import annotations

from test_reliability_round2 import data, dev_sentences, fails_and_keeps, pre_data, process, written  # noqa: F401


def cola_raw_dev(sentences, first_line=None) -> str:
    """CoLA's own layout for a dev file: source code, empty label, empty annotation, sentence."""
    rows = "".join(f"gj04\t\t\t{s}\n" for s in sentences)
    return (first_line + "\n" if first_line else "") + rows


def test_a_chinese_header_over_colas_own_layout_is_refused(data, pre_data):
    (data / "CoLA_dev.tsv").write_text(cola_raw_dev(dev_sentences(data), "来源\t标签\t注释\t句子"), encoding="utf-8")
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv, line 1", "header this reader does not know"))


def test_a_header_over_ids_that_are_codes_is_refused(data, pre_data):
    qqp = data / "QQP_dev.tsv"
    rows = [line.split("\t") for line in qqp.read_text(encoding="utf-8").splitlines()[1:]]
    qqp.write_text("pair\tQuestion A\tQuestion B\n" + "".join(f"q{i:04d}\t{r[-2]}\t{r[-1]}\n" for i, r in enumerate(rows)),
                   encoding="utf-8")
    fails_and_keeps(data, pre_data, "--data_set", "QQP", needles=("QQP_dev.tsv, line 1", "'pair' in column 1",
                                                                  "short code or id"))


def test_a_file_of_two_lines_gets_the_header_checks_too(data, pre_data):
    (data / "CoLA_dev.tsv").write_text("nr\tphrase\n0\tThe cat sat on the mat.\n", encoding="utf-8")
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv, line 1", "header this reader does not know"))


def test_a_text_column_of_short_codes_is_refused(data, pre_data):
    (data / "CoLA_dev.tsv").write_text("".join(f"{i}\tab{i:03d}x\n" for i in range(40)), encoding="utf-8")
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv", "holds short codes", "looks like ids"))


def test_a_text_column_empty_everywhere_is_refused(data, pre_data):
    (data / "CoLA_dev.tsv").write_text("gj04\t\t\t\n" * 40, encoding="utf-8")
    fails_and_keeps(data, pre_data, needles=("CoLA_dev.tsv", "is empty on every row"))


def test_colas_own_layout_without_a_header_still_reads_every_row(data, pre_data):
    sentences = dev_sentences(data)
    (data / "CoLA_dev.tsv").write_text(cola_raw_dev(sentences), encoding="utf-8")
    assert process(data, pre_data).returncode == 0
    assert [e["input"] for e in written(pre_data, "dev")] == sentences
