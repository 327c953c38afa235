"""The one id-list reader (avbench.data.id_lists): formats tolerated and errors raised."""

from __future__ import annotations

import pytest

from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import read_id_rows, read_ids


def test_plain_list_and_csv_with_quoted_class(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("  abc_000001 \n\nabc_000002\nabc_000001\n")
    assert read_ids(txt) == ["abc_000001", "abc_000002", "abc_000001"]  # order, duplicates kept
    csv_ = tmp_path / "heard.csv"
    csv_.write_text('id,class\n# a comment\nx_000001,"male speech, man speaking"\ny_000002,dog\n')
    assert read_id_rows(csv_) == [("x_000001", ["male speech, man speaking"]), ("y_000002", ["dog"])]


def test_tab_separated_and_header_only_first(tmp_path):
    tsv = tmp_path / "l.tsv"
    tsv.write_text("video_id\tlabel\nv1\tdog\nv2\tcat\n")
    assert read_id_rows(tsv) == [("v1", ["dog"]), ("v2", ["cat"])]
    later = tmp_path / "later.txt"
    later.write_text("a\nid\n")  # a header word after the first row is an id
    assert read_ids(later) == ["a", "id"]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist") as err:
        read_ids(tmp_path / "missing.txt")
    assert isinstance(err.value, FileNotFoundError)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,x\n,y\n")
    with pytest.raises(AnnotationError, match=r"bad\.csv.*line 2: empty id"):
        read_ids(bad)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(AnnotationError, match="UTF-8"):
        read_ids(latin)
