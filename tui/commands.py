"""Every command of the app, once: the table that makes the key bindings, the command palette's entries
and the help screen's key list.

A command has a binding id (``app.regenerate``): the ``keymap`` setting remaps its key by that id
(Textual's ``App.set_keymap``), and the palette and the help screen show the key it has now. Keys
that belong to a widget (the prompt box, the token view, the inspector) are bound there; the help
screen lists them from :data:`WIDGET_KEYS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode

from tui.core.text import one_line


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its binding id, its action, its default key, and how it is named where it shows."""

    id: str
    """The binding id (the ``keymap`` setting remaps keys by it)."""
    action: str
    """The app action it runs, e.g. ``regenerate`` or ``sibling(-1)``."""
    title: str
    """Its name in the command palette."""
    label: str
    """Its short name in the footer."""
    description: str
    """What it does: the key's tooltip and the palette's help line (the key is added to it)."""
    key: str | None = None
    """Its default key (None: only in the palette)."""
    show: bool = True
    """Shown in the footer."""
    help_line: str | None = None
    """Its line in the help screen's key list (None: not listed)."""
    group: str = "app"
    """``chats``, ``inspector``, ``model``: for parts that list their own commands."""


COMMANDS: tuple[Command, ...] = (
    Command("app.cancel", "cancel_reply", "Cancel reply", "Cancel", "Stop the reply being generated",
            "escape", help_line="cancel the reply being generated"),
    Command("app.toggle_tokens", "toggle_tokens", "Toggle token view", "Tokens",
            "Switch between the rendered chat and the token-by-token view", "ctrl+t",
            help_line="switch between the chat and the token view"),
    Command("app.toggle_probability", "toggle_probability", "Colour tokens by probability", "Colour by p",
            "Colour tokens by the probability the model gave them", "ctrl+o",
            help_line="colour tokens by probability"),
    Command("app.regenerate", "regenerate", "Regenerate", "Regenerate",
            "Generate the last reply again with the current parameters", "ctrl+r",
            help_line="regenerate the last reply with the current parameters"),
    Command("app.compare", "compare", "Compare: this prompt under several settings", "Compare",
            "Run the prompt in the box (or the last prompt) under 2-4 parameter sets side by side, in one "
            "batch; keep the column you like as the reply", "f5", show=False,
            help_line="compare the prompt under several settings (p there keeps a column)"),
    Command("app.edit_last", "edit_last", "Edit last prompt", "Edit last",
            "Put the last prompt back in the prompt box to edit and resend it", "ctrl+l",
            help_line="edit and resend the last prompt"),
    Command("app.new_chat", "new_chat", "New chat", "New chat", "Start a new, empty chat", "ctrl+n",
            help_line="new chat"),
    Command("app.toggle_mode", "toggle_mode", "Toggle completion mode", "Mode",
            "Switch this chat between chat (the chat template) and text completion (the model continues "
            "your text)", "f8", show=False, help_line="chat / text completion mode"),
    Command("app.toggle_thinking", "toggle_thinking", "Thinking: open / fold", "Thinking",
            "Open or fold the thinking section of the last reply that has one", "f9",
            show=False, help_line="open / fold the last reply's thinking section"),
    Command("app.toggle_greedy", "toggle_greedy", "Toggle greedy", "Greedy", "Greedy mode on/off", "ctrl+g",
            help_line="greedy on/off"),
    Command("app.focus_panel", "focus_panel", "Sampling panel", "Panel", "Go to the sampling panel", "f4",
            help_line="go to the sampling panel (↑/↓ step a value, PgUp/PgDn a big step, Enter applies "
            "a typed one)"),
    Command("app.reset_params", "reset_params", "Reset parameters", "Reset",
            "Back to the default sampling parameters"),
    Command("app.save_default", "save_default", "Save parameters as default", "Save default",
            "Save the current sampling parameters as the default", "ctrl+s", show=False),
    Command("app.help", "help", "Help: parameters and keys", "Help", "What the parameters and badges mean",
            "f1", help_line="this help"),
    Command("app.chats", "chats", "Chats: open, rename, delete, search", "Chats",
            "Saved chats: open, rename, delete, search", "f3",
            help_line="saved chats: open, rename, delete, search, export", group="chats"),
    Command("app.export_markdown", "export_markdown", "Chats: export to Markdown", "Export",
            "Readable, with parameters and stop reasons", group="chats"),
    Command("app.export_json", "export_json", "Chats: export to JSON", "Export JSON",
            "Complete and re-importable", group="chats"),
    Command("app.import_json", "import_json", "Chats: import from JSON", "Import",
            "Add a chat exported by tokendial", group="chats"),
    Command("app.keep_events", "toggle_keep_events", "Chats: keep token events of this chat", "Keep events",
            "Exempt its token events (and candidates) from pruning, or stop doing so", group="chats"),
    Command("app.fresh_database", "fresh_chat_database", "Chats: start a fresh database", "Fresh database",
            "Move the damaged chat database aside and save chats again", group="chats"),
    Command("app.pick_model", "pick_model", "Load another model", "Model",
            "Load another model: a GGUF file from the models folder, or a path", "f2", show=False,
            help_line="load another model", group="model"),
    Command("app.pick_backend", "pick_backend", "Backend: local, llama-server or an OpenAI-compatible server",
            "Backend", "Where the model runs: local, llama-server or openai; server URL, model name", "f12",
            show=False, help_line="where the model runs (local / llama-server / openai)", group="model"),
    Command("app.retry_load", "retry_load", "Retry: connect to the server again", "Retry",
            "Try again to connect to the server (or load the model) after it failed", "f10", show=False,
            help_line="retry connecting to the server (or loading the model)", group="model"),
    Command("app.inspect", "inspect", "Inspector: open / go into / close", "Inspect",
            "Token inspector: the candidates behind a token (open it, go into it, close it)", "i",
            show=False, help_line="(token view) open the token inspector: the candidates behind the "
            "selected token", group="inspector"),
    Command("app.least_confident", "least_confident", "Inspector: least sure token", "Least sure",
            "Select the token the model was least sure of", "u", show=False,
            help_line="(token view) jump to the token the model was least sure of", group="inspector"),
    Command("app.prev_branch", "sibling(-1)", "Branches: previous", "Prev branch",
            "Show the previous branch of the last reply", "left_square_bracket", show=False,
            help_line="previous branch of the last reply", group="inspector"),
    Command("app.next_branch", "sibling(1)", "Branches: next", "Next branch",
            "Show the next branch of the last reply", "right_square_bracket", show=False,
            help_line="next branch of the last reply", group="inspector"),
)  # fmt: skip
"""The app's commands, in the order the palette lists them."""

WIDGET_KEYS: tuple[tuple[str, str], ...] = (
    ("Enter / ctrl+j", "send the prompt / new line in the prompt"),
    ("←/→, home/end, click (token view)", "select a token"),
    ("click the strip (token view)", "select that token (the sparkline: p at T=1 per token, red = unsure)"),
    ("b (inspector)",
     "branch: continue the reply from the highlighted candidate (the old continuation is kept)"),
    ("shift+←/→ (token view)",
     "the tokens of the previous / next reply, to inspect or branch an earlier one"),
    ("x, + / - (inspector)",
     "ban the highlighted candidate for the rest of the chat / raise or lower its bias"),
    ("shift+↑/↓ (panel's order list)", "move the highlighted sampler up or down the chain"),
    ("ctrl+p", "command palette (every action)"),
)  # fmt: skip
"""Keys bound by widgets (and Textual's palette), for the help screen."""

_KEY_NAMES = {
    "escape": "Esc",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "enter": "Enter",
    "space": "Space",
    "tab": "Tab",
}


def key_text(keys: str) -> str:
    """A binding's key(s) as the user reads them: ``ctrl+r``, ``Esc``, ``[``; several joined by ``/``."""
    return " / ".join(_KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))


def bindings(commands: Iterable[Command] = COMMANDS) -> list[Binding]:
    """The key bindings of the commands that have a key (with their ids and tooltips)."""
    return [
        Binding(c.key, c.action, c.label, show=c.show, id=c.id, tooltip=c.description)
        for c in commands
        if c.key is not None
    ]


def current_keys(keymap: Mapping[str, str], commands: Iterable[Command] = COMMANDS) -> dict[str, str]:
    """Binding id -> the key(s) it has with ``keymap`` applied (commands without a key are left out)."""
    keys = {c.id: c.key for c in commands if c.key is not None}
    keys.update((binding_id, key) for binding_id, key in keymap.items() if binding_id in keys)
    return keys


def palette_help(command: Command, keys: Mapping[str, str]) -> str:
    """The palette's help line: the description, then the key it has now, e.g. ``... (ctrl+r)``."""
    key = keys.get(command.id)
    return f"{command.description} ({key_text(key)})" if key else command.description


def help_keys_markdown(keys: Mapping[str, str], commands: Iterable[Command] = COMMANDS) -> str:
    """The help screen's key table: widget keys first, then every command with a help line."""
    rows = ["| Key | Action |", "|---|---|"]
    listed = [c for c in commands if c.help_line is not None and keys.get(c.id)]
    for key, line in WIDGET_KEYS[:1]:
        rows.append(f"| {key} | {line} |")
    for command in listed:
        rows.append(f"| {_cell(key_text(keys[command.id]))} | {command.help_line} |")
    for key, line in WIDGET_KEYS[1:]:
        rows.append(f"| {key} | {line} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    """``text`` safe in a Markdown table cell (a remapped key could be ``|``)."""
    return one_line(text, 40).replace("|", "\\|")


def binding_ids() -> set[str]:
    """Every binding id of every widget and screen class loaded (the app's, its widgets', Textual's)."""
    ids: set[str] = set()
    classes: list[type[DOMNode]] = [DOMNode]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def unknown_keymap_ids(keymap: Mapping[str, str], known: Iterable[str] | None = None) -> list[str]:
    """The ids in ``keymap`` that name no binding (:func:`binding_ids` by default): a typo would
    otherwise be ignored without a word."""
    ids = set(known) if known is not None else binding_ids()
    return sorted(binding_id for binding_id in keymap if binding_id not in ids)


def palette_entries(
    keys: Mapping[str, str],
    run: Callable[[str], Any],
    *,
    groups: Iterable[str] | None = None,
    hidden: Iterable[str] = (),
    commands: Iterable[Command] = COMMANDS,
) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """(title, help, callback) for the palette: each command of ``groups`` (all when None) except the
    ``hidden`` ids; the callback runs the command's action through ``run``."""
    wanted = set(groups) if groups is not None else None
    skip = set(hidden)
    for command in commands:
        if (wanted is None or command.group in wanted) and command.id not in skip:
            yield command.title, palette_help(command, keys), _runner(run, command.action)


def _runner(run: Callable[[str], Any], action: str) -> Callable[[], Any]:
    return lambda: run(action)


def keymap_reference(commands: Iterable[Command] = COMMANDS) -> str:
    """The README's key reference: one Markdown row per command (its id, default key, what it does)."""
    rows = ["| Binding id | Default key | What it does |", "| --- | --- | --- |"]
    for command in commands:
        key = f"`{command.key}`" if command.key else "(palette only)"
        rows.append(f"| `{command.id}` | {key} | {command.description} |")
    return "\n".join(rows)
