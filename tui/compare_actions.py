"""The compare part of the app: open the compare view on a prompt, run it on the engine worker, keep a column.

A collaborator of :class:`~tui.app.TokendialApp` (composed, not mixed in), built like
:class:`~tui.inspector_actions.InspectorActions`. The compare view opens on the text in the prompt
box (a new prompt) or, when the box is empty, on the chat's last prompt (its reply is compared
again). Every run goes to the app's one engine worker as a :class:`~tui.worker.CompareJob`: the
thread that owns the model runs the batch; the UI never calls the model. Keeping a column puts it
into the chat as the reply through the conversation (``add_prompt`` for a new prompt, or
``take_back_reply`` for the last one, then ``add_finished_replies``): the other finished columns
become its branches (siblings, ``[`` / ``]`` switches), and the store saves them as it saves any
branched reply.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App

from settings.sampling import SamplingParams
from tui.core.comparison import ComparedColumn, Comparison
from tui.core.conversation import Conversation, ReplyTurn, UserTurn
from tui.core.state import ModelState
from tui.engine.events import ChatMessage
from tui.engine.live import LiveParams
from tui.engine.param_sets import column_labels
from tui.reply_flow import ReplyFlow
from tui.views import MainViews, Notifier
from tui.widgets.chat_view import AssistantMessage, UserMessage
from tui.worker import CompareJob, ModelSlot

if TYPE_CHECKING:  # the compare view imports the batch decoder (llama.cpp): loaded when first opened
    from tui.compare_export import CompareOutcome
    from tui.screens.compare import CompareScreen, CompareSink


class CompareActions:
    """The compare view, opened from the chat."""

    def __init__(
        self,
        app: App[Any],
        conversation: Conversation,
        replies: ReplyFlow,
        model: ModelSlot,
        views: MainViews,
        notify: Notifier,
        *,
        presets: Mapping[str, SamplingParams],
        export_dir: Path | None = None,
    ) -> None:
        self._app = app
        self.conversation = conversation
        self.replies = replies
        self.model = model
        self.views = views
        self.notify = notify
        self.presets = presets
        self.export_dir = export_dir
        self.screen: CompareScreen | None = None
        """The compare view while it is open."""
        self._new_prompt: str | None = None
        """The prompt box's text the view compares (None: the chat's last prompt)."""
        self._raw = False
        """The compare runs in completion mode (the text continued as it is, no template)."""

    def open_compare(self) -> CompareScreen | None:
        """Open the compare view on the prompt box's text, or on the last prompt; None (with a note)."""
        if self.screen is not None:  # already open (F5 again, or its palette entry)
            return self.screen
        if self.replies.busy:
            self.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return None
        if self.model.state is not ModelState.READY:
            self.notify("The model is not ready.", severity="error")
            return None
        self._raw = self.replies.modes.raw  # completion mode: the texts continued, no template
        text = self.views.prompt.text.strip()
        if text:
            messages: tuple[ChatMessage, ...] = (*self.conversation.messages(), ChatMessage("user", text))
            self._new_prompt = text
        else:
            messages = self._last_prompt_messages()
            if not messages:
                self.notify("Type a prompt first: compare runs it under several sets.", severity="warning")
                return None
            self._new_prompt = None
        from tui.screens.compare import CompareScreen

        screen = CompareScreen(
            messages,
            None,
            submit=self.submit,
            base=self.conversation.live.params,
            presets=self.presets,
            export_dir=self.export_dir,
            raw=self._raw,
        )
        self.screen = screen
        self._app.push_screen(screen, self._closed)
        return screen

    def _last_prompt_messages(self) -> tuple[ChatMessage, ...]:
        """What the last prompt's reply was sent (the messages without the replies after it)."""
        messages = list(self.conversation.messages())
        while messages and messages[-1].role == "assistant":
            messages.pop()
        return tuple(messages) if messages and messages[-1].role == "user" else ()

    def submit(
        self,
        messages: Sequence[ChatMessage],
        lives: Sequence[LiveParams],
        cancel: threading.Event,
        stops: Sequence[threading.Event],
        sink: CompareSink,
    ) -> None:
        """Queue a compare run on the engine worker (the thread that owns the model)."""
        self.model.worker.submit(
            CompareJob(tuple(messages), tuple(lives), tuple(stops), sink, cancel, raw=self._raw)
        )

    async def _closed(self, outcome: CompareOutcome | None) -> None:
        self.screen = None
        if outcome is None:
            return
        kept = outcome.promoted is not None and await self.keep(outcome, outcome.promoted)
        self.record(outcome, outcome.promoted if kept else None)

    def record(self, outcome: CompareOutcome, kept: int | None) -> None:
        """Save the finished comparison with the chat (its finished columns; ``kept``: the column
        kept as the reply). A chat with no prompt sent yet is not stored, nor is its comparison."""
        labels = column_labels(outcome.sets)
        finished = [c for c, d in enumerate(outcome.dones) if d is not None]
        columns = tuple(ComparedColumn(labels[c], d) for c, d in enumerate(outcome.dones) if d is not None)
        if not columns:
            return
        prompt = outcome.messages[-1].content if outcome.messages else ""
        self.conversation.record_comparison(
            Comparison(
                prompt,
                columns,
                kept=finished.index(kept) if kept in finished else None,
                parting=outcome.parting.describe() if outcome.parting else None,
                mode="completion" if self._raw else "chat",
            )
        )

    async def keep(self, outcome: CompareOutcome, column: int) -> bool:
        """Put column ``column`` of ``outcome`` into the chat as the reply to its prompt."""
        done = outcome.dones[column]
        if done is None:
            self.notify("That column did not finish: nothing to keep.", severity="warning")
            return False
        if self.replies.busy:
            self.notify("A reply is being generated: keep the column after it.", severity="warning")
            return False
        conversation = self.conversation
        chat = self.views.chat_view
        previous = None
        if self._new_prompt is not None:
            self.views.prompt.clear()
            conversation.add_prompt(self._new_prompt)
            await chat.mount(UserMessage(self._new_prompt))
        else:
            last = conversation.turns[-1] if conversation.turns else None
            if isinstance(last, ReplyTurn):  # the prompt's old reply stays, as a branch
                previous = conversation.take_back_reply()
                await self.replies.remove_reply(previous)
            elif not isinstance(last, UserTurn):
                self.notify("The chat changed: the column was not kept.", severity="warning")
                return False
        finished = [c for c, d in enumerate(outcome.dones) if d is not None]
        replies = [(d, outcome.events[c]) for c, d in enumerate(outcome.dones) if d is not None]
        record, siblings = conversation.add_finished_replies(
            replies, finished.index(column), previous=previous
        )
        widget = AssistantMessage(record)
        await chat.mount(widget)
        await widget.finish(done)
        self.replies.label_message(record)
        self.views.token_view.show_reply(record)
        self.views.status.set_done(done)
        others = "" if siblings is None else f"; the other {len(siblings.records) - 1} are its branches ([ ])"
        self.notify(f"Column {column + 1} is the reply now{others}.", title="Compare", timeout=3)
        return True
