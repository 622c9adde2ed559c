"""A model card: what a GGUF is, read from its header alone (no model loaded)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.library.gguf_header import GGUFHeader

FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}
"""llama.cpp's ``llama_ftype`` (the ``general.file_type`` key) by number."""

_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ\d_\d)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
KV_BYTES_PER_VALUE = 2
"""llama.cpp's KV cache holds F16 keys and values by default."""
NOT_LANGUAGE_MODELS = frozenset({"clip", "mllama_vision", "whisper"})
"""Architectures of files that are parts of a model (vision projectors...), not a model to chat with."""

THINK_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("◁think▷", "◁/think▷"),
    ("<seed:think>", "</seed:think>"),
)
"""Reasoning-section markers models use; a template that writes one declares it."""


def quant_from_name(name: str) -> str | None:
    """The quantization a file name states (``...-Q4_K_M.gguf`` -> ``Q4_K_M``), or None."""
    found = _QUANT_IN_NAME.findall(Path(name).stem)
    return found[-1].upper() if found else None


@dataclass(frozen=True)
class ModelCard:
    """What the header says about a model."""

    name: str
    architecture: str
    size_label: str
    quantization: str
    file_size: int
    """Bytes on disk, all split parts together."""
    n_ctx_train: int | None
    n_vocab: int | None
    chat_template: str | None
    n_layer: int | None
    n_embd: int | None
    n_head: int | None
    n_head_kv: int | None
    key_length: int | None
    value_length: int | None
    think_tags: tuple[str, str] | None = None
    """The reasoning markers the chat template writes, if any."""
    split_count: int = 1

    @property
    def has_chat_template(self) -> bool:
        """Whether the GGUF carries its own chat template."""
        return bool(self.chat_template)

    @property
    def is_language_model(self) -> bool:
        """False for vision projectors and other parts that can't be chatted with alone."""
        return self.architecture not in NOT_LANGUAGE_MODELS

    def kv_cache_bytes(self, n_ctx: int) -> int | None:
        """The KV cache's size at ``n_ctx`` (F16 keys and values), or None if the header lacks the counts."""
        if not self.n_layer or not self.n_embd or not self.n_head:
            return None
        head_kv = self.n_head_kv or self.n_head
        head_dim = self.n_embd // self.n_head
        k_dim = (self.key_length or head_dim) * head_kv
        v_dim = (self.value_length or head_dim) * head_kv
        return self.n_layer * n_ctx * (k_dim + v_dim) * KV_BYTES_PER_VALUE

    def memory_estimate(self, n_ctx: int) -> int:
        """Bytes needed at ``n_ctx``: the weights (the file) plus the KV cache (llama.cpp's compute
        buffers come on top, typically a few hundred MB at most)."""
        return self.file_size + (self.kv_cache_bytes(n_ctx) or 0)


def card_from_header(header: GGUFHeader, path: Path, file_size: int, split_count: int = 1) -> ModelCard:
    """The card for a file whose header is ``header``."""
    arch = header.get_str("general.architecture") or "?"

    def arch_int(name: str) -> int | None:
        return header.get_int(f"{arch}.{name}")

    file_type = header.get_int("general.file_type")
    quant = FILE_TYPES.get(file_type) if file_type is not None else None
    quant = quant or quant_from_name(path.name) or (f"type {file_type}" if file_type is not None else "?")
    template = header.get_str("tokenizer.chat_template") or None
    size_label = header.get_str("general.size_label") or _size_from_name(path.name) or "?"
    return ModelCard(
        name=header.get_str("general.name") or path.stem,
        architecture=arch,
        size_label=size_label,
        quantization=quant,
        file_size=file_size,
        n_ctx_train=arch_int("context_length"),
        n_vocab=header.array_length("tokenizer.ggml.tokens") or arch_int("vocab_size"),
        chat_template=template,
        n_layer=arch_int("block_count"),
        n_embd=arch_int("embedding_length"),
        n_head=arch_int("attention.head_count"),
        n_head_kv=arch_int("attention.head_count_kv"),
        key_length=arch_int("attention.key_length"),
        value_length=arch_int("attention.value_length"),
        think_tags=declared_think_tags(template),
        split_count=split_count,
    )


_SIZE_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?[BMK])(?![A-Za-z0-9])", re.IGNORECASE)


def _size_from_name(name: str) -> str | None:
    found = _SIZE_IN_NAME.findall(Path(name).stem)
    return found[0].upper() if found else None


def declared_think_tags(
    template: str | None, known: Sequence[tuple[str, str]] = THINK_TAGS
) -> tuple[str, str] | None:
    """The reasoning markers a chat template mentions (its model writes them), or None."""
    if not template:
        return None
    for opening, closing in known:
        if opening in template and closing in template:
            return opening, closing
    return None


def format_bytes(size: int) -> str:
    """``1.2 GB``, ``98 MB``, ``512 KB``."""
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    if size >= 1e6:
        return f"{size / 1e6:.0f} MB"
    return f"{max(size, 0) / 1e3:.0f} KB"


def card_facts(card: ModelCard, n_ctx: int) -> list[tuple[str, str]]:
    """The card as (label, value) rows, for the picker and ``tokendial models``."""
    kv = card.kv_cache_bytes(n_ctx)
    memory = f"~{format_bytes(card.memory_estimate(n_ctx))} at n_ctx {n_ctx:,}"
    memory += (
        f" (weights {format_bytes(card.file_size)} + KV cache {format_bytes(kv)})"
        if kv
        else " (weights; KV size unknown)"
    )
    template = "yes (its own)" if card.has_chat_template else "NONE: completion mode, or set chat_template"
    if card.think_tags:
        template += f"; thinks in {card.think_tags[0]}...{card.think_tags[1]}"
    rows = [
        ("name", card.name),
        ("architecture", card.architecture),
        ("size", card.size_label),
        ("quantization", card.quantization),
        (
            "file size",
            format_bytes(card.file_size) + (f" in {card.split_count} parts" if card.split_count > 1 else ""),
        ),
        ("trained context", f"{card.n_ctx_train:,}" if card.n_ctx_train else "?"),
        ("vocabulary", f"{card.n_vocab:,}" if card.n_vocab else "?"),
        ("chat template", template),
        ("memory", memory),
    ]
    return rows


def card_line(card: ModelCard, n_ctx: int) -> str:
    """The card in one line."""
    template = "template" if card.has_chat_template else "NO template"
    parts = [
        card.architecture,
        card.size_label,
        card.quantization,
        format_bytes(card.file_size),
        f"ctx {card.n_ctx_train:,}" if card.n_ctx_train else "ctx ?",
        f"vocab {card.n_vocab:,}" if card.n_vocab else "vocab ?",
        template,
        f"mem ~{format_bytes(card.memory_estimate(n_ctx))}",
    ]
    return " · ".join(parts)
