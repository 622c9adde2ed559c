"""The chat transcript: user messages, assistant replies streamed as Markdown, notices.

Replies stream through ``Markdown.get_stream()`` (which batches appends and re-parses only the
last block), so a long reply does not get slower per token. Model text is cleaned of control
characters first, and links are not opened on click (``open_links=False``).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from tui.core.reply import ReplyRecord
from tui.core.text import clean
from tui.engine.events import ReplyDone
from tui.library.thinking import ThinkingStyle
from tui.widgets.stop_badge import small_badge
from tui.widgets.thinking import ThinkingSection

SHOWN_MESSAGES = 6
"""Messages displayed at the bottom of the transcript when a reply starts or a chat is opened.

Earlier ones are folded behind an :class:`EarlierBar` that shows more. Every displayed message
costs each redraw of a streaming reply: Textual lays out all displayed widgets of the screen (each
Markdown block is one), so in a long chat a reply would stream ~20% slower on a 2-core machine.
"""
UNFOLD_STEP = 10
"""Messages shown per use of the bar (click, Enter, or scrolling to the top)."""

USER_DISPLAY_LIMIT = 20_000
"""A longer user message shows its first characters and how many more were sent: wrapping a
megabyte paste on every layout would freeze the app. The model and the chat store get all of it."""


def user_text(content: str, limit: int = USER_DISPLAY_LIMIT) -> Text:
    """What the transcript shows of a user message: cleaned, plain, cut to ``limit`` characters."""
    if len(content) <= limit:
        return Text(clean(content))
    text = Text(clean(content[:limit]))
    text.append(f"\n… {len(content) - limit:,} more characters not shown (sent in full)", style="italic")
    return text


class UserMessage(Static):
    """A message the user sent (shown as plain text)."""

    def __init__(self, content: str) -> None:
        super().__init__(user_text(content), classes="message user", markup=False)
        self._sent = content
        self.border_title = "you"

    # Static.content's setter would show the raw text as markup: keep the user's exact text apart.
    @property
    def content(self) -> str:
        """The exact text the user sent (it is shown cleaned of control characters, as plain text)."""
        return self._sent

    @content.setter
    def content(self, content: str) -> None:
        self._sent = content
        self.update(user_text(content))


class Notice(Static):
    """A note from the app inside the transcript (loading state, load failure, hints)."""

    def __init__(self, text: Text | str, *, classes: str = "", id: str | None = None) -> None:
        super().__init__(Text(text) if isinstance(text, str) else text, classes=f"notice {classes}", id=id)


class AssistantMessage(Vertical):
    """One assistant reply: Markdown streamed token batch by token batch, then a small stop badge.

    A thinking section (``<think>...</think>`` or the model's own markers) is split off into a
    folded :class:`ThinkingSection` above the answer, live while it streams; the chat view's
    :attr:`ChatView.thinking` says which markers and whether the section is hidden.
    """

    def __init__(self, record: ReplyRecord) -> None:
        super().__init__(classes="message assistant")
        self.record = record
        self.border_title = "assistant"
        self._stream: MarkdownStream | None = None
        self._streamed = ""
        self._answer_shown = ""
        """The part of the reply drawn as Markdown (the thinking section left out)."""

    def compose(self) -> ComposeResult:
        """A waiting line, the thinking section (folded; shown when the reply has one), the Markdown
        body and the badge line."""
        yield Static(Text("thinking…", style="italic"), classes="waiting")
        yield ThinkingSection()
        yield Markdown(open_links=False)
        yield Static(classes="badge")

    @property
    def markdown(self) -> Markdown:
        """The Markdown widget holding the reply."""
        return self.query_one(Markdown)

    @property
    def thinking(self) -> ThinkingSection:
        """The reply's thinking section (not displayed when it has none, or thinking is hidden)."""
        return self.query_one(ThinkingSection)

    @property
    def thinking_style(self) -> ThinkingStyle:
        """The transcript's markers and setting (the defaults outside a chat view)."""
        parent = self.parent
        return parent.thinking if isinstance(parent, ChatView) else ThinkingStyle()

    def show_progress(self, evaluated: int, total: int) -> None:
        """Prompt evaluation progress before the first token."""
        if not self._streamed:
            waiting = self.query_one(".waiting", Static)
            waiting.update(Text(f"reading the prompt… {evaluated}/{total} tokens", style="italic"))

    async def append(self, text: str) -> None:
        """Add streamed reply text."""
        if not text:
            return
        self._streamed += text
        await self._show(final=False)

    async def _show(self, *, final: bool) -> None:
        """Draw the reply so far: the thinking section, then the answer (appended to the Markdown
        stream while it only grows; drawn again once when it changes otherwise)."""
        style = self.thinking_style
        split = style.split(self._streamed, final=final)
        if split is None:  # a marker may be coming: nothing to show yet
            return
        section = self.thinking
        section.hidden = style.hidden
        pieces = [event.text for event in self.record.events] if split.thinking is not None else []
        section.show_split(split, pieces, finished=final)
        answer = split.answer
        if answer or section.display or final:
            self.query_one(".waiting", Static).display = False
        if answer == self._answer_shown:
            return
        if not final and answer.startswith(self._answer_shown):
            if self._stream is None:
                self._stream = Markdown.get_stream(self.markdown)
            await self._stream.write(clean(answer[len(self._answer_shown) :]))
        else:
            if self._stream is not None:
                await self._stream.stop()
                self._stream = None
            await self.markdown.update(clean(answer))
        self._answer_shown = answer

    async def finish(self, done: ReplyDone) -> None:
        """The reply ended: settle the final text and show the stop badge."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self._streamed = done.text  # e.g. a stop string was cut from the end
        await self._show(final=True)
        badge = self.query_one(".badge", Static)
        badge.update(small_badge(done.stop))
        self.add_class(f"stop-{done.stop.kind.value}")
        self.add_class("finished")


class EarlierBar(Static, can_focus=True):
    """The first line of a folded transcript: how many earlier messages are hidden; shows more."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,space", "show_more", "Show earlier", id="chat.show_earlier"),
    ]

    class ShowMore(Message):
        """The user asked for more of the earlier messages."""

    def __init__(self) -> None:
        super().__init__(id="earlier")
        self.display = False

    def set_count(self, folded: int) -> None:
        """Show how many messages are folded (hidden when none)."""
        self.display = folded > 0
        if folded:
            step = min(folded, UNFOLD_STEP)
            self.update(
                f"▲ {folded} earlier message{'s' if folded > 1 else ''} · click or scroll up to show "
                f"{'them' if step == folded else f'{step} more'}"
            )

    def on_click(self, event: events.Click) -> None:
        """A click shows more."""
        event.stop()
        self.post_message(self.ShowMore())

    def action_show_more(self) -> None:
        """Enter or space shows more."""
        self.post_message(self.ShowMore())


class ChatView(VerticalScroll):
    """The scrolling transcript; anchored to the bottom while a reply streams.

    Only the last :data:`SHOWN_MESSAGES` messages are displayed after a reply starts or a chat is
    opened (:meth:`fold`); the earlier ones stay in the transcript, folded behind the
    :class:`EarlierBar`, until the user uses the bar or scrolls up (wheel, ↑, page up, home) with
    the view already at the top.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._by_reply: dict[int, AssistantMessage] = {}
        """Reply id -> its message widget: a cache, checked on every use (see ``assistant_message``)."""
        self.thinking = ThinkingStyle()
        """How replies' thinking sections are found and whether they are shown (set on model load)."""

    def compose(self) -> ComposeResult:
        """The bar over folded messages (hidden while none are)."""
        yield EarlierBar()

    @property
    def messages(self) -> list[Widget]:
        """The messages of the transcript (user and assistant), folded ones included, in order."""
        return [child for child in self.children if child.has_class("message")]

    @property
    def folded(self) -> int:
        """How many earlier messages are folded away."""
        return sum(1 for message in self.messages if message.has_class("-folded"))

    def fold(self, keep: int = SHOWN_MESSAGES) -> None:
        """Display only the last ``keep`` messages; the earlier ones go behind the bar."""
        messages = self.messages
        cut = max(len(messages) - keep, 0)
        for index, message in enumerate(messages):
            message.set_class(index < cut, "-folded")
        self._show_folded(cut)

    def show_more(self, step: int = UNFOLD_STEP) -> None:
        """Unfold up to ``step`` more earlier messages, keeping the shown ones where they are on screen."""
        messages = self.messages
        folded = [message for message in messages if message.has_class("-folded")]
        if not folded:
            return
        height, scroll_y = self.virtual_size.height, self.scroll_y
        for message in folded[-step:]:
            message.remove_class("-folded")
        self._show_folded(max(len(folded) - step, 0))
        self._keep_in_place(height, scroll_y)

    def _keep_in_place(self, height: int, scroll_y: float, tries: int = 5) -> None:
        """Once the messages shown above are laid out, scroll down by their height (the view stays put)."""

        def scroll() -> None:
            grown = self.virtual_size.height - height
            if grown <= 0 and tries > 1:  # not laid out yet
                self._keep_in_place(height, scroll_y, tries - 1)
                return
            self.scroll_to(y=scroll_y + max(grown, 0), animate=False, immediate=True)

        self.call_after_refresh(scroll)

    def _show_folded(self, count: int) -> None:
        """Update the bar for ``count`` folded messages."""
        bar = self.query_one(EarlierBar)
        if not count and bar.has_focus:
            self.focus()  # the bar goes away: keep the keyboard in the transcript
        bar.set_count(count)

    def on_earlier_bar_show_more(self, message: EarlierBar.ShowMore) -> None:
        """The bar was used."""
        message.stop()
        self.show_more()

    # Scrolling up at the top (wheel or keys) shows more. Only the user's own scrolling does:
    # focusing the bar or a programmatic scroll to the top must not unfold the chat.
    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """The wheel turned up with the view at the top: show more."""
        if self._more_at_top():
            event.stop()

    def action_scroll_up(self) -> None:
        """Up: scroll, or show more at the top."""
        if not self._more_at_top():
            super().action_scroll_up()

    def action_page_up(self) -> None:
        """Page up: scroll, or show more at the top."""
        if not self._more_at_top():
            super().action_page_up()

    def action_scroll_home(self) -> None:
        """Home: to the top, or show more when already there."""
        if not self._more_at_top():
            super().action_scroll_home()

    def _more_at_top(self) -> bool:
        """At the top with messages folded: show more (True), else False."""
        if self.scroll_y <= 0 and self.folded:
            self.show_more()
            return True
        return False

    def assistant_message(self, reply_id: int) -> AssistantMessage | None:
        """The message widget of reply ``reply_id``, if it is in the transcript.

        Called for every redraw while a reply streams: a DOM query walks every widget of every
        message (each Markdown block is one), so the answer is cached. A cached widget is used only
        while it is still a child of this view showing that reply; otherwise the cache is rebuilt
        from the transcript, so mounting, removing or replacing messages needs no bookkeeping.
        """
        cached = self._by_reply.get(reply_id)
        if cached is not None and cached.parent is self and cached.record.reply_id == reply_id:
            return cached
        self._by_reply = {
            child.record.reply_id: child for child in self.children if isinstance(child, AssistantMessage)
        }
        return self._by_reply.get(reply_id)

    def toggle_thinking(self) -> bool:
        """Open or fold the thinking section of the last reply that shows one; False if none does."""
        for child in reversed(self.children):
            if isinstance(child, AssistantMessage) and child.thinking.display:
                child.thinking.action_toggle_thinking()
                return True
        return False
