"""The generated code in crdb_py/pb must match what `make protos` produces."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path):
    protos = sorted((ROOT / "protos" / "crdb_py" / "pb").glob("*.proto"))
    assert protos, "no .proto sources found"
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'protos'}",
            f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}", *map(str, protos),
        ],
        check=True,
    )
    generated = sorted((tmp_path / "crdb_py" / "pb").iterdir())
    assert generated
    stale = []
    for g in generated:
        committed = ROOT / "crdb_py" / "pb" / g.name
        if not committed.exists() or committed.read_bytes() != g.read_bytes():
            stale.append(g.name)
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_every_generated_file_has_a_source():
    sources = {p.stem for p in (ROOT / "protos" / "crdb_py" / "pb").glob("*.proto")}
    for f in (ROOT / "crdb_py" / "pb").glob("*_pb2*.py*"):
        stem = f.name.split("_pb2")[0]
        assert stem in sources, f"{f.name} has no .proto source; delete it or add the proto"
