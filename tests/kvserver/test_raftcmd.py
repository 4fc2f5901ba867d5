from __future__ import annotations

from crdb_py.kvserver.raftcmd import AppliedState, RaftCommand


def test_raft_command_round_trip():
    c = RaftCommand(id=b"12345678", proposer_lease_seq=3, max_lease_index=9, write_batch=b"wb",
                    stats_delta={"live_count": 1}, lease=b"L", prev_lease_seq=2, lease_transfer=True,
                    split_left=b"l", split_right=b"r", new_desc=b"d")
    assert RaftCommand.decode(c.encode()) == c
    plain = RaftCommand(id=b"abcdefgh", proposer_lease_seq=1, max_lease_index=2)
    assert RaftCommand.decode(plain.encode()) == plain
    assert not plain.is_lease_request and c.is_lease_request


def test_applied_state_round_trip():
    s = AppliedState(17, 4, {"live_bytes": 10})
    assert AppliedState.decode(s.encode()) == s
