"""Chat export: readable Markdown, and a complete versioned JSON format that imports back.

JSON format ``tokendial.chat`` version 3::

    {"format": "tokendial.chat", "version": 2, "exported_at": "<ISO time>",
     "chat": {"title", "title_is_auto", "created_at", "updated_at", "last_params", "keep_events", "mode"},
     "messages": [{"role", "text", "created_at", "status", "reply": {...} | null,
                   "token_events": {"fields": [...], "candidate_fields": [...], "rows": [[...]]} | null,
                   "sibling_ordinal": 0, "branched_at": null,
                   "siblings": [{"ordinal", "text", "status", "reply", "branched_at", "token_events"}]}],
     "comparisons": [{"prompt", "mode", "kept", "parting", "after_messages", "created_at",
                      "columns": [{"label", "text", "reply"}]}]}

``reply`` holds every parameter version used, the model file and fingerprint, seed, stop reason,
token count, speed and timings. Token event rows list their values in ``fields`` order.
``siblings`` are the other continuations of a branched reply (the message is the one shown, at
place ``sibling_ordinal``). ``comparisons`` are the compare runs saved with the chat, each column's
``reply`` holding its parameters, stop reason and token count (``kept``: the column kept as the
reply). Version 1 (no branches) and 2 (no comparisons) files import as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from settings.sampling import SamplingParams
from tui.store import events_codec
from tui.store.errors import ImportFormatError
from tui.store.records import MessageStatus, Role, StoredChat, StoredComparison, StoredReply, now_utc

if TYPE_CHECKING:
    from tui.store.store import ChatStore

EXPORT_FORMAT = "tokendial.chat"
EXPORT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


class ExportedEvents(BaseModel):
    """Token events of one reply as rows (see ``fields``)."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(default_factory=lambda: list(events_codec.EVENT_FIELDS))
    candidate_fields: list[str] = Field(default_factory=lambda: list(events_codec.CANDIDATE_FIELDS))
    rows: list[list[Any]]

    @model_validator(mode="after")
    def _rows_decode(self) -> ExportedEvents:
        if tuple(self.fields) not in (events_codec.EVENT_FIELDS, events_codec.EVENT_FIELDS[:-1]):
            raise ValueError(f"token event fields must be {list(events_codec.EVENT_FIELDS)}")
        if tuple(self.candidate_fields) != events_codec.CANDIDATE_FIELDS:
            raise ValueError(f"candidate fields must be {list(events_codec.CANDIDATE_FIELDS)}")
        try:
            events_codec.rows_to_events(self.rows)
        except (ValueError, TypeError) as error:
            raise ValueError(f"bad token event row: {error}") from error
        return self


class ExportedSibling(BaseModel):
    """Another continuation of a branched reply."""

    model_config = ConfigDict(extra="forbid")

    ordinal: int = Field(ge=0)
    text: str
    status: MessageStatus = MessageStatus.FINISHED
    reply: StoredReply
    branched_at: int | None = Field(default=None, ge=0)
    token_events: ExportedEvents | None = None


class ExportedMessage(BaseModel):
    """One message in an export."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    created_at: datetime
    status: MessageStatus = MessageStatus.FINISHED
    reply: StoredReply | None = None
    token_events: ExportedEvents | None = None
    sibling_ordinal: int = Field(default=0, ge=0)
    branched_at: int | None = Field(default=None, ge=0)
    siblings: list[ExportedSibling] = Field(default_factory=list)

    @model_validator(mode="after")
    def _siblings_have_their_own_places(self) -> ExportedMessage:
        places = [s.ordinal for s in self.siblings] + [self.sibling_ordinal]
        if len(set(places)) != len(places):
            raise ValueError("each branch of a reply needs its own ordinal")
        if self.siblings and self.role is not Role.ASSISTANT:
            raise ValueError("only assistant replies have branches")
        return self


class ExportedChat(BaseModel):
    """The chat's own fields in an export."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    title_is_auto: bool = False
    created_at: datetime
    updated_at: datetime
    last_params: SamplingParams | None = None
    keep_events: bool = False
    mode: Literal["chat", "completion"] = "chat"


class ChatExport(BaseModel):
    """A whole exported chat (format ``tokendial.chat``)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["tokendial.chat"]
    version: Literal[1, 2, 3]
    exported_at: datetime
    chat: ExportedChat
    messages: list[ExportedMessage]
    comparisons: list[StoredComparison] = Field(default_factory=list)


SiblingRows = tuple[int, str, MessageStatus, StoredReply, int | None, list[list[Any]] | None]
"""A stored sibling as the export takes it: ordinal, text, status, reply, branched_at, event rows."""


def chat_to_export(
    chat: StoredChat,
    events: dict[int, list[list[Any]]],
    siblings: Mapping[int, Sequence[SiblingRows]] | None = None,
    comparisons: Sequence[StoredComparison] = (),
) -> dict[str, Any]:
    """The export dict of a stored chat; ``events`` maps message id to token event rows,
    ``siblings`` to the other continuations of a branched reply; its saved ``comparisons``."""
    siblings = siblings or {}
    export = ChatExport(
        format=EXPORT_FORMAT,
        version=EXPORT_VERSION,
        exported_at=now_utc(),
        chat=ExportedChat(
            title=chat.title,
            title_is_auto=chat.title_is_auto,
            created_at=chat.created_at,
            updated_at=chat.updated_at,
            last_params=chat.last_params,
            keep_events=chat.keep_events,
            mode="completion" if chat.mode == "completion" else "chat",
        ),
        messages=[
            ExportedMessage(
                role=m.role,
                text=m.text,
                created_at=m.created_at,
                status=m.status,
                reply=m.reply,
                token_events=ExportedEvents(rows=events[m.id]) if m.id in events else None,
                sibling_ordinal=m.sibling_ordinal,
                branched_at=m.branched_at,
                siblings=[
                    ExportedSibling(
                        ordinal=ordinal,
                        text=text,
                        status=status,
                        reply=reply,
                        branched_at=branched_at,
                        token_events=ExportedEvents(rows=rows) if rows is not None else None,
                    )
                    for ordinal, text, status, reply, branched_at, rows in siblings.get(m.id, ())
                ],
            )
            for m in chat.messages
        ],
        comparisons=list(comparisons),
    )
    return export.model_dump(mode="json")


def parse_export(data: Any) -> ChatExport:
    """Validate export data (dict, JSON text or bytes); raises ImportFormatError with a clear reason."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise ImportFormatError(
                f"The file is not valid JSON ({error}).", "Pick a file made by tokendial's JSON export."
            ) from error
    if not isinstance(data, dict):
        raise ImportFormatError("The file does not hold a tokendial chat export.", "Expected a JSON object.")
    if data.get("format") != EXPORT_FORMAT:
        raise ImportFormatError(
            'The file is not a tokendial chat export (no "format": "tokendial.chat").',
            "Pick a file made by tokendial's JSON export.",
        )
    if data.get("version") not in READABLE_VERSIONS:
        raise ImportFormatError(
            f"The chat export has version {data.get('version')!r}; this tokendial reads versions "
            f"{', '.join(str(v) for v in READABLE_VERSIONS)}.",
            "Export it again with this version, or update tokendial.",
        )
    try:
        return ChatExport.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ImportFormatError(
            f"The chat export is invalid at {where}: {first['msg']} ({error.error_count()} problem(s)).",
            "The file may have been edited by hand; export it again.",
        ) from error


def params_line(params: SamplingParams) -> str:
    """A compact one-line summary of sampling parameters."""
    parts = (
        ["greedy"]
        if params.is_greedy
        else [
            f"T {params.temperature:g}",
            f"top-k {params.top_k}",
            f"top-p {params.top_p:g}",
            f"min-p {params.min_p:g}",
        ]
    )
    parts.append(f"repeat {params.repeat_penalty:g}/{params.repeat_last_n}")
    parts.append(f"max {params.max_new_tokens}")
    if params.stop:
        parts.append("stop " + ", ".join(repr(s) for s in params.stop))
    return " · ".join(parts)


_CLASSIC = frozenset(
    {"mode", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "max_new_tokens",
     "stop", "seed", "logit_bias", "grammar", "json_schema", "samplers"}
)  # fmt: skip
"""Fields :func:`params_line` shows, or that get their own lines (the seed used is shown apart)."""
_DEFAULTS = SamplingParams()


def _setting_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))  # an IntEnum (mirostat) as its number, like the setting
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in value) + "]"
    return str(value)


def params_details(params: SamplingParams, token_texts: Mapping[int, str] | None = None) -> list[str]:
    """What :func:`params_line` leaves out, for the Markdown export: every other sampler setting
    that is not its default (by its setting name), the chain's order when not llama.cpp's, the
    logit biases (with the token's text where ``token_texts`` knows it)."""
    lines: list[str] = []
    extras = [
        f"{name} {_setting_value(getattr(params, name))}"
        for name in SamplingParams.model_fields
        if name not in _CLASSIC and getattr(params, name) != getattr(_DEFAULTS, name)
    ]
    if extras:
        lines.append("samplers: " + " · ".join(extras))
    if params.samplers != _DEFAULTS.samplers:
        lines.append("order: " + " → ".join(s.value for s in params.samplers))
    if params.logit_bias:
        texts = token_texts or {}
        entries = []
        for token, bias in sorted(params.logit_bias.items()):
            shown = f" {json.dumps(texts[token], ensure_ascii=False)}" if token in texts else ""
            entries.append(f"{token}{shown} " + ("banned" if bias == float("-inf") else f"{bias:+g}"))
        lines.append("logit bias: " + " · ".join(entries))
    return lines


def _fenced(label: str, language: str, text: str) -> list[str]:
    """``text`` as a fenced block (a fence longer than any run of backticks inside it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{label}:", f"{fence}{language}", *text.rstrip("\n").split("\n"), fence]


def _constraint_lines(params: SamplingParams) -> list[str]:
    if params.grammar.strip():
        return _fenced("grammar (GBNF)", "gbnf", params.grammar)
    if params.json_schema.strip():
        return _fenced("JSON schema", "json", params.json_schema)
    return []


def _reply_lines(
    reply: StoredReply, status: MessageStatus, token_texts: Mapping[int, str] | None = None
) -> list[str]:
    lines = []
    versions = sorted(reply.params.items())
    if len(versions) == 1:
        lines.append(f"parameters: {params_line(versions[0][1])}")
        lines += params_details(versions[0][1], token_texts)
    else:
        lines.append("parameters changed during the reply:")
        for v, p in versions:
            lines.append(f"v{v}: {params_line(p)}")
            lines += [f"v{v} {line}" for line in params_details(p, token_texts)]
    groups: dict[tuple[str, str], list[int]] = {}
    for v, p in versions:
        groups.setdefault((p.grammar, p.json_schema), []).append(v)
    for (grammar, schema), used_by in groups.items():
        block = _constraint_lines(SamplingParams(grammar=grammar, json_schema=schema))
        if block and len(groups) > 1:
            block[0] = ", ".join(f"v{v}" for v in used_by) + f" {block[0]}"
        lines += block
    facts = []
    if reply.seed is not None:
        facts.append(f"seed {reply.seed}")
    if reply.model is not None:
        facts.append(f"model {reply.model.file_name}")
    if facts:
        lines.append(" · ".join(facts))
    if status is MessageStatus.INTERRUPTED:
        lines.append("**interrupted**: the app stopped before this reply finished (partial text)")
    else:
        label = reply.stop_label or (reply.stop.label() if reply.stop else "unknown")
        stats = [f"stop: **{label}**", f"{reply.token_count} tokens"]
        if reply.tokens_per_s:
            stats.append(f"{reply.tokens_per_s:.1f} tok/s")
        lines.append(" · ".join(stats))
    return lines


def chat_to_markdown(
    chat: StoredChat,
    token_texts: Mapping[int, str] | None = None,
    comparisons: Sequence[StoredComparison] = (),
) -> str:
    """A readable Markdown transcript with the parameters (every sampler set, the order, biases,
    the grammar) and the stop reason under each reply, then the chat's saved comparisons (each
    column's parameters, stop reason and text); ``token_texts`` names biased tokens."""
    out = [
        f"# {chat.title}",
        "",
        f"_tokendial chat · started {chat.created_at:%Y-%m-%d %H:%M} UTC · {len(chat.messages)} messages_",
        "",
    ]
    names = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
    for message in chat.messages:
        out += [f"## {names[message.role]} · {message.created_at:%Y-%m-%d %H:%M:%S}", "", message.text, ""]
        if message.reply is not None:
            lines = _reply_lines(message.reply, message.status, token_texts)
            if message.sibling_count > 1:
                others = message.sibling_count - 1
                lines.append(
                    f"branch {message.sibling_ordinal + 1} of {message.sibling_count} shown"
                    + ("" if message.branched_at is None else f" (branched at token #{message.branched_at})")
                    + (f"; the other {others} continuations are" if others > 1 else "; the other one is")
                    + " in the JSON export"
                )
            out += _quoted(lines)
            out.append("")
    for number, comparison in enumerate(comparisons, 1):
        out += _comparison_lines(number, comparison)
    return "\n".join(out).rstrip() + "\n"


def _quoted(lines: Sequence[str]) -> list[str]:
    """``lines`` as a block quote: hard line breaks (two trailing spaces) outside code fences."""
    out: list[str] = []
    fence: str | None = None
    for line in lines:
        opens = re.match(r"`{3,}", line)
        if fence is None and opens:
            fence = opens.group(0)
            out.append(f"> {line}")
        elif fence is not None:
            out.append(f"> {line}".rstrip(" ") if line.strip() else ">")
            if line == fence:
                fence = None
        else:
            out.append(f"> {line}  ")
    return out


def _comparison_lines(number: int, comparison: StoredComparison) -> list[str]:
    """One saved comparison in the Markdown export: the prompt, then each column."""
    mode = " · completion mode" if comparison.mode == "completion" else ""
    out = [
        f"## Comparison {number} · {comparison.created_at:%Y-%m-%d %H:%M:%S} · "
        f"{len(comparison.columns)} columns{mode}",
        "",
        f"_after message {comparison.after_messages}; prompt:_ {comparison.prompt}",
        "",
    ]
    if comparison.parting:
        out += [f"_{comparison.parting}_", ""]
    for index, column in enumerate(comparison.columns):
        kept = " · **kept as the reply**" if comparison.kept == index else ""
        out += [f"### Column {index + 1}: {column.label}{kept}", ""]
        out += _quoted(_reply_lines(column.reply, MessageStatus.FINISHED))
        out += ["", column.text, ""]
    return out


def export_file_name(title: str, chat_id: int, kind: str) -> str:
    """``<slug of the title>-<id>.<kind>``: a safe file name for an exported chat."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:40] or "chat"
    return f"{slug}-{chat_id}.{kind}"


def write_json_exports(store: ChatStore, chat_ids: Sequence[int], directory: Path) -> list[Path]:
    """Export each chat to ``directory`` as JSON (what quitting with unsaved chats offers); the files.

    Raises OSError (the directory cannot be written) or StoreError (a chat cannot be read).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for chat_id in chat_ids:
        data = store.export_json(chat_id)
        path = directory / export_file_name(data["chat"]["title"], chat_id, "json")
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written
