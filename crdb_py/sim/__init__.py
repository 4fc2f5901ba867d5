"""crdb_py.sim — deterministic simulation.

* `clock.FakeClock` — simulated time (also a nanosecond physical clock for an HLC);
* `network.SimNetwork` — a seeded network of opaque payloads with drop,
  duplication, delay/reordering and symmetric / one-way partitions;
* `cluster.SimCluster` — N raft nodes (RawNode + DurableStorage on a
  MemEngine + a hash-chain state machine) driven step by step;
* `checkers` — election safety, log matching, leader completeness, state
  machine safety (and `SimCluster.check_liveness`);
* `schedule` — fault schedules as data, `run_schedule`; `soak` — many seeds
  (``python -m crdb_py.sim.soak --seeds 2000``).

See docs/design/raft.md, "Simulation and checkers".
"""
