"""``tokendial chats``: the saved chats as text (no UI), marking those another window is writing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tui.store.errors import StoreError
from tui.store.opening import open_store, store_notice


def print_chats(
    db_path: Path, search: str | None, out: TextIO, warn: Callable[[str], None], *, limit: int = 500
) -> int:
    """List the chats of ``db_path`` on ``out`` (newest first); problems go to ``warn``. Exit code."""
    opened = open_store(db_path)
    notice = store_notice(opened)
    if notice:
        warn(notice)
    store = opened.store
    try:
        summaries = store.list_chats(search=search, limit=limit)
        elsewhere = store.chats_open_elsewhere()
    except StoreError as error:
        warn(str(error))
        return 1
    finally:
        store.close()
    for chat in summaries:
        when = chat.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
        mark = f"  [open in another window: {elsewhere[chat.id].describe()}]" if chat.id in elsewhere else ""
        title = " ".join(chat.title.split())
        out.write(f"{chat.id:>5}  {when}  {chat.message_count:>4} msgs  {title}{mark}\n")
    if not summaries:
        warn("no saved chats" + (f" match {search!r}" if search else ""))
    return 0 if opened.problem is None else 1
