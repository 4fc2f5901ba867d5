"""A small DSL for scripted raft interactions with golden output.

A script (tests/raft/testdata/*.txt) is a sequence of blocks::

    # comments and blank lines between blocks are kept
    command arg arg key=value
    ----
    expected output (rewritten by `pytest --rewrite`)

Commands:
    add-nodes N [voters=1,2,3] [learners=4] [election=10] [heartbeat=1]
              [pre-vote=true|false] [check-quorum=true|false] [inflight=256]
              [empty=true]   (empty: start with no configuration, to be
                              initialized by a snapshot)
    campaign ID | tick ID [N] | tick-heartbeat ID | tick-election ID
    propose ID DATA | propose-conf-change ID add|add-learner|remove NODE
    transfer-leader FROM TO | report-unreachable ID PEER
    process-ready ID... | deliver-msgs ID... | stabilize [ID...]
    drop FROM->TO | cut A B | isolate ID | recover
    status ID | raft-log ID | lease ID
    compact ID INDEX   (snapshot the state machine at INDEX and truncate)
    restart ID         (crash: drop volatile state, restart from storage)

Messages sit in a per-recipient queue until delivered; dropped ones are
printed as such. Output is deterministic (seeded RNG per node).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crdb_py.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    Ready,
    StateType,
    decode_conf_change,
)

# ---- formatting --------------------------------------------------------------------


def fmt_entry(e: Entry) -> str:
    if e.type == EntryType.CONF_CHANGE:
        cc = decode_conf_change(e.data)
        return f"{e.term}/{e.index} ConfChange {cc.type.name.lower()} {cc.node_id}"
    return f"{e.term}/{e.index} {e.data.decode(errors='replace')!r}"


def fmt_msg(m: Message) -> str:
    s = f"{m.frm}->{m.to} {m.type.name} Term:{m.term}"
    t = m.type
    if t in (MessageType.APP, MessageType.VOTE, MessageType.PRE_VOTE):
        s += f" Log:{m.log_term}/{m.index}"
    if t == MessageType.APP_RESP:
        s += f" Index:{m.index}"
    if m.reject:
        s += " Rejected"
        if t == MessageType.APP_RESP:
            s += f" (Hint: {m.reject_hint}/{m.log_term})"
    if t in (MessageType.APP, MessageType.HEARTBEAT):
        s += f" Commit:{m.commit}"
    if m.entries:
        s += " Entries:[" + ", ".join(fmt_entry(e) for e in m.entries) + "]"
    if m.snapshot is not None:
        md = m.snapshot.metadata
        s += f" Snapshot:{md.term}/{md.index} voters={list(md.conf_state.voters)}"
        if md.conf_state.learners:
            s += f" learners={list(md.conf_state.learners)}"
    if t in (MessageType.VOTE, MessageType.PRE_VOTE) and m.context:
        s += f" ({m.context.decode()})"
    return s


def fmt_ready(id: int, rd: Ready) -> list[str]:
    out = [f"> {id} handling Ready"]
    if rd.soft_state is not None:
        out.append(f"  Lead:{rd.soft_state.lead} State:{rd.soft_state.state.name}")
    if rd.hard_state is not None:
        hs = rd.hard_state
        out.append(f"  HardState Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}")
    if rd.snapshot is not None and not rd.snapshot.is_empty():
        md = rd.snapshot.metadata
        out.append(f"  Snapshot {md.term}/{md.index} voters={list(md.conf_state.voters)} "
                   f"learners={list(md.conf_state.learners)}")
    if rd.entries:
        out.append("  Entries:")
        out.extend(f"    {fmt_entry(e)}" for e in rd.entries)
    if rd.committed_entries:
        out.append("  CommittedEntries:")
        out.extend(f"    {fmt_entry(e)}" for e in rd.committed_entries)
    if rd.messages:
        out.append("  Messages:")
        out.extend(f"    {fmt_msg(m)}" for m in rd.messages)
    return out


# ---- the environment ---------------------------------------------------------------


@dataclass
class _Node:
    rn: RawNode
    storage: MemoryStorage
    cfg: dict[str, object]
    applied: list[tuple[int, bytes]] = field(default_factory=list)
    restarts: int = 0


class InteractionEnv:
    def __init__(self) -> None:
        self.nodes: dict[int, _Node] = {}
        self.queues: dict[int, list[Message]] = {}
        self.dropped: set[tuple[int, int]] = set()

    # ---- plumbing ----------------------------------------------------------------

    def _config(self, id: int, cfg: dict[str, object], applied: int, seed: int) -> Config:
        return Config(
            id, rng=random.Random(seed), applied=applied,
            election_tick=int(cfg.get("election", 10)),  # type: ignore[arg-type]
            heartbeat_tick=int(cfg.get("heartbeat", 1)),  # type: ignore[arg-type]
            pre_vote=cfg.get("pre-vote", "true") == "true",
            check_quorum=cfg.get("check-quorum", "true") == "true",
            max_inflight_msgs=int(cfg.get("inflight", 256)),  # type: ignore[arg-type]
        )

    def _process_ready(self, id: int, out: list[str]) -> bool:
        n = self.nodes[id]
        if not n.rn.has_ready():
            return False
        rd = n.rn.ready()
        out.extend(fmt_ready(id, rd))
        if rd.snapshot is not None and not rd.snapshot.is_empty():
            n.storage.apply_snapshot(rd.snapshot)
            n.applied = [(rd.snapshot.metadata.index, rd.snapshot.data)]
        n.storage.append(rd.entries)
        if rd.hard_state is not None:
            n.storage.set_hard_state(rd.hard_state)
        for m in rd.messages:
            self.queues.setdefault(m.to, []).append(m)
        for e in rd.committed_entries:
            n.applied.append((e.index, e.data))
            if e.type == EntryType.CONF_CHANGE:
                cs = n.rn.apply_conf_change(decode_conf_change(e.data))
                n.storage.set_conf_state(cs)
                out.append(f"  {id} applied conf change: voters={list(cs.voters)} "
                           f"learners={list(cs.learners)}")
        n.rn.advance(rd)
        return True

    def _deliver(self, id: int, out: list[str]) -> bool:
        msgs = self.queues.pop(id, [])
        if not msgs:
            return False
        for m in msgs:
            if (m.frm, m.to) in self.dropped or m.to not in self.nodes:
                out.append(f"  dropped: {fmt_msg(m)}")
                continue
            out.append(f"  {fmt_msg(m)}")
            self.nodes[id].rn.step(m)
        return True

    def _ids(self, args: list[str]) -> list[int]:
        return [int(a) for a in args] if args else sorted(self.nodes)

    # ---- commands ----------------------------------------------------------------

    def run(self, cmd: str, args: list[str], kw: dict[str, str]) -> list[str]:
        out: list[str] = []
        fn = getattr(self, "cmd_" + cmd.replace("-", "_"), None)
        if fn is None:
            raise ValueError(f"unknown command {cmd!r}")
        fn(args, kw, out)
        return out

    def cmd_add_nodes(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        n = int(args[0])
        start = max(self.nodes, default=0) + 1
        ids = list(range(start, start + n))
        voters = tuple(int(x) for x in kw["voters"].split(",")) if "voters" in kw else tuple(ids)
        learners = tuple(int(x) for x in kw["learners"].split(",")) if "learners" in kw else ()
        cs = ConfState() if kw.get("empty") == "true" else ConfState(voters, learners)
        for id in ids:
            st = MemoryStorage(cs)
            rn = RawNode(self._config(id, dict(kw), 0, id), st)
            self.nodes[id] = _Node(rn, st, dict(kw))
            out.append(f"node {id}: voters={list(cs.voters)} learners={list(cs.learners)} "
                       f"term=0 lastindex=0")

    def cmd_campaign(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        rn = self.nodes[int(args[0])].rn
        rn.campaign()
        out.append(f"{rn.id} is {rn.state.name} at term {rn.term}")

    def cmd_tick(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        rn = self.nodes[int(args[0])].rn
        for _ in range(int(args[1]) if len(args) > 1 else 1):
            rn.tick()
        out.append(f"{rn.id} is {rn.state.name} at term {rn.term}")

    def cmd_tick_heartbeat(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        rn = self.nodes[int(args[0])].rn
        for _ in range(rn.raft.heartbeat_timeout):
            rn.tick()
        out.append(f"{rn.id} is {rn.state.name} at term {rn.term}")

    def cmd_tick_election(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        rn = self.nodes[int(args[0])].rn
        for _ in range(rn.raft.randomized_election_timeout):
            rn.tick()
        out.append(f"{rn.id} is {rn.state.name} at term {rn.term}")

    def cmd_propose(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        try:
            self.nodes[int(args[0])].rn.propose(args[1].encode())
        except ProposalDroppedError as e:
            out.append(f"error: {e}")

    def cmd_propose_conf_change(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        t = {"add": ConfChangeType.ADD_NODE, "add-learner": ConfChangeType.ADD_LEARNER_NODE,
             "remove": ConfChangeType.REMOVE_NODE}[args[1]]
        try:
            self.nodes[int(args[0])].rn.propose_conf_change(ConfChange(t, int(args[2])))
        except ProposalDroppedError as e:
            out.append(f"error: {e}")

    def cmd_transfer_leader(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        self.nodes[int(args[0])].rn.transfer_leader(int(args[1]))

    def cmd_report_unreachable(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        self.nodes[int(args[0])].rn.report_unreachable(int(args[1]))

    def cmd_process_ready(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        for id in self._ids(args):
            self._process_ready(id, out)

    def cmd_deliver_msgs(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        for id in self._ids(args):
            self._deliver(id, out)

    def cmd_stabilize(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        ids = self._ids(args)
        for _ in range(10_000):
            changed = False
            for id in ids:
                changed |= self._process_ready(id, out)
            for id in ids:
                changed |= self._deliver(id, out)
            if not changed:
                return
        raise AssertionError("stabilize did not converge")

    def cmd_drop(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        a, b = args[0].split("->")
        self.dropped.add((int(a), int(b)))

    def cmd_cut(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        a, b = int(args[0]), int(args[1])
        self.dropped |= {(a, b), (b, a)}

    def cmd_isolate(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        a = int(args[0])
        for b in self.nodes:
            if b != a:
                self.dropped |= {(a, b), (b, a)}

    def cmd_recover(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        self.dropped.clear()

    def cmd_status(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        for id in self._ids(args):
            st = self.nodes[id].rn.status()
            out.append(f"{id}: {st.state.name} term={st.term} vote={st.vote} lead={st.lead} "
                       f"commit={st.commit} applied={st.applied} "
                       f"voters={list(st.conf_state.voters)} "
                       f"learners={list(st.conf_state.learners)}")
            for pid, pr in sorted(st.progress.items()):
                extra = " learner" if pr.is_learner else ""
                extra += " paused" if pr.paused else ""
                extra += f" inflight={pr.inflight}" if pr.inflight else ""
                out.append(f"  {pid}: {pr.state.name} match={pr.match} next={pr.next}{extra}")

    def cmd_raft_log(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        n = self.nodes[int(args[0])]
        log = n.rn.raft.log
        out.append(f"first={log.first_index()} last={log.last_index()} "
                   f"committed={log.committed} applied={log.applied}")
        out.extend(fmt_entry(e) for e in log.all_entries())

    def cmd_lease(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        for id in self._ids(args):
            rn = self.nodes[id].rn
            out.append(f"{id}: lease valid={rn.leader_lease_valid()} ticks={rn.raft.ticks}")

    def cmd_compact(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        n = self.nodes[int(args[0])]
        idx = int(args[1])
        data = ",".join(d.decode() for i, d in n.applied if i <= idx and d).encode()
        n.storage.create_snapshot(idx, n.rn.status().conf_state, data)
        n.storage.compact(idx)
        out.append(f"{args[0]}: snapshot at {idx}, log now [{n.storage.first_index()}, "
                   f"{n.storage.last_index()}]")

    def cmd_restart(self, args: list[str], kw: dict[str, str], out: list[str]) -> None:
        id = int(args[0])
        n = self.nodes[id]
        n.restarts += 1
        applied = n.applied[-1][0] if n.applied else 0
        n.rn = RawNode(self._config(id, n.cfg, applied, id * 100 + n.restarts), n.storage)
        self.queues.pop(id, None)  # in-flight messages to a crashed node are lost
        hs = n.storage.hard_state
        out.append(f"{id} restarted: term={hs.term} vote={hs.vote} commit={hs.commit} "
                   f"lastindex={n.storage.last_index()} {StateType(n.rn.state).name}")


# ---- the script runner ---------------------------------------------------------------


def run_script(text: str) -> str:
    """Run a script; return it with every block's output regenerated."""
    env = InteractionEnv()
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            out.append(line)
            i += 1
            continue
        cmd_line = line
        i += 1
        if i >= len(lines) or lines[i] != "----":
            raise ValueError(f"expected ---- after {cmd_line!r} (line {i})")
        i += 1
        while i < len(lines) and lines[i].strip():  # skip the old expected output
            i += 1
        parts = cmd_line.split()
        args = [p for p in parts[1:] if "=" not in p or "->" in p]
        kw = dict(p.split("=", 1) for p in parts[1:] if "=" in p and "->" not in p)
        result = env.run(parts[0], args, kw)
        out.append(cmd_line)
        out.append("----")
        out.extend(result if result else ["ok"])
    return "\n".join(out) + "\n"
