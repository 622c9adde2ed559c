"""Small real GGUF files for the library's tests, written with the ``gguf`` package."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
THINKING_TEMPLATE = CHATML + "{% if add_generation_prompt %}{{ '<think>\\n' }}{% endif %}{# </think> #}"


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    name: str | None = "Tiny Test",
    n_vocab: int = 64,
    template: str | None = CHATML,
    file_type: int | None = 15,
    context: int = 4096,
    layers: int = 2,
    embd: int = 64,
    heads: int = 4,
    heads_kv: int = 2,
    size_label: str | None = None,
    split: tuple[int, int] | None = None,
    weights: int = 32,
) -> Path:
    """A well-formed GGUF with a vocabulary of ``n_vocab`` tokens and one tensor of ``weights`` floats."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    if name is not None:
        writer.add_name(name)
    if size_label:
        writer.add_size_label(size_label)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_context_length(context)
    writer.add_block_count(layers)
    writer.add_embedding_length(embd)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads_kv)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(n_vocab)])
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types([1] * n_vocab)
    writer.add_token_merges([f"t{i} t{i + 1}" for i in range(max(0, n_vocab // 2))])
    if template is not None:
        writer.add_chat_template(template)
    if split is not None:
        writer.add_uint16("split.no", split[0] - 1)
        writer.add_uint16("split.count", split[1])
    writer.add_tensor("token_embd.weight", np.zeros((weights // 4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def copy_without_template(source: Path, target: Path) -> Path:
    """``source`` with its ``tokenizer.chat_template`` key removed (a real model with no template)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    reader = gguf.GGUFReader(str(source), "r")
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch_field is not None
    arch = arch_field.contents()
    writer = gguf.GGUFWriter(str(target), arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {}, [gguf.Keys.Tokenizer.CHAT_TEMPLATE])
    return target
