"""The conversation core: what the app is about, without a screen (no Textual, no Rich).

The :class:`~tui.core.conversation.Conversation` owns the turns, the reply records, the reply ids and
the branches; the engine's history is derived from it, the chat store observes it
(:mod:`tui.core.autosave`) and the widgets render it. See tui/README.md for the code map.
"""
