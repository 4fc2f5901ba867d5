"""Result formats of `crdb-py sql`: table, csv, tsv, json, records.

Each renderer takes column names and rows of Python values (as psycopg
returns them) and returns the text to print, ending in a newline:

    >>> print(render(["k", "v"], [(1, "a"), (2, None)], "csv"), end="")
    k,v
    1,a
    2,NULL

Values are shown the way psql shows them: NULL for None, ``t``/``f`` for
booleans, ``\\x…`` hex for bytes, ISO 8601 for times. ``table`` draws an
aligned ASCII table with `rich` and a ``(N rows)`` footer; ``records`` (also
what ``\\x`` turns ``table`` into) prints one ``-[ RECORD n ]`` block per row.
``json`` is a list of objects keyed by column name with JSON-native numbers,
booleans and nulls.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "tsv", "json", "records")


def text(v: Any) -> str:
    """One value as psql would print it."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, datetime.datetime | datetime.date | datetime.time):
        return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
    return str(v)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, decimal.Decimal):
        exp = v.as_tuple().exponent
        return int(v) if isinstance(exp, int) and exp >= 0 else float(v)
    if isinstance(v, dict | list):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    return text(v)


def _rows_word(n: int) -> str:
    return f"({n} row{'' if n == 1 else 's'})"


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.ASCII2, show_edge=False, pad_edge=True, highlight=False)
    for c in columns:
        t.add_column(c, overflow="fold", no_wrap=True)
    for r in rows:
        t.add_row(*(text(v) for v in r))
    buf = io.StringIO()
    width = max(80, sum(max([len(c), *(len(text(r[i])) for r in rows)]) + 3
                        for i, c in enumerate(columns)) + 4)
    Console(file=buf, width=width, color_system=None, legacy_windows=False,
            force_terminal=False, soft_wrap=False).print(t)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
    return "\n".join(lines) + f"\n{_rows_word(len(rows))}\n"


def render_delimited(columns: Sequence[str], rows: Sequence[Sequence[Any]], sep: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n",
                   quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
                   escapechar=None if sep == "," else "\\")
    w.writerow(columns)
    for r in rows:
        w.writerow([text(v) for v in r])
    return buf.getvalue()


def render_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    objs = [{c: _jsonable(v) for c, v in zip(columns, r)} for r in rows]
    return json.dumps(objs, indent=2, ensure_ascii=False) + "\n"


def render_records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "(0 rows)\n"
    width = max((len(c) for c in columns), default=0)
    out: list[str] = []
    for n, r in enumerate(rows, 1):
        out.append(f"-[ RECORD {n} ]")
        out.extend(f"{c.ljust(width)} | {text(v)}" for c, v in zip(columns, r))
    return "\n".join(out) + "\n"


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table", *,
           expanded: bool = False) -> str:
    """Render a result set; `expanded` (``\\x``) shows ``table`` as records."""
    if fmt == "table":
        return render_records(columns, rows) if expanded else render_table(columns, rows)
    if fmt == "csv":
        return render_delimited(columns, rows, ",")
    if fmt == "tsv":
        return render_delimited(columns, rows, "\t")
    if fmt == "json":
        return render_json(columns, rows)
    if fmt == "records":
        return render_records(columns, rows)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
