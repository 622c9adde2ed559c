"""A large-vocabulary GGUF made offline from the default model (for tests and the benchmark).

The default model's own weights and tokenizer, with its vocabulary padded from 49,152 to
``LARGE_VOCAB`` tokens (the 262k of the Gemma 3 family): new tokens ``<pad_N>`` of the normal
type, each with a copy of an existing token's embedding row scaled by a half (the embedding is
tied to the output, so every step's logits cover the whole padded vocabulary and the output
layer costs what a real model of that vocabulary costs). It still writes sensible text: the
padded tokens' logits are those of real tokens halved, below them where it matters. Built with
the ``gguf`` package, no network; ``python -m tests.large_vocab [TARGET]`` builds it by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

LARGE_VOCAB = 262_144
PAD_TEXT = "<pad_{}>"
Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])
"""One Q8_0 block: a float16 scale and 32 int8 values (34 bytes)."""
NORMAL_TOKEN = 1


def default_target(source: Path, n_vocab: int = LARGE_VOCAB) -> Path:
    """Where the padded model of ``source`` is kept: beside it (models/ ignores *.gguf)."""
    return source.with_name(f"{source.stem}.vocab{n_vocab // 1024}k.gguf")


def build_large_vocab_model(source: Path, target: Path | None = None, n_vocab: int = LARGE_VOCAB) -> Path:
    """Write ``source`` with its vocabulary padded to ``n_vocab`` tokens to ``target`` (kept when it
    is newer than ``source``); returns the path. Needs a tied Q8_0 ``token_embd`` (the default model)."""
    import gguf

    target = target or default_target(source, n_vocab)
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    reader = gguf.GGUFReader(source)
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch_field is not None
    arch = str(arch_field.contents())
    tokens = list(reader.get_field(gguf.Keys.Tokenizer.LIST).contents())  # type: ignore[union-attr]
    old_vocab = len(tokens)
    if n_vocab <= old_vocab:
        raise ValueError(f"{source.name} already has {old_vocab} tokens")
    extra = n_vocab - old_vocab
    part = target.with_name(target.name + ".part")
    writer = gguf.GGUFWriter(part, arch=arch, endianess=reader.endianess)
    replaced: dict[str, object] = {
        gguf.Keys.Tokenizer.LIST: [*tokens, *(PAD_TEXT.format(i) for i in range(old_vocab, n_vocab))],
        gguf.Keys.Tokenizer.TOKEN_TYPE: [
            *reader.get_field(gguf.Keys.Tokenizer.TOKEN_TYPE).contents(),  # type: ignore[union-attr]
            *[NORMAL_TOKEN] * extra,
        ],
        f"{arch}.vocab_size": n_vocab,
    }
    name = reader.get_field(gguf.Keys.General.NAME)
    replaced[gguf.Keys.General.NAME] = f"{name.contents() if name else source.stem} (vocabulary {n_vocab})"
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = replaced.get(field.name, field.contents())
        writer.add_key_value(field.name, value, kind, sub_type=sub_type)
    datas: list[np.ndarray] = []
    for tensor in reader.tensors:
        data = np.asarray(tensor.data)
        if tensor.name == "token_embd.weight":
            if tensor.tensor_type != gguf.GGMLQuantizationType.Q8_0 or data.shape[0] != old_vocab:
                raise ValueError(f"{source.name}: token_embd.weight is not a Q8_0 matrix of {old_vocab} rows")
            blocks = data.reshape(old_vocab, -1).view(Q8_0_BLOCK)
            padded = np.resize(blocks, (extra, blocks.shape[1])).copy()
            padded["d"] = (padded["d"].astype(np.float32) * 0.5).astype(np.float16)
            data = np.concatenate([blocks, padded]).view(np.uint8)
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, tensor.tensor_type)
        datas.append(data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data in datas:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    part.replace(target)
    return target


if __name__ == "__main__":
    from tests.bench.common import DEFAULT_MODEL

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    print(build_large_vocab_model(DEFAULT_MODEL, out))
