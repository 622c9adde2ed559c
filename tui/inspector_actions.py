"""The app's side of the token inspector: open it beside the token view, branch, switch branches.

A mixin of :class:`~tui.app.TokendialApp` (like :mod:`tui.chat_actions`). The inspector replaces
the sampling panel while it is open. Branching continues a reply from another candidate: the
engine gets the reply's tokens before that position plus the alternative as ``continue_from``
(it reuses the KV cache for the common prefix), and the old continuation stays as a sibling that
``[`` / ``]`` switch back to. An earlier reply (shift+←/→ in the token view) can be branched as
well: after the user confirms, the turns after it are removed from the chat (not kept).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from textual import events
from textual.app import SystemCommand
from textual.css.query import NoMatches
from textual.widget import Widget

from settings.sampling import SamplingParams
from tui.engine.events import ChatMessage, TokenEvent
from tui.engine.whatif import least_confident
from tui.reply import ReplyRecord
from tui.screens.confirm import ConfirmScreen
from tui.store import StoredMessage, StoreError
from tui.store.session import SiblingReply
from tui.widgets.chat_view import AssistantMessage
from tui.widgets.inspector import Inspector
from tui.widgets.safe_text import one_line
from tui.widgets.status_bar import ModelState
from tui.widgets.token_view import TokenView

if TYPE_CHECKING:
    from tui.app import TokendialApp
    from tui.worker import ReplyFinished


@dataclass
class BranchSet:
    """The alternative continuations of one reply position: siblings, and which one is shown."""

    records: list[ReplyRecord]
    active: int = 0
    branched_at: dict[int, int] = field(default_factory=dict)
    """reply id -> index of the token the user picked where that sibling branched off."""

    def label(self, reply_id: int) -> str:
        """e.g. ``branch 2/3``."""
        ids = [r.reply_id for r in self.records]
        return f"branch {ids.index(reply_id) + 1}/{len(ids)}" if reply_id in ids else ""


@dataclass
class BranchBook:
    """Every BranchSet of the chat on screen, by the id of its first reply."""

    sets: dict[int, BranchSet] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    """reply id -> the key of its BranchSet."""
    prefixes: dict[int, tuple[TokenEvent, ...]] = field(default_factory=dict)
    """Branch reply id -> its fixed tokens (kept until the reply finishes)."""

    def set_of(self, reply_id: int) -> BranchSet | None:
        """The BranchSet a reply belongs to (None: never branched)."""
        slot = self.slot_of.get(reply_id)
        return self.sets.get(slot) if slot is not None else None

    def add(self, original: ReplyRecord, branch: ReplyRecord, at: int) -> BranchSet:
        """Record ``branch`` as a new sibling of ``original`` (branched at token ``at``) and show it."""
        slot = self.slot_of.setdefault(original.reply_id, original.reply_id)
        siblings = self.sets.setdefault(slot, BranchSet([original]))
        siblings.records.append(branch)
        siblings.active = len(siblings.records) - 1
        siblings.branched_at[branch.reply_id] = at
        self.slot_of[branch.reply_id] = slot
        return siblings

    def restore(self, records: list[ReplyRecord], active: int, branched_at: dict[int, int]) -> BranchSet:
        """Put back a BranchSet saved with a chat (``records`` in order, ``active`` the one shown)."""
        slot = records[0].reply_id
        siblings = BranchSet(records, active, branched_at)
        self.sets[slot] = siblings
        for record in records:
            self.slot_of[record.reply_id] = slot
        return siblings

    def keep_only(self, reply_ids: set[int]) -> None:
        """Forget every BranchSet none of whose replies is in ``reply_ids`` (the transcript's)."""
        for slot, siblings in list(self.sets.items()):
            if not any(r.reply_id in reply_ids for r in siblings.records):
                del self.sets[slot]
                for record in siblings.records:
                    self.slot_of.pop(record.reply_id, None)
                    self.prefixes.pop(record.reply_id, None)

    def clear(self) -> None:
        """A new chat: forget every branch."""
        self.sets.clear()
        self.slot_of.clear()
        self.prefixes.clear()


def branch_event(event: TokenEvent, token_id: int) -> TokenEvent:
    """The TokenEvent for picking candidate ``token_id`` at ``event``'s step instead of what was drawn."""
    candidate = next((c for c in event.candidates if c.token_id == token_id), None)
    if candidate is None:
        raise ValueError(f"token {token_id} is not a candidate of token #{event.index}")
    return dataclasses.replace(
        event,
        token_id=token_id,
        text=candidate.text,
        piece=candidate.text,
        p_raw=candidate.p_raw,
        p_final=candidate.p_final,
        elapsed_ms=0.0,
    )


class InspectorActions:
    """Token inspector for the app: call :meth:`init_inspector` in ``__init__``."""

    branches: BranchBook
    inspector_open: bool = False

    @property
    def _app(self) -> TokendialApp:
        """This object as the app it is mixed into."""
        return cast("TokendialApp", self)

    def init_inspector(self) -> None:
        """Set up the branch book and the reply observer (first, so that autosave sees whole branches)."""
        app = self._app
        app.branches = BranchBook()
        app.reply_observers.insert(0, app._inspector_reply_finished)
        app.reply_observers.append(app._save_branch_siblings)  # after autosave stored the reply

    # -- finding things ----------------------------------------------------------------------
    @property
    def inspector(self) -> Inspector | None:
        """The inspector widget, once mounted."""
        try:
            return self._app.main_screen.query_one(Inspector)
        except NoMatches:
            return None

    def record_of(self, reply_id: int) -> ReplyRecord | None:
        """A reply's record: in the transcript, or a sibling branch not shown now."""
        app = self._app
        record = app.records.get(reply_id)
        if record is not None:
            return record
        siblings = app.branches.set_of(reply_id)
        if siblings is None:
            return None
        return next((r for r in siblings.records if r.reply_id == reply_id), None)

    def _last_assistant(self) -> AssistantMessage | None:
        widgets = list(self._app.chat_view.query(AssistantMessage))
        return widgets[-1] if widgets else None

    @staticmethod
    def params_of(record: ReplyRecord, version: int) -> SamplingParams | None:
        """The parameters version ``version`` of a reply stood for."""
        if record.done is not None and version in record.done.params:
            return record.done.params[version]
        return record.params_by_version.get(version)

    # -- opening, showing, closing ------------------------------------------------------------
    async def open_inspector(self) -> Inspector:
        """Show the inspector beside the token view (instead of the sampling panel)."""
        app = self._app
        inspector = self.inspector
        if inspector is None:
            inspector = Inspector(id="inspector")
            await app.main_screen.query_one("#body").mount(inspector, after="#conversation")
        inspector.display = True
        app.panel.display = False
        app.inspector_open = True
        view = app.token_view
        if view.record is not None and view.cursor is None and view.record.events:
            view.cursor = 0  # selecting posts TokenSelected, which fills the inspector
        else:
            self._show_selected()
        return inspector

    def close_inspector(self) -> None:
        """Hide the inspector; the sampling panel comes back."""
        app = self._app
        inspector = self.inspector
        if inspector is not None:
            inspector.display = False
        app.panel.display = True
        app.inspector_open = False
        if app.main_screen.query_one("#views").current == "tokens":  # type: ignore[attr-defined]
            app.token_view.focus()

    def _show_selected(self) -> None:
        app = self._app
        inspector = self.inspector
        view = app.token_view
        event = view.selected_event
        if inspector is None or view.record is None or event is None:
            return
        record = view.record
        note = ""
        siblings = app.branches.set_of(record.reply_id)
        if siblings is not None:
            at = siblings.branched_at.get(record.reply_id)
            if at == event.index:
                note = "picked by you: this reply branched here"
            elif at is not None and event.index > at:
                note = f"after the branch point (token #{at})"
        inspector.show_token(
            record.reply_id,
            event,
            self.params_of(record, event.params_version),
            events=record.events,
            seed=record.done.seed if record.done else None,
            note=note,
        )

    def on_token_view_token_selected(self, message: TokenView.TokenSelected) -> None:
        """The token cursor moved: show that token if the inspector is open."""
        if self._app.inspector_open:
            self._show_selected()

    async def on_click(self, event: events.Click) -> None:
        """A click on a token opens the inspector on it."""
        app = self._app
        on_token = isinstance(event.style.meta.get("token"), int)
        if isinstance(event.widget, TokenView) and on_token and event.widget.selected_event is not None:
            if not app.inspector_open:
                await self.open_inspector()
            else:
                self._show_selected()

    async def action_inspect(self) -> None:
        """``i``: open the inspector; again: go into it; again: close it."""
        app = self._app
        inspector = self.inspector
        if not app.inspector_open or inspector is None:
            app._show_view("tokens")
            await self.open_inspector()
        elif app.focused is not None and inspector in app.focused.ancestors_with_self:
            self.close_inspector()
        else:
            inspector.table.focus()

    def inspector_commands(self) -> Iterable[SystemCommand]:
        """The inspector's commands for the command palette."""
        app = self._app
        yield SystemCommand("Inspector: open / go into / close", "The candidates behind a token (i)",
                            app.action_inspect)  # fmt: skip
        yield SystemCommand("Inspector: least sure token", "Select the token the model was least sure of (u)",
                            app.action_least_confident)  # fmt: skip
        yield SystemCommand("Branches: previous", "Show the previous branch of the last reply ([)",
                            lambda: app.run_worker(app.action_sibling(-1)))  # fmt: skip
        yield SystemCommand("Branches: next", "Show the next branch of the last reply (])",
                            lambda: app.run_worker(app.action_sibling(1)))  # fmt: skip

    def on_inspector_closed(self, message: Inspector.Closed) -> None:
        """Esc in the inspector."""
        self.close_inspector()

    def action_least_confident(self) -> None:
        """``u``: select the token the model was least sure of in the reply shown (the confidence
        strip over the token view marks it; the inspector, if open, shows it)."""
        app = self._app
        app._show_view("tokens")
        view = app.token_view
        strip = view.strip
        if strip is not None and view.record is not None and strip.events is view.record.events:
            index = strip.least  # kept up to date as tokens stream
        else:
            index = least_confident(view.record.events) if view.record is not None else None
        if index is None:
            app.notify("No reply with token probabilities to look at yet.", severity="warning")
            return
        view.cursor = index

    def on_tokendial_app_new_chat_started(self, message: object) -> None:
        """A new chat: forget the branches of the old one and close the inspector.

        Branches restored meanwhile with a reopened chat are kept: their replies are on screen.
        """
        app = self._app
        app.branches.keep_only(set(app.records))
        if app.inspector_open:
            self.close_inspector()

    # -- branching ---------------------------------------------------------------------------
    async def on_inspector_branch_requested(self, message: Inspector.BranchRequested) -> None:
        """Continue a reply from another candidate; the old continuation stays a sibling."""
        await self.branch(message.reply_id, message.index, message.token_id)

    async def branch(self, reply_id: int, index: int, token_id: int, *, confirmed: bool = False) -> bool:
        """Continue reply ``reply_id`` with ``token_id`` at token ``index``; False (with a note) if not.

        An earlier reply of the chat (not the last) can be branched too: the turns after it are
        removed from the chat (they are not kept), after the user confirms (``confirmed`` skips
        the question).
        """
        app = self._app
        if app.busy:
            app.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return False
        if app.model_state is not ModelState.READY:
            app.notify("The model is not ready.", severity="error")
            return False
        widget = app.chat_view.assistant_message(reply_id)
        record = self.record_of(reply_id)
        if record is None or record.done is None:
            app.notify("That reply is not finished: there is nothing to branch yet.", severity="warning")
            return False
        if widget is None:
            app.notify("Show that branch first ([ / ]), then branch from it.", severity="warning")
            return False
        event = record.events[index]
        if token_id == event.token_id:
            app.notify("That is the token the reply has: pick another candidate (↑/↓), then b.")
            return False
        engine = app.engine_worker.engine
        chosen = next(c for c in event.candidates if c.token_id == token_id)
        if engine is not None and chosen.text == engine.info.eos_text:
            app.notify("That candidate ends the reply: there is nothing to continue.", severity="warning")
            return False
        later = self._later_messages(widget)
        if later and not confirmed:
            self._confirm_branch_earlier(reply_id, index, token_id, len(later))
            return False
        if later and not await self._drop_later_turns(widget, later):
            return False
        last = widget
        prefix = (*record.events[:index], branch_event(event, token_id))
        if app.history and app.history[-1].role == "assistant":
            app.history.pop()
        app.chat_session.truncate(len(app.history))
        await last.remove()
        app.records.pop(reply_id, None)
        new_id = app._next_reply_id
        app.branches.prefixes[new_id] = prefix
        await app._start_reply(continue_from=tuple(e.token_id for e in prefix), prefix=prefix)
        branch = app.records[new_id]
        siblings = app.branches.add(record, branch, index)
        self._label_message(branch)
        if app.inspector_open and app.token_view.record is branch:
            app.token_view.cursor = index  # the inspector shows the picked token, not the old reply's
        app.notify(
            f"{siblings.label(new_id)}: continuing from token #{index} with "
            f"{one_line(chosen.text, 20)!r} ([ and ] switch branches)",
            title="Branch",
            timeout=4,
        )
        return True

    def _later_messages(self, widget: AssistantMessage) -> list[Widget]:
        """The messages of the transcript after ``widget`` (user prompts and replies)."""
        messages = list(self._app.chat_view.query(".message"))
        return messages[messages.index(widget) + 1 :]

    def _confirm_branch_earlier(self, reply_id: int, index: int, token_id: int, count: int) -> None:
        app = self._app

        def answered(yes: bool | None) -> None:
            if yes:
                app.run_worker(self.branch(reply_id, index, token_id, confirmed=True), group="branch")

        app.push_screen(
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

    async def _drop_later_turns(self, widget: AssistantMessage, later: list[Widget]) -> bool:
        """Remove the turns after ``widget`` (transcript, history, store); False if they do not match."""
        app = self._app
        keep = len(app.history) - len(later)
        done = widget.record.done
        if keep < 1 or done is None or app.history[keep - 1] != ChatMessage("assistant", done.text):
            app.notify(
                "The chat and its transcript disagree here: branch from the last reply.", severity="error"
            )
            return False
        del app.history[keep:]
        app.chat_session.truncate(keep)
        for message in later:
            if isinstance(message, AssistantMessage):
                app.records.pop(message.record.reply_id, None)
        await app.chat_view.remove_children(later)
        app.branches.keep_only(set(app.records))
        return True

    def _label_message(self, record: ReplyRecord) -> None:
        app = self._app
        siblings = app.branches.set_of(record.reply_id)
        widget = app.chat_view.assistant_message(record.reply_id)
        if widget is not None and siblings is not None:
            widget.border_title = f"assistant · {siblings.label(record.reply_id)}  [ ]"

    def _inspector_reply_finished(self, message: ReplyFinished) -> None:
        """A branch finished: its fixed tokens join its events (so autosave stores the whole reply)."""
        app = self._app
        prefix = app.branches.prefixes.pop(message.reply_id, None)
        if prefix is None:
            return
        message.tokens = (*prefix, *message.tokens)
        done = message.done
        reused = done.prompt_tokens + len(prefix) - done.prompt_evaluated
        if done.prompt_tokens:
            app.notify(
                f"Evaluated {done.prompt_evaluated} token(s); {reused} came from the KV cache.",
                title="Branch",
                timeout=4,
            )

    def _save_branch_siblings(self, message: ReplyFinished) -> None:
        """A branched reply finished (and was autosaved): store its siblings with it."""
        self.store_siblings(message.reply_id)

    def store_siblings(self, reply_id: int) -> bool:
        """Store the other continuations of reply ``reply_id`` with it (after the reply itself)."""
        app = self._app
        siblings = app.branches.set_of(reply_id)
        if siblings is None:
            return False
        ids = [r.reply_id for r in siblings.records]
        others = [
            SiblingReply(ordinal, record.done, record.events, siblings.branched_at.get(record.reply_id))
            for ordinal, record in enumerate(siblings.records)
            if record.reply_id != reply_id and record.done is not None
        ]
        return app.chat_session.reply_siblings(
            reply_id, ids.index(reply_id), siblings.branched_at.get(reply_id), others
        )

    def restore_siblings(self, record: ReplyRecord, stored: StoredMessage) -> BranchSet | None:
        """A reopened reply that had branches: load them, so that ``[`` / ``]`` switch again."""
        app = self._app
        if stored.sibling_count < 2:
            return None
        try:
            others = app.chat_session.store.load_siblings(stored.id)
        except StoreError as error:
            app.notify(f"The other branches of a reply could not be loaded: {error}", severity="warning")
            return None
        if not others:
            return None
        entries: list[tuple[int, ReplyRecord, int | None]] = [
            (stored.sibling_ordinal, record, stored.branched_at)
        ]
        for other in others:
            done = other.reply_done()
            reply_id = app._next_reply_id
            app._next_reply_id += 1
            sibling = ReplyRecord(
                reply_id, list(other.events or ()), dict(done.params), done.prompt_tokens, done
            )
            entries.append((other.ordinal, sibling, other.branched_at))
        entries.sort(key=lambda entry: entry[0])
        records = [entry[1] for entry in entries]
        branched_at = {r.reply_id: at for _, r, at in entries if at is not None}
        return app.branches.restore(records, records.index(record), branched_at)

    def label_branches(self) -> None:
        """Show ``branch i/n`` on every reply of the transcript that has branches."""
        for widget in self._app.chat_view.query(AssistantMessage):
            self._label_message(widget.record)

    def on_token_view_reply_step_requested(self, message: TokenView.ReplyStepRequested) -> None:
        """shift+←/→ in the token view: show the tokens of the previous / next reply of the chat."""
        app = self._app
        replies = [widget.record for widget in app.chat_view.query(AssistantMessage)]
        if not replies:
            app.notify("No reply yet: send a prompt first.")
            return
        ids = [record.reply_id for record in replies]
        shown = app.token_view.record
        at = ids.index(shown.reply_id) if shown is not None and shown.reply_id in ids else len(ids) - 1
        new = min(max(at + message.delta, 0), len(ids) - 1)
        if new == at and shown is not None and shown.reply_id in ids:
            app.notify(
                f"This is the {'first' if message.delta < 0 else 'last'} reply of the chat.", timeout=2
            )
            return
        target = replies[new]
        app._token_record_id = target.reply_id
        app.token_view.show_reply(target)
        if app.inspector_open and target.events:
            app.token_view.cursor = 0  # the inspector follows
        note = "" if new == len(ids) - 1 else " · branching here removes the turns after it (you are asked)"
        app.notify(f"Reply {new + 1} of {len(ids)}{note}", title="Tokens", timeout=3)

    async def action_sibling(self, delta: int) -> None:
        """``[`` / ``]``: show the previous / next branch of the last reply."""
        app = self._app
        if app.busy:
            app.notify("A reply is being generated: wait, or press Esc to cancel it.", severity="warning")
            return
        last = self._last_assistant()
        siblings = app.branches.set_of(last.record.reply_id) if last is not None else None
        if last is None or siblings is None or len(siblings.records) < 2:
            app.notify("This reply has no branches: pick a candidate in the inspector (i) and press b.")
            return
        siblings.active = (siblings.active + delta) % len(siblings.records)
        target = siblings.records[siblings.active]
        done = target.done
        if done is None:
            return
        await last.remove()
        app.records.pop(last.record.reply_id, None)
        app.records[target.reply_id] = target
        widget = AssistantMessage(target)
        await app.chat_view.mount(widget)
        await widget.finish(done)
        self._label_message(target)
        if app.history and app.history[-1].role == "assistant":
            app.history[-1] = ChatMessage("assistant", done.text)
        session = app.chat_session
        session.truncate(len(app.history) - 1)
        version = min(done.params) if done.params else 0
        session.reply_started(target.reply_id, done.params.get(version, app.live.params), version)
        session.reply_finished(target.reply_id, done, target.events)
        self.store_siblings(target.reply_id)
        app._token_record_id = target.reply_id
        app.token_view.show_reply(target)
        app.status.set_done(done)
        at = siblings.branched_at.get(target.reply_id)
        if app.inspector_open and target.events:
            app.token_view.cursor = min(at if at is not None else 0, len(target.events) - 1)
        app.notify(siblings.label(target.reply_id), title="Branch", timeout=2)
