"""Child process for the SIGKILL test: writes chats through ChatStore and reports each step on stdout.

Usage: python sigkill_writer.py DB_PATH (steady|loop)
  steady: three finished replies, then a reply left in progress (partial text saved), then waits.
  loop:   writes replies as fast as it can until killed.
A line is printed only after the store call it reports has returned.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from settings.sampling import SamplingParams
from tui.engine.events import Candidate, ReplyDone, StopKind, StopReason, TokenEvent
from tui.store import ChatStore


def reply_done(text: str, n: int) -> ReplyDone:
    return ReplyDone(
        stop=StopReason(StopKind.EOS, token_id=2, token_text="<|im_end|>", generated=3),
        text=text,
        token_ids=(1, 2, 3),
        prompt_tokens=10,
        prompt_evaluated=10,
        prompt_ms=1.0,
        first_token_ms=2.0,
        decode_ms=3.0,
        seed=n,
        params={0: SamplingParams(seed=n)},
    )


def events(text: str) -> list[TokenEvent]:
    cands = tuple(Candidate(i, f"c{i}", 1.0 - i, 0.5, 0.5, None) for i in range(5))
    return [TokenEvent(i, i, ch, ch, 0.5, 0.5, cands, 1.0, 0, 1.0) for i, ch in enumerate(text)]


def main() -> None:
    path, mode = Path(sys.argv[1]), sys.argv[2]
    store = ChatStore(path)
    chat_id = store.create_chat()
    print(f"CHAT {chat_id}", flush=True)
    n = 0
    while True:
        n += 1
        store.add_user_message(chat_id, f"prompt {n}")
        reply_id = store.begin_assistant_message(chat_id, SamplingParams(seed=n))
        print(f"BEGUN {reply_id}", flush=True)
        text = f"reply number {n}"
        if mode == "steady" and n == 4:
            store.update_assistant_text(reply_id, "partial rep", token_count=2)
            print(f"PARTIAL {reply_id}", flush=True)
            while True:
                time.sleep(1)
        store.update_assistant_text(reply_id, text[:5], token_count=1)
        store.finish_assistant_message(reply_id, reply_done(text, n), events(text))
        print(f"FINISHED {reply_id} {text}", flush=True)


if __name__ == "__main__":
    main()
