"""The reply flow: send a prompt, stream the reply into the widgets, finish it; regenerate, edit, clear.

A part of the app (composed, not mixed in): it gets the conversation, the model slot, the main
screen's views and a notifier. The conversation changes first (the store follows it at once);
then the widgets are drawn from it. The drawing of streamed tokens is paced (:class:`RedrawPacer`);
the records never are.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ScreenStackError
from textual.css.query import NoMatches
from textual.timer import Timer

from tui.core.conversation import Conversation, ConversationError
from tui.core.reply import ReplyRecord
from tui.core.state import ModelState
from tui.engine.events import ReplyDone
from tui.library.modes import ChatModes
from tui.pacing import RedrawPacer
from tui.views import MainViews, Notifier
from tui.widgets.chat_view import AssistantMessage, UserMessage
from tui.worker import ModelSlot, ReplyFinished, ReplyJob, TokensStreamed

STATUS_REFRESH_S = 0.5
"""The status bar's live token count is redrawn at most this often while a reply streams: a
redraw of the status bar (bottom row) in the same frame as the transcript makes Textual render the
whole rectangle between them, the sampling panel included."""

BUSY = "A reply is being generated: press Esc to cancel it first."


class ReplyFlow:
    """Sending, streaming and finishing replies; regenerate, edit the last prompt, a new chat."""

    def __init__(
        self,
        app: App[Any],
        conversation: Conversation,
        model: ModelSlot,
        views: MainViews,
        notify: Notifier,
        *,
        batch_s: float,
    ) -> None:
        self._app = app
        self.conversation = conversation
        self.model = model
        self.views = views
        self.notify = notify
        self.batch_s = batch_s
        """The worker's base seconds between token batches (scaled with the redraw interval)."""
        self.pacer = RedrawPacer()
        """How often streamed tokens are drawn (adapts to what a redraw costs)."""
        self.listeners: list[Callable[[ReplyFinished], None]] = []
        """Called with every ReplyFinished as posted, once the conversation (and the store) has the
        end and before it is shown (step 2 of :meth:`reply_finished`)."""
        self.modes = ChatModes()
        """Chat or text completion for this chat, and the loaded model's default."""
        self._job: ReplyJob | None = None
        self._context_base: dict[int, int] = {}
        """Reply id -> tokens in the context before its first generated token (from PromptProgress)."""
        self._unshown: dict[int, str] = {}
        """Streamed text not drawn yet, by reply id."""
        self._last_ui_refresh = 0.0
        self._last_status_refresh = 0.0
        self._refresh_timer: Timer | None = None

    @property
    def busy(self) -> bool:
        """True while a reply is queued or being generated."""
        return self.conversation.active is not None

    @property
    def job(self) -> ReplyJob | None:
        """The reply queued or being generated."""
        return self._job

    # -- sending -------------------------------------------------------------------------
    async def send_prompt(self, text: str) -> bool:
        """Add ``text`` as a user message and start its reply; False (with a note) if not possible now."""
        if self.model.state is ModelState.FAILED:
            self.notify(
                "The model is not loaded: see the message in the chat, or press F2 to load another.",
                severity="error",
            )
            return False
        if self.busy:
            self.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return False
        self.views.prompt.clear()
        self.conversation.add_prompt(text)
        await self.views.chat_view.mount(UserMessage(text))
        await self.begin(self.conversation.start_reply())
        return True

    async def begin(self, record: ReplyRecord) -> None:
        """Show the reply ``record`` just started in the conversation and queue it on the engine."""
        chat = self.views.chat_view
        chat.anchor()
        message = AssistantMessage(record)
        await chat.mount(message)
        chat.fold()  # a long chat would slow every redraw of the stream (see SHOWN_MESSAGES)
        if record.events:  # a branch: its fixed tokens are already there
            await message.append(record.streamed_text)
        job = ReplyJob(
            record.reply_id,
            self.conversation.messages(),
            continue_from=self.conversation.continue_from(record),
            raw=self.modes.raw,
        )
        self._job = job
        self.pacer.start()
        self.views.token_view.show_reply(record)
        if self.model.state is ModelState.READY:
            self.views.status.state = ModelState.GENERATING
        self.model.worker.submit(job)

    def cancel(self) -> None:
        """Cancel the reply being generated; its partial text stays, marked cancelled."""
        if self._job is not None:
            self._job.cancel.set()

    # -- streaming -----------------------------------------------------------------------
    async def tokens_streamed(self, message: TokensStreamed) -> None:
        """A batch of tokens: into the conversation, then (paced) the Markdown, token view and status."""
        record = self.conversation.stream(message.reply_id, message.tokens)
        if record is None:
            return
        if message.trimmed is not None:
            self.notify(
                f"The chat is longer than the context ({message.trimmed.n_ctx} tokens): "
                f"the {message.trimmed.dropped_messages} oldest messages were left out.",
                severity="warning",
            )
        if message.progress is not None and message.progress.context:
            self._context_base[message.reply_id] = message.progress.context
        if message.tokens:
            text = "".join(event.text for event in message.tokens)
            self._unshown[message.reply_id] = self._unshown.get(message.reply_id, "") + text
        elif message.progress is not None and not self.views.quitting:
            widget = self.views.chat_view.assistant_message(message.reply_id)
            if widget is not None:
                widget.show_progress(message.progress.evaluated, message.progress.total)
        await self._show_streamed()

    async def _show_streamed(self) -> None:
        """Show streamed tokens now, or later if the last redraw was under ``pacer.interval`` ago.

        The records are always up to date; only the drawing is throttled, so a fast model is not
        slowed down by a relayout per token batch.
        """
        elapsed = time.monotonic() - self._last_ui_refresh
        if elapsed >= self.pacer.interval:
            await self._flush_streamed()
        elif self._refresh_timer is None:
            self._refresh_timer = self._app.set_timer(self.pacer.interval - elapsed, self._flush_streamed)

    async def _flush_streamed(self, *, final: bool = False) -> None:
        """Draw what was streamed since the last redraw; ``final``: the reply ended (not paced)."""
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
            self._refresh_timer = None
        if self.views.quitting:  # the screens are going away; the records are complete anyway
            return
        with contextlib.suppress(NoMatches, ScreenStackError):  # quitting: widgets gone mid-draw
            await self._draw_streamed()
        if not final:
            self.pacer.drawn()
            # Messages no more often than redraws need them: each one wakes the UI thread.
            self.model.worker.batch_s = self.batch_s * self.pacer.interval / self.pacer.min_s

    async def _draw_streamed(self) -> None:
        self._last_ui_refresh = time.monotonic()
        unshown, self._unshown = self._unshown, {}
        token_view = self.views.token_view
        for reply_id, text in unshown.items():
            widget = self.views.chat_view.assistant_message(reply_id)
            if widget is not None:
                await widget.append(text)
            if token_view.record is not None and token_view.record.reply_id == reply_id:
                token_view.append_tokens(())
        record = self.conversation.active
        if record is not None and self._status_due(len(record.events)):
            self._last_status_refresh = self._last_ui_refresh
            status = self.views.status
            status.live_tokens = len(record.events)
            base = self._context_base.get(record.reply_id)
            if base is not None:  # the prompt (and a branch's fixed tokens), then each new token
                status.set_context(base + len(record.events) - record.fixed_tokens)

    def _status_due(self, count: int) -> bool:
        """Whether the status bar's live count should be redrawn now: the first token at once, then
        at most every STATUS_REFRESH_S."""
        shown = self.views.status.live_tokens
        if count == shown:
            return False
        return shown == 0 or self._last_ui_refresh - self._last_status_refresh >= STATUS_REFRESH_S

    # -- the end ---------------------------------------------------------------------------
    async def reply_finished(self, message: ReplyFinished) -> None:
        """The reply ended. One sequence, in this order:

        1. the conversation records the end (a branch's fixed tokens first) and the store, its
           observer, commits the reply (and its branches) to disk;
        2. the listeners see the message (as posted: nothing rewrites it);
        3. the streamed text not drawn yet is drawn;
        4. the transcript, the token view and the status bar show the end;
        5. a branch says how much of its prompt the KV cache saved.
        """
        finished = self.conversation.finish_reply(message.reply_id, message.done, message.tokens)
        self._context_base.pop(message.reply_id, None)
        if self._job is not None and self._job.reply_id == message.reply_id:
            self._job = None
        for listener in list(self.listeners):
            listener(message)
        await self._flush_streamed(final=True)
        record = finished.record
        if record is None or self.views.quitting:  # the chat was cleared meanwhile, or the app quits
            return
        with contextlib.suppress(NoMatches, ScreenStackError):  # quitting: widgets gone mid-draw
            await self._show_finished(record, message.done)
        if record.fixed_tokens and message.done.prompt_tokens:
            done = message.done
            reused = done.prompt_tokens + record.fixed_tokens - done.prompt_evaluated
            self.notify(
                f"Evaluated {done.prompt_evaluated} token(s); {reused} came from the KV cache.",
                title="Branch",
                timeout=4,
            )

    async def _show_finished(self, record: ReplyRecord, done: ReplyDone) -> None:
        widget = self.views.chat_view.assistant_message(record.reply_id)
        if widget is not None:
            await widget.finish(done)
        token_view = self.views.token_view
        if token_view.record is record:
            token_view.finish(done)
        status = self.views.status
        if self.model.state is ModelState.READY:
            status.state = ModelState.READY
        status.set_done(done)

    def label_message(self, record: ReplyRecord) -> None:
        """Show ``branch i/n`` on the reply's message, if it has branches."""
        siblings = self.conversation.branches.set_of(record.reply_id)
        widget = self.views.chat_view.assistant_message(record.reply_id)
        if widget is not None and siblings is not None:
            widget.border_title = f"assistant · {siblings.label(record.reply_id)}  [ ]"

    def label_branches(self) -> None:
        """Show ``branch i/n`` on every reply of the transcript that has branches."""
        for record in self.conversation.replies:
            self.label_message(record)

    # -- taking back -------------------------------------------------------------------------
    async def regenerate(self) -> None:
        """Generate the last reply again with the current parameters."""
        if self.busy:
            self.notify(BUSY, severity="warning")
            return
        if self.model.state is ModelState.FAILED:
            self.notify("The model is not loaded.", severity="error")
            return
        last = self.conversation.last_reply
        if last is None or last.done is None:
            self.notify("There is no reply to regenerate yet.", severity="warning")
            return
        await self.remove_reply(self.conversation.take_back_reply())
        await self.begin(self.conversation.start_reply())

    async def edit_last(self) -> None:
        """Take back the last prompt (and its reply) and put it in the prompt box."""
        if self.busy:
            self.notify(BUSY, severity="warning")
            return
        if not self.conversation.turns:
            self.notify("There is no prompt to edit yet.", severity="warning")
            return
        try:
            text, reply = self.conversation.edit_last()
        except ConversationError:
            self.notify("There is no prompt to edit yet.", severity="warning")
            return
        if reply is not None:
            await self.remove_reply(reply)
        users = list(self.views.chat_view.query(UserMessage))
        if users:
            await users[-1].remove()
        prompt = self.views.prompt
        prompt.text = text
        prompt.move_cursor(prompt.document.end)
        self.views.show("chat")
        prompt.focus()

    async def remove_reply(self, record: ReplyRecord) -> None:
        """Take the reply ``record`` (no longer in the conversation) off the screen."""
        widget = self.views.chat_view.assistant_message(record.reply_id)
        token_view = self.views.token_view
        if token_view.record is record:
            token_view.show_reply(None)
        if widget is not None:
            await widget.remove()

    async def new_chat(self) -> None:
        """Clear the conversation and the transcript (a reply in progress is cancelled)."""
        self.cancel()
        self.conversation.clear()
        self._unshown.clear()
        self.views.token_view.show_reply(None)
        chat = self.views.chat_view
        await chat.query(".message").remove()
        chat.fold()
        status = self.views.status
        status.context_used = 0
        status.live_tokens = 0
        self.views.show("chat")
        self.modes.new_chat()
