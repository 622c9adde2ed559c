"""The Markdown export names every sampler that was set, the order, the biases (with their token's
text where the chat's token events know it) and the grammar or JSON schema, fenced; on a real
SQLite store."""

from __future__ import annotations

import math
from pathlib import Path

from markdown_it import MarkdownIt

from settings.sampling import Mirostat, SamplingParams
from tui.engine.events import Candidate, ReplyDone, StopKind, StopReason, TokenEvent
from tui.store.store import ChatStore

GRAMMAR = 'root ::= "yes" | "no" | "```"\n\n# a blank line and a fence above'
SET = SamplingParams(
    temperature=0.6,
    typical_p=0.9,
    top_n_sigma=1.5,
    xtc_probability=0.3,
    presence_penalty=0.4,
    dry_multiplier=0.8,
    dry_sequence_breakers=("\n", ","),
    mirostat=Mirostat.V2,
    mirostat_tau=4.0,
    logit_bias={198: -math.inf, 13: 2.5, 4242: -1.0},
    grammar=GRAMMAR,
    samplers="top_k;temperature;penalties",
    seed=9,
)


def event(index: int, token: int, text: str, version: int, others: tuple[tuple[int, str], ...]) -> TokenEvent:
    candidates = tuple(Candidate(t, s, 1.0, 0.1, 0.1, None) for t, s in ((token, text), *others))
    return TokenEvent(index, token, text, text, 0.5, 0.5, candidates, 1.0, version, 3.0)


def store_chat(tmp_path: Path, versions: dict[int, SamplingParams]) -> tuple[ChatStore, int]:
    store = ChatStore(tmp_path / "chats.db")
    chat_id = store.create_chat(params=versions[0])
    store.add_user_message(chat_id, "yes or no?")
    reply = store.begin_assistant_message(chat_id, versions[0])
    last = max(versions)
    events = [event(0, 7, "yes", 0, ((198, "\n"), (13, "."))), event(1, 2, "", last, ())]
    done = ReplyDone(
        stop=StopReason(StopKind.EOS, generated=1), text="yes", token_ids=(7,), prompt_tokens=5,
        prompt_evaluated=5, prompt_ms=1.0, first_token_ms=2.0, decode_ms=3.0, seed=9, params=versions,
    )  # fmt: skip
    store.finish_assistant_message(reply, done, events)
    return store, chat_id


def test_every_sampler_set_the_order_biases_and_the_grammar(tmp_path: Path) -> None:
    store, chat_id = store_chat(tmp_path, {0: SET})
    text = store.export_markdown(chat_id)
    assert "> parameters: T 0.6 · top-k 40 · top-p 0.95 · min-p 0.05 · repeat 1.1/64 · max 256  \n" in text
    samplers = next(line for line in text.splitlines() if line.startswith("> samplers: "))
    assert samplers == (
        '> samplers: presence_penalty 0.4 · typical_p 0.9 · top_n_sigma 1.5 · xtc_probability 0.3 · '
        'dry_multiplier 0.8 · dry_sequence_breakers ["\\n", ","] · mirostat 2 · mirostat_tau 4  '
    )  # fmt: skip
    assert "> order: top_k → temperature → penalties  \n" in text
    assert '> logit bias: 13 "." +2.5 · 198 "\\n" banned · 4242 -1  \n' in text  # 4242: never seen
    assert '> grammar (GBNF):  \n> ````gbnf\n> root ::= "yes" | "no" | "```"\n>\n' in text
    assert "> # a blank line and a fence above\n> ````\n" in text
    # as Markdown: the grammar is one code block, exactly the grammar
    tokens = MarkdownIt().parse(text)
    blocks = [t for t in tokens if t.type == "fence"]
    assert [(b.info, b.content) for b in blocks] == [("gbnf", GRAMMAR + "\n")]


def test_defaults_add_nothing_and_a_schema_is_fenced_as_json(tmp_path: Path) -> None:
    store, chat_id = store_chat(tmp_path, {0: SamplingParams()})
    plain = store.export_markdown(chat_id)
    assert "> samplers:" not in plain and "> order:" not in plain and "logit bias" not in plain
    schema = '{"type": "object", "properties": {"a": {"type": "string"}}}'
    store, chat_id = store_chat(tmp_path / "b", {0: SamplingParams(), 1: SamplingParams(json_schema=schema)})
    text = store.export_markdown(chat_id)
    assert "> v1 JSON schema:  \n> ```json\n> " + schema + "\n> ```\n" in text
    assert "v0 samplers" not in text and "v1 samplers" not in text
