"""The raft log as the core sees it: durable `Storage` plus an unstable tail.

    storage (durable)                 unstable (handed out or not yet)
    [first_index ...... stable last] [offset ........................ last]
                                      ^ offset_in_progress: entries before it
                                        were given to the app in a Ready and
                                        await advance(); after it: not yet.

`committed` <= last_index always; `applied` <= `applying` <= `committed`.
`applying` is the last index handed to the app for applying in a Ready; it
becomes `applied` on advance(). An unstable snapshot (received from the
leader, not yet persisted) precedes the unstable entries.

The unstable tail is one Python list with an index offset: appends are
amortized O(1), truncation of a conflicting suffix is one `del`, and
`stable_to` drops the persisted prefix in one slice.
"""

from __future__ import annotations

from crdb_py.raft.errors import CompactedError, UnavailableError
from crdb_py.raft.storage import Storage, limit_size
from crdb_py.raft.types import Entry, EntryType, Snapshot
from crdb_py.util.errors import InternalError


class Unstable:
    __slots__ = ("entries", "offset", "offset_in_progress", "snapshot", "snapshot_in_progress")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset
        self.offset_in_progress = offset
        self.snapshot_in_progress = False

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            s = self.snapshot
            if s is not None and s.metadata.index == i:
                return s.metadata.term
            return None
        j = i - self.offset
        if j < len(self.entries):
            return self.entries[j].term
        return None

    def next_entries(self) -> list[Entry]:
        j = self.offset_in_progress - self.offset
        if j >= len(self.entries):
            return []
        return self.entries[j:]

    def next_snapshot(self) -> Snapshot | None:
        if self.snapshot is None or self.snapshot_in_progress:
            return None
        return self.snapshot

    def accept_in_progress(self) -> None:
        if self.entries:
            self.offset_in_progress = self.offset + len(self.entries)
        if self.snapshot is not None:
            self.snapshot_in_progress = True

    def stable_to(self, i: int, t: int) -> None:
        gt = self.maybe_term(i)
        if gt is None or i < self.offset:
            return  # unknown, or only the snapshot matched: nothing to drop
        if gt != t:
            return  # the entry was replaced by a newer leader's since the Ready
        n = i + 1 - self.offset
        del self.entries[:n]
        self.offset = i + 1
        self.offset_in_progress = max(self.offset_in_progress, self.offset)

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None
            self.snapshot_in_progress = False

    def restore(self, s: Snapshot) -> None:
        self.offset = s.metadata.index + 1
        self.offset_in_progress = self.offset
        self.entries = []
        self.snapshot = s
        self.snapshot_in_progress = False

    def truncate_and_append(self, ents: list[Entry]) -> None:
        frm = ents[0].index
        end = self.offset + len(self.entries)
        if frm == end:
            self.entries.extend(ents)
        elif frm <= self.offset:
            # replace the whole unstable tail (and, via offset, what storage
            # holds beyond frm: the app's append truncates it)
            self.entries = list(ents)
            self.offset = frm
            self.offset_in_progress = frm
        else:
            del self.entries[frm - self.offset :]
            self.entries.extend(ents)
            self.offset_in_progress = min(self.offset_in_progress, frm)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    __slots__ = (
        "applied",
        "applying",
        "committed",
        "max_applying_size",
        "storage",
        "unstable",
    )

    def __init__(self, storage: Storage, max_applying_size: int = 1 << 24) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applying = first - 1
        self.applied = first - 1
        self.max_applying_size = max_applying_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"applying={self.applying}, unstable.offset={self.unstable.offset}, "
            f"len(unstable)={len(self.unstable.entries)})"
        )

    # ---- indexes and terms --------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def term(self, i: int) -> int:
        """Term of entry i; raises CompactedError / UnavailableError."""
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        if i < self.first_index() - 1:
            raise CompactedError()
        if i > self.last_index():
            raise UnavailableError()
        return self.storage.term(i)

    def zero_term_on_err(self, i: int) -> int:
        try:
            return self.term(i)
        except (CompactedError, UnavailableError):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, i: int, t: int) -> bool:
        try:
            return self.term(i) == t
        except (CompactedError, UnavailableError):
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Raft §5.4.1: is a log ending at (lasti, term) at least as up to date
        as ours?"""
        lt = self.last_term()
        return term > lt or (term == lt and lasti >= self.last_index())

    # ---- appending ----------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: list[Entry]
    ) -> int | None:
        """Append `ents` after (index, log_term) if our log matches there.
        Returns the last index of the new entries, or None on mismatch."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise InternalError(
                    f"entry {ci} conflicts with committed entry [committed({self.committed})]"
                )
            self.append(ents[ci - (index + 1) :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise InternalError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: list[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or that we
        lack), 0 if all of `ents` are already in the log."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= `index` whose term is <= `term`, and that term
        (fast backtracking: entries of terms > `term` cannot match the
        leader's entry at `index`, so skip them all in one round trip)."""
        while index > 0:
            try:
                our = self.term(index)
            except (CompactedError, UnavailableError):
                return index, 0
            if our <= term:
                return index, our
            index -= 1
        return 0, 0

    # ---- reading ------------------------------------------------------------

    def entries(self, i: int, max_size: int | None = None) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        while True:
            try:
                return self.entries(self.first_index())
            except CompactedError:  # racing with a compaction: retry
                continue

    def slice(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries in [lo, hi), limited to max_size bytes (at least one)."""
        if lo > hi:
            raise InternalError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise CompactedError()
        if hi > self.last_index() + 1:
            raise InternalError(f"slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]")
        if lo == hi:
            return []
        uoff = self.unstable.offset
        if lo >= uoff:
            return limit_size(self.unstable.slice(lo, hi), max_size)
        shi = min(hi, uoff)
        ents = self.storage.entries(lo, shi, max_size)
        if len(ents) < shi - lo:
            return ents  # the size limit cut it short
        if hi > uoff:
            ents = limit_size(ents + self.unstable.slice(uoff, hi), max_size)
        return ents

    # ---- commit / apply -----------------------------------------------------

    def commit_to(self, c: int) -> None:
        if self.committed < c:
            if self.last_index() < c:
                raise InternalError(
                    f"tocommit({c}) is out of range [lastIndex({self.last_index()})]"
                )
            self.committed = c

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to max_index if that entry is of `term` (§5.4.2: only
        entries of the leader's current term are committed by counting)."""
        if max_index > self.committed and self.zero_term_on_err(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise InternalError(
                f"applied({i}) is out of range [prevApplied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = i
        if self.applying < i:
            self.applying = i

    def has_pending_snapshot(self) -> bool:
        return self.unstable.snapshot is not None

    def has_next_committed_ents(self) -> bool:
        if self.has_pending_snapshot():
            return False
        return self.committed > self.applying

    def next_committed_ents(self) -> list[Entry]:
        """Committed entries not yet handed out for applying. The app persists
        a Ready's entries before applying its committed entries, so entries
        still in the unstable log may be included."""
        if self.has_pending_snapshot():
            return []  # the snapshot must be applied first
        lo, hi = self.applying + 1, self.committed + 1
        if lo >= hi:
            return []
        return self.slice(lo, hi, self.max_applying_size)

    def has_unapplied_conf_changes(self) -> bool:
        if self.committed <= self.applied:
            return False
        lo = max(self.applied + 1, self.first_index())
        try:
            ents = self.slice(lo, self.committed + 1)
        except CompactedError:
            return True  # be conservative
        return any(e.type == EntryType.CONF_CHANGE for e in ents)

    # ---- persistence acknowledgements --------------------------------------

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    def snapshot(self) -> Snapshot:
        s = self.unstable.snapshot
        return s if s is not None else self.storage.snapshot()

    def restore(self, s: Snapshot) -> None:
        self.committed = s.metadata.index
        self.unstable.restore(s)
