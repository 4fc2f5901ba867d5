"""COPY ... FROM STDIN / COPY ... TO STDOUT: the statement and its data formats.

The wire side (CopyInResponse 'G', CopyData 'd', CopyDone 'c', CopyFail
'f'; CopyOutResponse 'H') lives in crdb_py/pgwire/server.py; this module
parses the statement and converts rows to and from PostgreSQL's two text
formats:

* ``text`` (the default): one row per line, columns split by a tab (or
  DELIMITER), ``\\N`` is NULL, backslash escapes (``\\t \\n \\r \\\\`` and
  friends); a line ``\\.`` ends the data;
* ``csv``: RFC 4180 DELIMITER ',' by default, an
  unquoted empty field is NULL (NULL 'x' changes that), HEADER skips (in)
  or writes (out) the column names.

Rows go into the table as parameterised multi-row INSERTs whose parameters
are the field *texts*: the SQL layer's assignment casts type them exactly as
it types any text parameter. BINARY format is refused (0A000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = r'(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?'
_FROM = re.compile(rf"^COPY\s+(?P<table>{_IDENT})\s*(?:\((?P<cols>[^)]*)\))?\s+FROM\s+STDIN"
                   r"(?P<opts>.*)$", re.I | re.S)
_TO = re.compile(rf"^COPY\s+(?:(?P<table>{_IDENT})\s*(?:\((?P<cols>[^)]*)\))?|\((?P<query>.+)\))"
                 r"\s+TO\s+STDOUT(?P<opts>.*)$", re.I | re.S)
_COPY = re.compile(r"^\s*COPY\b", re.I)


class CopyError(Exception):
    """A COPY statement or its data is wrong; carries the SQLSTATE."""

    def __init__(self, sqlstate: str, msg: str) -> None:
        super().__init__(msg)
        self.sqlstate = sqlstate


@dataclass(frozen=True, slots=True)
class CopySpec:
    direction: str  # "in" | "out"
    table: str = ""
    columns: tuple[str, ...] = ()  # () = every visible column
    query: str = ""  # COPY (query) TO STDOUT
    csv: bool = False
    header: bool = False
    delimiter: str = "\t"
    null: str = "\\N"


def is_copy(sql: str) -> bool:
    return bool(_COPY.match(sql))


def parse(sql: str) -> CopySpec:
    """The COPY statement `sql` (CopyError 42601 / 0A000 if unsupported)."""
    text = sql.strip().rstrip(";").strip()
    m = _FROM.match(text)
    direction = "in"
    if m is None:
        m = _TO.match(text)
        direction = "out"
    if m is None:
        raise CopyError("0A000", "unimplemented: only COPY ... FROM STDIN and COPY ... TO STDOUT "
                                 "are supported (no files on the server)")
    opts = _options(m.group("opts") or "")
    fmt = opts.get("format", "text")
    if fmt == "binary":
        raise CopyError("0A000", "unimplemented: COPY in BINARY format")
    if fmt not in ("text", "csv"):
        raise CopyError("22023", f"COPY format {fmt!r} not recognized")
    is_csv = fmt == "csv"
    delimiter = opts.get("delimiter", "," if is_csv else "\t")
    if len(delimiter) != 1:
        raise CopyError("22023", "COPY delimiter must be a single one-byte character")
    if opts.get("header") and not is_csv:
        raise CopyError("0A000", "COPY HEADER available only in CSV mode")
    cols = tuple(c.strip().strip('"') for c in (m.group("cols") or "").split(",") if c.strip())
    query = (m.groupdict().get("query") or "").strip()
    return CopySpec(direction, (m.group("table") or "").strip(), cols, query, is_csv,
                    bool(opts.get("header")), delimiter,
                    opts.get("null", "" if is_csv else "\\N"))


def _options(text: str) -> dict[str, str]:
    """WITH (FORMAT csv, HEADER, DELIMITER ',', NULL '') or the legacy words
    (CSV, HEADER, DELIMITER [AS] 'x', NULL [AS] 'x', BINARY)."""
    t = text.strip()
    if t.upper().startswith("WITH"):
        t = t[4:].strip()
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1]
    out: dict[str, str] = {}
    tokens = re.findall(r"'(?:[^']|'')*'|[^\s,()]+", t)
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if word in ("csv", "binary", "text"):
            out["format"] = word
        elif word == "format" and nxt is not None:
            out["format"] = _unquote(nxt).lower()
            i += 1
        elif word == "header":
            if nxt is not None and nxt.lower() in ("true", "false", "on", "off", "1", "0"):
                out["header"] = "1" if nxt.lower() in ("true", "on", "1") else ""
                i += 1
            else:
                out["header"] = "1"
        elif word in ("delimiter", "null", "quote", "escape", "encoding"):
            if nxt is not None and nxt.lower() == "as":
                i += 1
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is None:
                raise CopyError("42601", f"COPY option {word.upper()} needs a value")
            if word in ("quote", "escape") and _unquote(nxt) != '"':
                raise CopyError("0A000", f"unimplemented: COPY {word.upper()} other than '\"'")
            if word in ("delimiter", "null"):
                out[word] = _unquote(nxt)
            i += 1
        elif word not in ("freeze",):
            raise CopyError("42601", f"COPY option {tokens[i]!r} not recognized")
        i += 1
    return out


def _unquote(tok: str) -> str:
    return tok[1:-1].replace("''", "'") if tok.startswith("'") and tok.endswith("'") else tok


# ---- data ---------------------------------------------------------------------------------

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def decode_rows(data: bytes, spec: CopySpec) -> list[list[str | None]]:
    """The rows of COPY FROM data, each a list of field texts (None = NULL)."""
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise CopyError("22021", f"invalid byte sequence for encoding UTF8: {e}") from None
    if spec.csv:
        return _decode_csv(text, spec)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows: list[list[str | None]] = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if line == "\\.":
            break
        rows.append([None if f == spec.null else _unescape(f) for f in line.split(spec.delimiter)])
    return rows


def _unescape(f: str) -> str:
    if "\\" not in f:
        return f
    out, i = [], 0
    while i < len(f):
        ch = f[i]
        if ch == "\\" and i + 1 < len(f):
            nxt = f[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", f[i + 1:])
            if m:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            if nxt == "x":
                m = re.match(r"[0-9a-fA-F]{1,2}", f[i + 2:])
                if m:
                    out.append(chr(int(m.group(0), 16)))
                    i += 2 + len(m.group(0))
                    continue
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _decode_csv(text: str, spec: CopySpec) -> list[list[str | None]]:
    """CSV with PostgreSQL's NULL rule: an *unquoted* field equal to NULL
    ('' by default) is NULL; a quoted one is that string."""
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    field: list[str] = []
    quoted = in_quotes = False
    i, n, d = 0, len(text), spec.delimiter

    def end_field() -> None:
        nonlocal quoted
        f = "".join(field)
        row.append(None if not quoted and f == spec.null else f)
        field.clear()
        quoted = False

    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    field.append('"')
                    i += 2
                    continue
                in_quotes = False
            else:
                field.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch == d:
            end_field()
        elif ch in "\r\n":
            if ch == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            end_field()
            rows.append(row)
            row = []
        else:
            field.append(ch)
        i += 1
    if in_quotes:
        raise CopyError("22P04", "unterminated CSV quoted field")
    if field or row or quoted:
        end_field()
        rows.append(row)
    if rows and rows[-1] == ["\\."]:
        rows.pop()
    if spec.header and rows:
        rows.pop(0)
    return rows


def encode_row(fields: list[str | None], spec: CopySpec) -> bytes:
    """One line of COPY TO output from field texts (None = NULL)."""
    if spec.csv:
        out = []
        for f in fields:
            if f is None:
                out.append(spec.null)
            elif f == spec.null or any(c in f for c in (spec.delimiter, '"', "\n", "\r")):
                out.append('"' + f.replace('"', '""') + '"')
            else:
                out.append(f)
        return (spec.delimiter.join(out) + "\n").encode()
    return (spec.delimiter.join(spec.null if f is None else _escape(f, spec.delimiter)
                                for f in fields) + "\n").encode()


def _escape(f: str, delimiter: str) -> str:
    f = f.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    f = f.replace("\t", "\\t")
    return f.replace(delimiter, "\\" + delimiter) if delimiter != "\t" else f
