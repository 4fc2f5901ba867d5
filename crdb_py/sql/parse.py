"""Front end: SQL text -> `Statement` (sqlglot AST or a control statement).

Parsing with sqlglot costs far more than executing a point write, so
parsed statements are cached by their exact text in an LRU (`StatementCache`);
an AST is never mutated after it is cached. Statements sqlglot does not know
(CockroachDB's UPSERT, `DROP INDEX t@i`, transaction control, USE, SHOW,
EXPLAIN) are recognised here by their leading keywords.

Placeholders: both `%s` (the module's PEP 249 paramstyle, "format") and
`$n` are accepted; every `%s` is renumbered to `$1, $2, ...` in text order
when the statement is parsed, so the executor sees only `$n`.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from crdb_py.sql import errors as E
from crdb_py.sql import users

# sqlglot logs a warning for every statement it falls back to parsing as a
# Command; those are refused with a clear 0A000 below, so the log is noise.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

AOST_SUFFIX = re.compile(r"\s+AS\s+OF\s+SYSTEM\s+TIME\s+(.+?)\s*$", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Statement:
    kind: str  # "query" | "insert" | "upsert" | "update" | "delete" | "ddl" | "txn" | "use" | "show" | "explain" | "set"
    ast: Any = None
    arg: Any = None  # control statements: their operand(s)
    text: str = ""


_TXN = [
    (re.compile(r"^(BEGIN|START\s+TRANSACTION)\b(.*)$", re.I | re.S), "begin"),
    (re.compile(r"^(COMMIT|END)(\s+TRANSACTION|\s+WORK)?$", re.I), "commit"),
    (re.compile(r"^ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO\s+(?:SAVEPOINT\s+)?(\w+)$", re.I), "rollback_to"),
    (re.compile(r"^(ROLLBACK|ABORT)(\s+TRANSACTION|\s+WORK)?$", re.I), "rollback"),
    (re.compile(r"^SAVEPOINT\s+(\w+)$", re.I), "savepoint"),
    (re.compile(r"^RELEASE\s+(?:SAVEPOINT\s+)?(\w+)$", re.I), "release"),
    (re.compile(r"^SET\s+TRANSACTION\b(.*)$", re.I | re.S), "set_txn"),
]
_USE = re.compile(r"^(?:USE\s+|SET\s+(?:DATABASE)\s*(?:=|TO)\s*)\"?(\w+)\"?$", re.I)
_SHOW = re.compile(r"^SHOW\s+(.*)$", re.I | re.S)
_EXPLAIN_ANALYZE = re.compile(r"^EXPLAIN\s+ANALY[SZ]E\s+(.*)$", re.I | re.S)
_SPLIT = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+SPLIT\s+AT\s+VALUES\s+(.+)$", re.I | re.S)
_EXPLAIN = re.compile(r"^EXPLAIN\s+(.*)$", re.I | re.S)
_UPSERT = re.compile(r"^UPSERT\s+INTO\b", re.I)
_DROP_INDEX_AT = re.compile(r"^DROP\s+INDEX\s+(IF\s+EXISTS\s+)?(\w+)@(\w+)(\s+CASCADE)?$", re.I)
_SET_CLUSTER = re.compile(r"^SET\s+CLUSTER\s+SETTING\s+([\w.]+)\s*(?:=|TO)\s*(.+)$", re.I | re.S)
_SET = re.compile(r"^SET\s+(?:SESSION\s+)?(\w+)\s*(?:=|TO)\s*(.+)$", re.I | re.S)
_SET_TIME_ZONE = re.compile(r"^SET\s+(?:SESSION\s+)?TIME\s+ZONE\s+(.+)$", re.I | re.S)

_KIND = {exp.Select: "query", exp.Union: "query", exp.Except: "query", exp.Intersect: "query",
         exp.Insert: "insert", exp.Update: "update", exp.Delete: "delete",
         exp.Create: "ddl", exp.Drop: "ddl", exp.TruncateTable: "ddl", exp.Alter: "ddl"}


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons (outside quotes)."""
    out, cur, q = [], [], ""
    for ch in sql:
        if q:
            cur.append(ch)
            if ch == q:
                q = ""
        elif ch in ("'", '"'):
            q = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [s for s in out if s]


def _number_placeholders(ast: exp.Expression) -> None:
    i = 0
    for node in list(ast.walk(bfs=False)):
        if isinstance(node, exp.Placeholder) and node.this is None:
            i += 1
            node.replace(exp.Parameter(this=exp.Literal.number(i)))


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_PARAM = re.compile(r"\$\d+")


def space_parameters(sql: str) -> str:
    """`$1,$2` -> `$1 ,$2 `: sqlglot's tokenizer reads a `$n` followed directly
    by more text as the start of a dollar-quoted string (`SELECT $1,$2` fails
    to tokenize), and drivers write exactly that (psycopg turns `%s,%s` into
    `$1,$2`). A space after each placeholder outside quotes fixes it."""
    if "$" not in sql:
        return sql
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):  # a quoted string or identifier ('' / "" escape themselves)
            j = sql.find(ch, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == ch:
                j = sql.find(ch, j + 2)
            j = n if j == -1 else j + 1
            out.append(sql[i:j])
            i = j
            continue
        if ch == "$":
            m = _PARAM.match(sql, i)
            if m:
                out.append(m.group(0) + " ")
                i = m.end()
                continue
            m = _DOLLAR_TAG.match(sql, i)
            if m:  # $tag$ ... $tag$: copied as is
                end = sql.find(m.group(0), m.end())
                j = n if end == -1 else end + len(m.group(0))
                out.append(sql[i:j])
                i = j
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_sql(sql: str) -> exp.Expression:
    sql = space_parameters(sql)
    try:
        asts = sqlglot.parse(sql, dialect="postgres")
    except (ParseError, TokenError) as ex:
        raise E.syntax(f"at or near: {str(ex).splitlines()[0][:200]}") from ex
    if len(asts) != 1 or asts[0] is None:
        raise E.syntax("expected exactly one statement")
    ast = asts[0]
    if isinstance(ast, exp.Command):
        raise E.unsupported(f"statement {sql.split()[0].upper()} {sql.split()[1:2]}")
    _number_placeholders(ast)
    return ast


def parse_statement(sql: str) -> Statement:
    text = sql.strip().rstrip(";").strip()
    if not text:
        return Statement("empty", text=text)
    for rx, kind in _TXN:
        m = rx.match(text)
        if m:
            operand = m.group(m.lastindex) if m.lastindex and kind not in ("commit", "rollback") else ""
            return Statement("txn", arg=(kind, operand), text=text)
    m = _USE.match(text)
    if m:
        return Statement("use", arg=m.group(1).lower(), text=text)
    m = _EXPLAIN_ANALYZE.match(text)
    if m:
        return Statement("explain_analyze", arg=parse_statement(m.group(1)), text=text)
    m = _SPLIT.match(text)
    if m:
        return Statement("split", arg=(m.group(1).lower(), m.group(2).strip()), text=text)
    m = _EXPLAIN.match(text)
    if m:
        return Statement("explain", arg=parse_statement(m.group(1)), text=text)
    u = users.parse(text)
    if u is not None:
        return Statement("show_users" if u[0] == "show" else "user", arg=u, text=text)
    m = _SHOW.match(text)
    if m:
        return Statement("show", arg=m.group(1).strip(), text=text)
    m = _DROP_INDEX_AT.match(text)
    if m:
        return Statement("drop_index", arg=(m.group(2), m.group(3), bool(m.group(1))), text=text)
    upsert = bool(_UPSERT.match(text))
    if upsert:
        text = "INSERT" + text[len("UPSERT"):]
    m = AOST_SUFFIX.search(text)
    if m and re.match(r"(?i)^(SELECT|WITH|\()", text):
        ast = parse_sql(text[:m.start()])
        if _KIND.get(type(ast)) != "query":
            raise E.syntax("AS OF SYSTEM TIME is only allowed on a SELECT")
        return Statement("query", ast=ast, arg=("aost", m.group(1)), text=text)
    m = _SET_CLUSTER.match(text)
    if m:
        return Statement("set_cluster", arg=(m.group(1).lower(), m.group(2).strip()), text=text)
    m = _SET_TIME_ZONE.match(text)
    if m:
        return Statement("set", arg=("timezone", m.group(1).strip()), text=text)
    m = _SET.match(text)
    if m and not upsert:
        return Statement("set", arg=(m.group(1).lower(), m.group(2).strip()), text=text)
    ast = parse_sql(text)
    kind = _KIND.get(type(ast))
    if kind is None:
        raise E.unsupported(f"statement {type(ast).__name__}: {text[:60]}")
    if upsert:
        kind = "upsert"
    return Statement(kind, ast=ast, text=text)


class StatementCache:
    """LRU of parsed statements keyed by their text."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._d: OrderedDict[str, Statement] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, sql: str) -> Statement:
        st = self._d.get(sql)
        if st is not None:
            self._d.move_to_end(sql)
            self.hits += 1
            return st
        self.misses += 1
        st = parse_statement(sql)
        if st.kind == "user":  # may hold a password in clear: not kept around
            return st
        self._d[sql] = st
        if len(self._d) > self.capacity:
            self._d.popitem(last=False)
        return st


_EXPR_CACHE: OrderedDict[str, exp.Expression] = OrderedDict()


def parse_expr(text: str) -> exp.Expression:
    """A scalar expression (DEFAULT / CHECK text), cached."""
    e = _EXPR_CACHE.get(text)
    if e is None:
        try:
            e = sqlglot.parse_one(f"SELECT {text}", dialect="postgres").expressions[0]
        except (ParseError, TokenError) as ex:
            raise E.syntax(f"invalid expression {text!r}: {ex}") from ex
        _EXPR_CACHE[text] = e
        if len(_EXPR_CACHE) > 1024:
            _EXPR_CACHE.popitem(last=False)
    return e
