"""SQL errors: every error that reaches a SQL client carries a SQLSTATE.

`SQLError` subclasses `CrdbError` so KV and SQL errors share one root; the
KV errors already carry their own SQLSTATE (40001 for retryable ones). The
PEP 249 layer (crdb_py/dbapi.py) maps SQLSTATE classes onto the standard
exception hierarchy.
"""

from __future__ import annotations

from crdb_py.util.errors import CrdbError


class SQLError(CrdbError):
    """A SQL-level error with an explicit SQLSTATE code."""

    sqlstate = "XX000"

    def __init__(self, msg: str, sqlstate: str | None = None) -> None:
        super().__init__(msg)
        if sqlstate is not None:
            self.sqlstate = sqlstate  # type: ignore[misc]


def syntax(msg: str) -> SQLError:
    return SQLError(msg, "42601")


def unsupported(msg: str) -> SQLError:
    return SQLError(f"unimplemented: {msg}", "0A000")


def undefined_table(name: str) -> SQLError:
    return SQLError(f'relation "{name}" does not exist', "42P01")


def undefined_column(name: str) -> SQLError:
    return SQLError(f'column "{name}" does not exist', "42703")


def ambiguous_column(name: str) -> SQLError:
    return SQLError(f'column reference "{name}" is ambiguous', "42702")


def duplicate_table(name: str) -> SQLError:
    return SQLError(f'relation "{name}" already exists', "42P07")


def undefined_database(name: str) -> SQLError:
    return SQLError(f'database "{name}" does not exist', "3D000")


def duplicate_database(name: str) -> SQLError:
    return SQLError(f'database "{name}" already exists', "42P04")


def undefined_function(name: str) -> SQLError:
    return SQLError(f"unknown function: {name}()", "42883")


def datatype_mismatch(msg: str) -> SQLError:
    return SQLError(msg, "42804")


def invalid_text(msg: str) -> SQLError:
    return SQLError(msg, "22P02")


def out_of_range(msg: str) -> SQLError:
    return SQLError(msg, "22003")


def division_by_zero() -> SQLError:
    return SQLError("division by zero", "22012")


def not_null_violation(table: str, col: str) -> SQLError:
    return SQLError(f'null value in column "{col}" violates not-null constraint', "23502")


def unique_violation(index: str, detail: str = "") -> SQLError:
    msg = f'duplicate key value violates unique constraint "{index}"'
    return SQLError(msg + (f"\nDETAIL: {detail}" if detail else ""), "23505")


def check_violation(name: str) -> SQLError:
    return SQLError(f'failed to satisfy CHECK constraint "{name}"', "23514")


def in_failed_txn() -> SQLError:
    return SQLError(
        "current transaction is aborted, commands ignored until end of transaction block",
        "25P02",
    )


def cardinality(msg: str) -> SQLError:
    return SQLError(msg, "21000")
