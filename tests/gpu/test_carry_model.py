"""The two-trip model carry for the GPU check: split, then rebuild byte for byte (no GPU needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from tests.gpu.carry_model import (
    rebuild,
    split,
)

LAYERS = 4


def _make_model(path: Path) -> None:
    """A small llama-shaped GGUF with random weights, 4 layers, some metadata."""
    rng = np.random.default_rng(7)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny test")
    writer.add_block_count(LAYERS)
    writer.add_context_length(64)
    writer.add_token_list([f"t{i}" for i in range(16)])
    writer.add_tensor("token_embd.weight", rng.standard_normal((16, 8), dtype=np.float32))
    for layer in range(LAYERS):
        writer.add_tensor(f"blk.{layer}.attn_q.weight", rng.standard_normal((8, 8), dtype=np.float32))
        writer.add_tensor(f"blk.{layer}.ffn_up.weight", rng.standard_normal((24, 8), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_split_keeps_first_layers_and_rebuild_is_byte_identical(tmp_path: Path) -> None:
    real = tmp_path / "real.gguf"
    _make_model(real)
    manifest = split(real, tmp_path / "carry", layers=2)

    first = gguf.GGUFReader(str(tmp_path / "carry" / "first.gguf"))
    assert int(first.fields["llama.block_count"].contents()) == 2
    assert "first 2 of 4 layers" in str(first.fields["general.name"].contents())
    names = {t.name for t in first.tensors}
    assert names == {
        "token_embd.weight",
        "output_norm.weight",
        "blk.0.attn_q.weight",
        "blk.0.ffn_up.weight",
        "blk.1.attn_q.weight",
        "blk.1.ffn_up.weight",
    }
    original = {t.name: bytes(t.data.tobytes()) for t in gguf.GGUFReader(str(real)).tensors}
    for tensor in first.tensors:
        assert bytes(tensor.data.tobytes()) == original[tensor.name]
    assert (tmp_path / "carry" / "rest.bin").stat().st_size < real.stat().st_size

    out = tmp_path / "rebuilt.gguf"
    rebuild(tmp_path / "carry" / "first.gguf", tmp_path / "carry", out)
    assert out.read_bytes() == real.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(real.read_bytes()).hexdigest()


def test_rebuild_refuses_a_damaged_rest(tmp_path: Path) -> None:
    real = tmp_path / "real.gguf"
    _make_model(real)
    split(real, tmp_path / "carry", layers=1)
    rest = tmp_path / "carry" / "rest.bin"
    data = bytearray(rest.read_bytes())
    data[-1] ^= 0xFF
    rest.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="does not match"):
        rebuild(tmp_path / "carry" / "first.gguf", tmp_path / "carry", tmp_path / "rebuilt.gguf")


def test_rebuild_refuses_another_first_part(tmp_path: Path) -> None:
    real = tmp_path / "real.gguf"
    _make_model(real)
    split(real, tmp_path / "carry", layers=1)
    manifest = json.loads((tmp_path / "carry" / "manifest.json").read_text())
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 64)
    assert manifest["first_sha256"] != hashlib.sha256(other.read_bytes()).hexdigest()
    with pytest.raises(SystemExit, match="not the first part"):
        rebuild(other, tmp_path / "carry", tmp_path / "rebuilt.gguf")
