"""Output formats of `crdb-py sql` (`crdb_py/cli/format.py`)."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json

import pytest

from crdb_py.cli.format import FORMATS, render, text

COLS = ["id", "owner", "balance"]
ROWS = [(1, "alice, jr", decimal.Decimal("10.50")), (2, None, decimal.Decimal("7")), (3, "bob", None)]


def test_text_of_values_is_psql_like() -> None:
    assert text(None) == "NULL"
    assert text(True) == "t" and text(False) == "f"
    assert text(b"\x01\xff") == "\\x01ff"
    assert text(datetime.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert text(decimal.Decimal("1.50")) == "1.50"


def test_table_is_aligned_with_row_count() -> None:
    out = render(COLS, ROWS, "table")
    lines = out.splitlines()
    assert lines[0].split("|")[0].strip() == "id" and "owner" in lines[0]
    assert set(lines[1]) <= {"-", "+"}
    # every data line has the separators at the same columns as the header
    bars = [i for i, ch in enumerate(lines[0]) if ch == "|"]
    for ln in lines[2:5]:
        assert [i for i, ch in enumerate(ln) if ch == "|"] == bars
    assert "alice, jr" in lines[2] and "NULL" in lines[3]
    assert lines[-1] == "(3 rows)"
    assert render(["x"], [(1,)], "table").splitlines()[-1] == "(1 row)"


def test_csv_round_trips_through_the_csv_module() -> None:
    got = list(csv.reader(io.StringIO(render(COLS, ROWS, "csv"))))
    assert got == [COLS, ["1", "alice, jr", "10.50"], ["2", "NULL", "7"], ["3", "bob", "NULL"]]


def test_tsv_has_tabs_and_no_quotes() -> None:
    lines = render(COLS, ROWS, "tsv").splitlines()
    assert lines[0] == "id\towner\tbalance"
    assert lines[1] == "1\talice, jr\t10.50"


def test_json_is_a_list_of_objects_with_native_types() -> None:
    got = json.loads(render(COLS, ROWS, "json"))
    assert got == [
        {"id": 1, "owner": "alice, jr", "balance": 10.5},
        {"id": 2, "owner": None, "balance": 7},
        {"id": 3, "owner": "bob", "balance": None},
    ]


def test_records_and_expanded_table() -> None:
    out = render(COLS, ROWS[:2], "records")
    assert out.splitlines()[:4] == ["-[ RECORD 1 ]", "id      | 1", "owner   | alice, jr",
                                    "balance | 10.50"]
    assert "-[ RECORD 2 ]" in out
    assert render(COLS, ROWS[:2], "table", expanded=True) == out
    assert render(COLS, [], "records") == "(0 rows)\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_handles_an_empty_result(fmt: str) -> None:
    out = render(["a", "b"], [], fmt)
    assert out.endswith("\n")
    if fmt == "json":
        assert json.loads(out) == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(["a"], [(1,)], "xml")
