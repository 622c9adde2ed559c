"""The chat transcript: user messages, assistant replies streamed as Markdown, notices.

Replies stream through ``Markdown.get_stream()`` (which batches appends and re-parses only the
last block), so a long reply does not get slower per token. Model text is cleaned of control
characters first, and links are not opened on click (``open_links=False``).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from tui.engine.events import ReplyDone
from tui.reply import ReplyRecord
from tui.widgets.safe_text import clean
from tui.widgets.stop_badge import small_badge

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
    """One assistant reply: Markdown streamed token batch by token batch, then a small stop badge."""

    def __init__(self, record: ReplyRecord) -> None:
        super().__init__(classes="message assistant")
        self.record = record
        self.border_title = "assistant"
        self._stream: MarkdownStream | None = None
        self._streamed = ""

    def compose(self) -> ComposeResult:
        """A waiting line, the Markdown body and the badge line."""
        yield Static(Text("thinking…", style="italic"), classes="waiting")
        yield Markdown(open_links=False)
        yield Static(classes="badge")

    @property
    def markdown(self) -> Markdown:
        """The Markdown widget holding the reply."""
        return self.query_one(Markdown)

    def show_progress(self, evaluated: int, total: int) -> None:
        """Prompt evaluation progress before the first token."""
        if not self._streamed:
            waiting = self.query_one(".waiting", Static)
            waiting.update(Text(f"reading the prompt… {evaluated}/{total} tokens", style="italic"))

    async def append(self, text: str) -> None:
        """Add streamed reply text."""
        if not text:
            return
        if not self._streamed:
            self.query_one(".waiting", Static).display = False
        if self._stream is None:
            self._stream = Markdown.get_stream(self.markdown)
        self._streamed += text
        await self._stream.write(clean(text))

    async def finish(self, done: ReplyDone) -> None:
        """The reply ended: settle the final text and show the stop badge."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.query_one(".waiting", Static).display = False
        if done.text != self._streamed:
            # e.g. a stop string was cut from the end: render the final text once.
            self._streamed = done.text
            await self.markdown.update(clean(done.text))
        badge = self.query_one(".badge", Static)
        badge.update(small_badge(done.stop))
        self.add_class(f"stop-{done.stop.kind.value}")
        self.add_class("finished")


class ChatView(VerticalScroll):
    """The scrolling transcript; anchored to the bottom while a reply streams."""

    def assistant_message(self, reply_id: int) -> AssistantMessage | None:
        """The message widget of reply ``reply_id``, if it is in the transcript."""
        for message in self.query(AssistantMessage):
            if message.record.reply_id == reply_id:
                return message
        return None
