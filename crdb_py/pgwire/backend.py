"""The seam between the wire server and whatever executes SQL.

`crdb_py/pgwire` speaks the PostgreSQL v3 protocol and knows nothing about
how statements run; it talks to a `SQLBackend` (one per node) that opens a
`SQLSession` per client connection. The real implementation over
`crdb_py.sql.session.Session` is `crdb_py/pgwire/sql_adapter.py`; the tests
use a dict-backed toy (`tests/pgwire/fake_backend.py`).

Values cross the seam as plain Python objects (int, float, Decimal, str,
bytes, bool, date, datetime, UUID, None); each result column names its
PostgreSQL type OID (`crdb_py/pgwire/pgtypes.py`) and the server does the
text/binary formatting. Errors are `crdb_py.util.errors.CrdbError`s (or any
exception with a `sqlstate` attribute): the server turns them into an
ErrorResponse with that SQLSTATE and the connection stays usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TxnStatus = Literal["I", "T", "E"]  # idle, in a transaction block, in a failed block


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int  # a PostgreSQL type OID, e.g. 20 (int8), 25 (text)


@dataclass(slots=True)
class StatementResult:
    """One statement's outcome. `columns` is empty for statements that return
    no rows (INSERT, BEGIN...), which the wire answers with NoData."""

    tag: str  # the command tag: "SELECT 5", "INSERT 0 3", "BEGIN", ...
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns) or self.tag.startswith(("SELECT", "SHOW", "FETCH"))


@dataclass(frozen=True, slots=True)
class PreparedInfo:
    """What `prepare` can tell before execution. `columns` is None when the
    backend cannot know the result shape without running the statement (the
    server then runs a bound portal when the client Describes it)."""

    param_oids: list[int]  # 0 = unspecified (the server passes such params as text)
    columns: list[Column] | None


class SQLSession(Protocol):
    """One client connection's SQL session."""

    def split(self, sql: str) -> list[str]:
        """Split a simple-query string into statements (empty list if blank)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> StatementResult:
        """Run one statement with `$n` parameters bound to `params`."""
        ...

    async def prepare(self, sql: str, param_oids: Sequence[int]) -> PreparedInfo:
        """Check one statement (raising its error, e.g. a syntax error)."""
        ...

    def txn_status(self) -> TxnStatus: ...

    def cancel(self) -> None:
        """Called from another connection (CancelRequest): stop the running
        statement if any. The server also cancels the statement's task."""
        ...

    async def close(self) -> None: ...


class SQLBackend(Protocol):
    async def new_session(self, user: str, database: str) -> SQLSession:
        """Open a session; raise a CrdbError (e.g. 3D000) to refuse it."""
        ...

    async def password_verifier(self, user: str) -> str | None:
        """The user's stored SCRAM-SHA-256 verifier (see
        `crdb_py.pgwire.scram.make_verifier`), or None if the user has no
        password or does not exist."""
        ...
