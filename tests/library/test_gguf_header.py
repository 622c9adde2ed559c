"""The header reader against files the gguf package writes (and reads), and against damaged ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.library.gguf_files import CHATML, write_gguf
from tui.library.card import card_from_header, quant_from_name
from tui.library.gguf_header import GGUFHeaderError, read_header


def test_reads_what_the_gguf_package_reads(tmp_path: Path) -> None:
    import gguf

    path = write_gguf(tmp_path / "m.gguf", n_vocab=300, size_label="135M")
    header = read_header(path)
    reader = gguf.GGUFReader(str(path))
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert header.array_length(key) == len(field.data), key
        else:
            assert header.values[key] == field.contents(), key
    assert header.tensor_count == len(reader.tensors) == 1
    assert header.arrays["tokenizer.ggml.tokens"].length == 300
    assert header.header_bytes < path.stat().st_size


def test_card_from_the_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "Tiny-135M-Q4_K_M.gguf", n_vocab=100, context=8192, layers=3, embd=64)
    card = card_from_header(read_header(path), path, path.stat().st_size)
    assert (card.name, card.architecture, card.quantization) == ("Tiny Test", "llama", "Q4_K_M")
    assert card.size_label == "135M"  # from the file name: the header has no size label
    assert (card.n_ctx_train, card.n_vocab, card.n_layer) == (8192, 100, 3)
    assert card.chat_template == CHATML and card.has_chat_template
    # KV cache: layers * n_ctx * (k + v) * 2 bytes; head_dim 64 / 4 = 16, 2 KV heads
    assert card.kv_cache_bytes(2048) == 3 * 2048 * (16 * 2 + 16 * 2) * 2
    assert card.memory_estimate(2048) == path.stat().st_size + 3 * 2048 * 64 * 2


def test_quant_from_file_names() -> None:
    assert quant_from_name("Qwen3-0.6B-Q4_K_M.gguf") == "Q4_K_M"
    assert quant_from_name("model.q8_0.gguf") == "Q8_0"
    assert quant_from_name("gemma-3-270m-it-IQ4_XS.gguf") == "IQ4_XS"
    assert quant_from_name("model-bf16-00001-of-00002.gguf") == "BF16"
    assert quant_from_name("model.gguf") is None


@pytest.mark.parametrize(
    ("cut", "reason"),
    [(0, "empty file"), (3, "not a GGUF"), (30, "truncated"), (2000, "truncated")],
)
def test_a_damaged_file_gives_a_reason(tmp_path: Path, cut: int, reason: str) -> None:
    whole = write_gguf(tmp_path / "whole.gguf", n_vocab=500).read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:cut])
    with pytest.raises(GGUFHeaderError, match=reason):
        read_header(path)


def test_garbage_lengths_are_refused_not_allocated(tmp_path: Path) -> None:
    whole = bytearray(write_gguf(tmp_path / "whole.gguf").read_bytes())
    whole[16:24] = (10**9).to_bytes(8, "little")  # the metadata count
    path = tmp_path / "bad.gguf"
    path.write_bytes(bytes(whole))
    with pytest.raises(GGUFHeaderError, match="damaged"):
        read_header(path)
    whole[16:24] = (3).to_bytes(8, "little")
    whole[24:32] = (2**40).to_bytes(8, "little")  # the first key's length
    path.write_bytes(bytes(whole))
    with pytest.raises(GGUFHeaderError, match="damaged"):
        read_header(path)


def test_the_default_model(model_path: Path) -> None:
    card = card_from_header(read_header(model_path), model_path, model_path.stat().st_size)
    assert card.architecture == "llama"
    assert card.quantization == "Q4_1"
    assert card.n_vocab == 49152
    assert card.has_chat_template and "<|im_start|>" in (card.chat_template or "")
    assert card.n_ctx_train == 8192
    kv = card.kv_cache_bytes(2048)
    assert kv == 30 * 2048 * (64 * 3 * 2) * 2  # 30 layers, 3 KV heads of 64
