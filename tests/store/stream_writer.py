"""Child process for the stress tests: one "window" streaming replies into the chat database.

Usage: python stream_writer.py DB_PATH NAME CHATS REPLIES [forever]
Goes through ChatSession as the app does: a prompt, a reply begun, partial text saved every
20 ms while it "streams", the reply finished with its token events, and every second reply
branched (a sibling stored with it). Its store waits 0.1 s per statement for a lock and tries
again for up to 8 s in all. Prints ``FINISHED chat_id message_id`` after each finished reply,
then one JSON line with what it sent per chat. ``forever`` keeps going (until killed).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.store.conftest

from settings.sampling import SamplingParams
from tests.store.conftest import build_done, build_events
from tui.store import ChatStore
from tui.store.session import ChatSession, SiblingReply


def main() -> None:
    path, name, n_chats, n_replies = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    forever = sys.argv[5:] == ["forever"]
    errors: list[str] = []
    session = ChatSession(
        ChatStore(path, busy_timeout_s=0.1, lock_wait_s=8.0),
        on_error=lambda error: errors.append(str(error)),
        partial_every_s=0.02,
    )
    sent: dict[int, dict[str, int]] = {}
    params = SamplingParams()
    reply_id = 0
    chat = 0
    while chat < n_chats or forever:
        chat += 1
        session.new_chat()
        for r in range(n_replies):
            ok = session.user_message(f"{name} chat {chat} prompt {r}", params)
            assert session.chat_id is not None
            counts = sent.setdefault(
                session.chat_id, {"messages": 0, "replies": 0, "siblings": 0, "events": 0}
            )
            reply_id += 1
            ok &= session.reply_started(reply_id, params)
            words = [f"{name}-{chat}-{r}-w{k}" for k in range(12)]
            for k in range(1, len(words) + 1):
                time.sleep(0.004)
                session.reply_progress(reply_id, " ".join(words[:k]), k)
            text = " ".join(words)
            done = build_done(text, n_tokens=len(words), seed=reply_id)
            ok &= session.reply_finished(reply_id, done, build_events(words))
            counts["messages"] += 2
            counts["replies"] += 1
            counts["events"] += 1
            if r % 2 == 1:
                other = f"{name} other branch {r}"
                sibling = SiblingReply(0, build_done(other, seed=0), build_events(other.split()))
                ok &= session.reply_siblings(reply_id, 1, 2, [sibling])
                counts["siblings"] += 1
            if not ok:
                errors.append(f"a write of chat {session.chat_id} returned False")
            print(f"FINISHED {session.chat_id} {session.message_id_of(reply_id)}", flush=True)
    session.store.close()
    print(json.dumps({"sent": sent, "errors": errors, "retries": session.store.lock_retries}), flush=True)


if __name__ == "__main__":
    main()
