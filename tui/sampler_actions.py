"""Sampler changes that come from outside the panel: ban or boost a token from the inspector.

The inspector posts :class:`~tui.widgets.inspector.Inspector.BiasRequested`; this part makes the
new frozen SamplingParams (:func:`settings.sampling.with_bias`), hands it to the Conversation (the
next token uses it, the chat keeps it) and shows it in the panel's bias list.
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from settings.sampling import with_bias
from tui.core.conversation import Conversation
from tui.core.text import one_line
from tui.views import MainViews, Notifier
from tui.widgets.inspector import Inspector
from tui.worker import ModelSlot


class SamplerActions:
    """Logit-bias changes requested from the inspector."""

    def __init__(
        self, conversation: Conversation, model: ModelSlot, views: MainViews, notify: Notifier
    ) -> None:
        self.conversation = conversation
        self.model = model
        self.views = views
        self.notify = notify

    def bias_requested(self, message: Inspector.BiasRequested) -> None:
        """Ban the token (for the rest of the chat) or move its bias; a bad one gets a message."""
        engine = self.model.engine
        n_vocab = engine.info.n_vocab if engine is not None else None
        token = message.token_id
        if n_vocab is not None and not 0 <= token < n_vocab:
            self.notify(
                f"Token {token} is not in this model's vocabulary (0-{n_vocab - 1}).", severity="error"
            )
            return
        try:
            params = with_bias(self.conversation.live.params, token, message.bias)
        except ValidationError as exc:
            self.notify(str(exc.errors(include_url=False)[0]["msg"]), title="Logit bias", severity="error")
            return
        self.conversation.set_params(params)
        panel = self.views.panel
        token_text = getattr(engine, "token_text", None)
        if token_text is not None and panel.token_text is None:
            panel.token_text = token_text
        panel.set_params(params, announce=False)
        shown = one_line(message.text, 20)
        now = params.logit_bias.get(token, 0.0)
        what = "banned" if now == -math.inf else f"bias {now:+g}" if now else "bias cleared"
        self.notify(f"{shown!r} (token {token}): {what}, from the next token", title="Logit bias")
