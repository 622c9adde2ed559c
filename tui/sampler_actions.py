"""Sampler changes that come from outside the panel: ban or boost a token from the inspector; the
loaded model's vocabulary for the panel (token texts, its size, llama.cpp's grammar parser).

The inspector posts :class:`~tui.widgets.inspector.Inspector.BiasRequested`; this part makes the
new frozen SamplingParams (:func:`settings.sampling.with_bias`), hands it to the Conversation (the
next token uses it, the chat keeps it) and shows it in the panel's bias list.
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from settings.sampling import SamplingParams, bias_problem, with_bias
from tui.core.conversation import Conversation
from tui.core.text import one_line
from tui.engine.events import ModelInfo
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

    def model_gone(self) -> None:
        """No model is loaded (a load or a switch failed): the panel forgets the last one's
        vocabulary, so it neither shows that model's token texts nor checks ids against its size."""
        self.views.panel.set_token_text(None)

    def model_loaded(self, info: ModelInfo) -> None:
        """A model loaded (at start or after a switch): the panel's bias list shows its token texts
        and its checks use its vocabulary; what it can't use in the current parameters (a bias
        for a token it lacks, a grammar llama.cpp can't parse) is said now, before any reply."""
        engine = self.model.engine
        panel = self.views.panel
        has_text = engine is not None and hasattr(engine, "token_text")
        panel.set_token_text(
            self.token_text if has_text else None, n_vocab=info.n_vocab or None, check=self.params_problem
        )
        problem = self.params_problem(self.conversation.live.params)
        if problem is not None:
            name, message = problem
            panel.show_problem(name, message)
            said = one_line(message[:1].upper() + message[1:], 300)
            self.notify(
                f"{said}. A reply would end at once with this error: fix {name} in the panel (Constraints).",
                title="Sampling",
                severity="error",
                timeout=15,
            )

    def token_text(self, token_id: int) -> str:
        """The loaded model's text for ``token_id`` (always the model loaded now: after a switch,
        never the closed one's); LookupError while none is loaded."""
        engine = self.model.engine
        if engine is None or not 0 <= token_id < engine.info.n_vocab:
            raise LookupError(token_id)
        token_text = getattr(engine, "token_text", None)
        if token_text is None:  # a server backend: ids only
            raise LookupError(token_id)
        text: str = token_text(token_id)
        return text

    def params_problem(self, params: SamplingParams) -> tuple[str, str] | None:
        """What the loaded model can't use in ``params`` (field, message): a token outside its
        vocabulary, or what its own check finds (llama.cpp's grammar parser); None if fine."""
        engine = self.model.engine
        if engine is None:
            return None
        n_vocab = engine.info.n_vocab
        problem = bias_problem(params, n_vocab) if n_vocab else None
        if problem:
            return "logit_bias", problem
        check = getattr(engine, "params_problem", None)
        found: tuple[str, str] | None = check(params) if check is not None else None
        return found

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
            said = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
            self.notify(said, title="Logit bias", severity="error")
            return
        self.conversation.set_params(params)
        panel = self.views.panel
        panel.set_params(params, announce=False)
        shown = one_line(message.text, 20)
        now = params.logit_bias.get(token, 0.0)
        what = "banned" if now == -math.inf else f"bias {now:+g}" if now else "bias cleared"
        self.notify(f"{shown!r} (token {token}): {what}, from the next token", title="Logit bias")
