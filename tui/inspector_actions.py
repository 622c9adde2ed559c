"""The token inspector part of the app: open it beside the token view, branch, switch branches.

A collaborator of :class:`~tui.app.TokendialApp` (composed, not mixed in): it gets the
conversation, the reply flow, the model slot, the views and a notifier. The inspector replaces
the sampling panel while it is open. Branching continues a reply from another candidate: the
engine gets the reply's tokens before that position plus the alternative as ``continue_from``
(it reuses the KV cache for the common prefix), and the old continuation stays as a sibling that
``[`` / ``]`` switch back to. An earlier reply (shift+←/→ in the token view) can be branched as
well: after the user confirms, the turns after it are removed from the chat (not kept).
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from tui.core.conversation import Conversation, ReplyTurn
from tui.core.state import ModelState
from tui.core.text import one_line
from tui.engine.whatif import least_confident
from tui.reply_flow import ReplyFlow
from tui.screens.confirm import ConfirmScreen
from tui.views import MainViews, Notifier
from tui.widgets.chat_view import AssistantMessage
from tui.widgets.inspector import Inspector
from tui.widgets.token_view import TokenView
from tui.worker import ModelSlot


class InspectorActions:
    """The token inspector and branches."""

    def __init__(
        self,
        app: App[Any],
        conversation: Conversation,
        replies: ReplyFlow,
        model: ModelSlot,
        views: MainViews,
        notify: Notifier,
    ) -> None:
        self._app = app
        self.conversation = conversation
        self.replies = replies
        self.model = model
        self.views = views
        self.notify = notify
        self.open = False
        """Whether the inspector is shown (instead of the sampling panel)."""

    # -- opening, showing, closing ------------------------------------------------------------
    async def open_inspector(self) -> Inspector:
        """Show the inspector beside the token view (instead of the sampling panel)."""
        views = self.views
        inspector = views.inspector
        if inspector is None:
            inspector = Inspector(id="inspector")
            await views.main_screen.query_one("#body").mount(inspector, after="#conversation")
        inspector.display = True
        views.panel.display = False
        self.open = True
        view = views.token_view
        if view.record is not None and view.cursor is None and view.record.events:
            view.cursor = 0  # selecting posts TokenSelected, which fills the inspector
        else:
            self.show_selected()
        return inspector

    def close_inspector(self) -> None:
        """Hide the inspector; the sampling panel comes back."""
        inspector = self.views.inspector
        if inspector is not None:
            inspector.display = False
        self.views.panel.display = True
        self.open = False
        if self.views.showing_tokens:
            self.views.token_view.focus()

    def chat_cleared(self) -> None:
        """A new chat: the inspector closes (the branches went with the conversation)."""
        if self.open:
            self.close_inspector()

    def show_selected(self) -> None:
        """Show the token under the token view's cursor in the inspector (if both are there)."""
        inspector = self.views.inspector
        view = self.views.token_view
        event = view.selected_event
        if inspector is None or view.record is None or event is None:
            return
        record = view.record
        note = ""
        siblings = self.conversation.branches.set_of(record.reply_id)
        if siblings is not None:
            at = siblings.branched_at.get(record.reply_id)
            if at == event.index:
                note = "picked by you: this reply branched here"
            elif at is not None and event.index > at:
                note = f"after the branch point (token #{at})"
        inspector.show_token(
            record.reply_id,
            event,
            self.conversation.params_of(record, event.params_version),
            events=record.events,
            seed=record.done.seed if record.done else None,
            note=note,
        )

    def token_selected(self) -> None:
        """The token cursor moved: show that token if the inspector is open."""
        if self.open:
            self.show_selected()

    async def token_clicked(self, message: TokenView.TokenClicked) -> None:
        """A click on a token opens the inspector on it."""
        if not self.open:
            await self.open_inspector()
        else:
            self.show_selected()

    async def inspect(self) -> None:
        """``i``: open the inspector; again: go into it; again: close it."""
        inspector = self.views.inspector
        if not self.open or inspector is None:
            self.views.show("tokens")
            await self.open_inspector()
        elif self._app.focused is not None and inspector in self._app.focused.ancestors_with_self:
            self.close_inspector()
        else:
            inspector.table.focus()

    def least_confident(self) -> None:
        """``u``: select the token the model was least sure of in the reply shown (the confidence
        strip over the token view marks it; the inspector, if open, shows it)."""
        self.views.show("tokens")
        view = self.views.token_view
        strip = view.strip
        if strip is not None and view.record is not None and strip.events is view.record.events:
            index = strip.least  # kept up to date as tokens stream
        else:
            index = least_confident(view.record.events) if view.record is not None else None
        if index is None:
            self.notify("No reply with token probabilities to look at yet.", severity="warning")
            return
        view.cursor = index

    # -- branching ---------------------------------------------------------------------------
    async def branch(self, reply_id: int, index: int, token_id: int, *, confirmed: bool = False) -> bool:
        """Continue reply ``reply_id`` with ``token_id`` at token ``index``; False (with a note) if not.

        An earlier reply of the chat (not the last) can be branched too: the turns after it are
        removed from the chat (they are not kept), after the user confirms (``confirmed`` skips
        the question).
        """
        conversation = self.conversation
        if self.replies.busy:
            self.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return False
        if self.model.state is not ModelState.READY:
            self.notify("The model is not ready.", severity="error")
            return False
        record = conversation.record_of(reply_id)
        if record is None or record.done is None:
            self.notify("That reply is not finished: there is nothing to branch yet.", severity="warning")
            return False
        if reply_id not in conversation.records:
            self.notify("Show that branch first ([ / ]), then branch from it.", severity="warning")
            return False
        event = record.events[index]
        if token_id == event.token_id:
            self.notify("That is the token the reply has: pick another candidate (↑/↓), then b.")
            return False
        engine = self.model.engine
        chosen = next(c for c in event.candidates if c.token_id == token_id)
        if engine is not None and chosen.text == engine.info.eos_text:
            self.notify("That candidate ends the reply: there is nothing to continue.", severity="warning")
            return False
        later = self._turns_after(reply_id)
        if later and not confirmed:
            self._confirm_branch_earlier(reply_id, index, token_id, later)
            return False
        if later:
            await self._drop_later_turns(reply_id)
        await self.replies.remove_reply(record)
        branch, siblings = conversation.branch(reply_id, index, token_id)
        await self.replies.begin(branch)
        self.replies.label_message(branch)
        token_view = self.views.token_view
        if self.open and token_view.record is branch:
            token_view.cursor = index  # the inspector shows the picked token, not the old reply's
        self.notify(
            f"{siblings.label(branch.reply_id)}: continuing from token #{index} with "
            f"{one_line(chosen.text, 20)!r} ([ and ] switch branches)",
            title="Branch",
            timeout=4,
        )
        return True

    def _turns_after(self, reply_id: int) -> int:
        """How many turns of the conversation follow reply ``reply_id``."""
        turns = self.conversation.turns
        for position, turn in enumerate(turns):
            if isinstance(turn, ReplyTurn) and turn.record.reply_id == reply_id:
                return len(turns) - position - 1
        return 0

    def _confirm_branch_earlier(self, reply_id: int, index: int, token_id: int, count: int) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._app.run_worker(self.branch(reply_id, index, token_id, confirmed=True), group="branch")

        self._app.push_screen(
            ConfirmScreen(
                "Branch from an earlier reply?",
                f"The {count} message{'s' if count > 1 else ''} after this reply will be removed from the "
                "chat for good (they are not kept as a branch: they followed the old reply). The reply "
                "itself stays as a branch that [ and ] switch back to.",
                "Remove them and branch",
                "Keep the chat",
                screen_id="confirm-branch",
            ),
            answered,
        )

    async def _drop_later_turns(self, reply_id: int) -> None:
        """Remove the turns after reply ``reply_id``: from the conversation (the store follows), then
        from the transcript."""
        self.conversation.truncate_after(reply_id)
        chat = self.views.chat_view
        messages = chat.messages
        widget = chat.assistant_message(reply_id)
        if widget is not None and widget in messages:
            later = messages[messages.index(widget) + 1 :]
            token_view = self.views.token_view
            if token_view.record is not None and token_view.record.reply_id not in self.conversation.records:
                token_view.show_reply(None)
            await chat.remove_children(later)

    def reply_step(self, delta: int) -> None:
        """shift+←/→ in the token view: show the tokens of the previous / next reply of the chat."""
        replies = self.conversation.replies
        if not replies:
            self.notify("No reply yet: send a prompt first.")
            return
        ids = [record.reply_id for record in replies]
        token_view = self.views.token_view
        shown = token_view.record
        at = ids.index(shown.reply_id) if shown is not None and shown.reply_id in ids else len(ids) - 1
        new = min(max(at + delta, 0), len(ids) - 1)
        if new == at and shown is not None and shown.reply_id in ids:
            self.notify(f"This is the {'first' if delta < 0 else 'last'} reply of the chat.", timeout=2)
            return
        target = replies[new]
        token_view.show_reply(target)
        if self.open and target.events:
            token_view.cursor = 0  # the inspector follows
        note = "" if new == len(ids) - 1 else " · branching here removes the turns after it (you are asked)"
        self.notify(f"Reply {new + 1} of {len(ids)}{note}", title="Tokens", timeout=3)

    async def sibling(self, delta: int) -> None:
        """``[`` / ``]``: show the previous / next branch of the last reply."""
        if self.replies.busy:
            self.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return
        last = self.conversation.last_reply
        switched = self.conversation.switch_branch(delta)
        if last is None or switched is None:
            siblings = self.conversation.branches.set_of(last.reply_id) if last is not None else None
            if siblings is None or len(siblings.records) < 2:
                self.notify("This reply has no branches: pick a candidate in the inspector (i) and press b.")
            return
        target, siblings = switched
        done = target.done
        assert done is not None  # switch_branch shows finished siblings only
        await self.replies.remove_reply(last)
        widget = AssistantMessage(target)
        await self.views.chat_view.mount(widget)
        await widget.finish(done)
        self.replies.label_message(target)
        token_view = self.views.token_view
        token_view.show_reply(target)
        self.views.status.set_done(done)
        at = siblings.branched_at.get(target.reply_id)
        if self.open and target.events:
            token_view.cursor = min(at if at is not None else 0, len(target.events) - 1)
        self.notify(siblings.label(target.reply_id), title="Branch", timeout=2)
