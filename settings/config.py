"""Settings: what tokendial is configured with, read from layered sources.

Sources, highest priority first: command-line flags (passed in as a nested dict by the CLI),
environment variables ``TOKENDIAL_...`` (nested with ``__``, e.g. ``TOKENDIAL_SAMPLING__TOP_P``),
a TOML file (``--config PATH``, ``TOKENDIAL_CONFIG``, or ``config.toml`` in the user config dir),
then the defaults below. :func:`load_settings` turns a bad value from any source into one
line per bad field that names the source and the allowed range (:class:`ConfigError`).
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, get_args, get_origin

import annotated_types
import platformdirs
import tomli_w
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from settings.sampling import DEFAULT_PRESETS, SamplingParams

APP_NAME = "tokendial"
ENV_PREFIX = "TOKENDIAL_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "TOKENDIAL_CONFIG"
"""Environment variable naming the TOML config file (``--config`` wins over it)."""

DEFAULT_MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The file name `tokendial fetch` installs into the models folder."""

N_CTX_STEP = 256
"""llama.cpp rounds the context size up to a multiple of this (n_ctx must be one)."""
N_CTX_MIN = 256
N_CTX_MAX = 262_144
N_GPU_LAYERS_MAX = 999
N_THREADS_MAX = 512
TOP_N_MAX = 100


def default_config_path() -> Path:
    """``config.toml`` in the user's config dir (platformdirs), whether or not it exists."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The config file ``TOKENDIAL_CONFIG`` names, else :func:`default_config_path`."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV_VAR)
    return Path(named).expanduser() if named else default_config_path()


def default_data_dir() -> Path:
    """Where tokendial keeps its data (the chat database): the user data dir."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_models_dir() -> Path:
    """The repo's ``models/`` folder when running from a checkout, else ``<user data dir>/models``."""
    repo_models = Path(__file__).resolve().parents[1] / "models"
    if repo_models.is_dir():
        return repo_models
    return default_data_dir() / "models"


class Backend(StrEnum):
    """Where the model runs."""

    LOCAL = "local"
    """In this process (llama-cpp-python)."""
    LLAMA_SERVER = "llama-server"
    """llama.cpp's llama-server, through its native API (full token detail)."""
    OPENAI = "openai"
    """Any OpenAI-compatible chat-completions server (vLLM, Ollama, llama-cpp-python's server, ...)."""


class ServerProbs(StrEnum):
    """Which probabilities llama-server reports for the candidates of a sampled token."""

    SAMPLED = "sampled"
    """After the samplers (what the token view colours by); p at T=1 is then unknown."""
    RAW = "raw"
    """Before them (the model's own); p after sampling is then unknown."""


API_KEY_ENV_VAR = "TOKENDIAL_API_KEY"
"""The server's API key (wins over api_key_file); read at start, never stored."""


def _default_presets() -> dict[str, SamplingParams]:
    return dict(DEFAULT_PRESETS)


class ConfigError(Exception):
    """Bad configuration: ``lines`` are the user-facing messages (one per problem); exit code 2."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


class ConfigWriteError(Exception):
    """The config file could not be written; ``str(err)`` is the user-facing message."""


_active_config_path: ContextVar[Path | None] = ContextVar("tokendial_config_path", default=None)


@contextmanager
def using_config_file(path: Path) -> Iterator[None]:
    """Make ``Settings()`` read ``path`` as its TOML file inside the ``with`` block."""
    token = _active_config_path.set(path)
    try:
        yield
    finally:
        _active_config_path.reset(token)


class TokendialTomlSource(TomlConfigSettingsSource):
    """The TOML file source: a syntax error is a :class:`ConfigError`; unknown keys warn and are dropped."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self.path = toml_file
        self.warnings: list[str] = []
        if toml_file.is_dir():
            raise ConfigError([f"config file {toml_file}: cannot read: it is a directory, not a TOML file"])
        super().__init__(settings_cls, toml_file=toml_file)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            with open(file_path, "rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {file_path}: invalid TOML: {exc}"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"config file {file_path}: invalid TOML: {_not_utf8(exc)}"]) from None
        except OSError as exc:
            raise ConfigError([f"config file {file_path}: cannot read: {exc.strerror or exc}"]) from None
        return _drop_unknown_keys(data, Settings, (), f"config file {file_path}", self.warnings)


def _not_utf8(exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 text, for the user."""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"


NON_SETTING_ENV_PREFIXES = (
    CONFIG_ENV_VAR,
    "TOKENDIAL_DEBUG",
    "TOKENDIAL_LLAMA_",
    "TOKENDIAL_TEST_",
    "TOKENDIAL_REQUIRE_",
    "TOKENDIAL_BENCH",
    "TOKENDIAL_API_KEY",
)
"""Environment variables tokendial reads that are not settings (no "unknown setting" warning)."""


def unknown_env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``TOKENDIAL_*`` variable that names no setting (a typo is ignored otherwise)."""
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NON_SETTING_ENV_PREFIXES):
            continue
        field = upper[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER, 1)[0].lower()
        if field not in Settings.model_fields:
            warnings.append(f"warning: environment variable {name} is not a tokendial setting (ignored)")
    return warnings


def _env_source_error(exc: SettingsError) -> ConfigError:
    """A value in the environment that pydantic-settings could not parse (not JSON), as one line."""
    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else ""
    named = [key for key in os.environ if key.upper() == (ENV_PREFIX + field).upper()] if field else []
    where = f"env {named[0]}" if named else "the environment"
    value = _show_value(os.environ[named[0]]) if named else "?"
    return ConfigError(
        [
            f"bad setting {field or '?'} = {value} (from {where}): not valid JSON; give a JSON object, "
            f"or set one value per variable, e.g. {ENV_PREFIX}{field.upper() or 'SAMPLING'}__TEMPERATURE=0.7"
        ]
    )


def _drop_unknown_keys(
    data: dict[str, Any], model: type[BaseModel], prefix: tuple[str, ...], where: str, warnings: list[str]
) -> dict[str, Any]:
    """Return ``data`` without keys ``model`` doesn't know (recursing into sampling and presets)."""
    kept: dict[str, Any] = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        dotted = ".".join((*prefix, key))
        if field is None:
            warnings.append(f"warning: {where}: unknown key '{dotted}' ignored")
            continue
        if isinstance(value, dict) and field.annotation is SamplingParams:
            value = _drop_unknown_keys(value, SamplingParams, (*prefix, key), where, warnings)
        elif isinstance(value, dict) and key == "presets" and model is Settings:
            value = {
                name: _drop_unknown_keys(preset, SamplingParams, (*prefix, key, name), where, warnings)
                if isinstance(preset, dict)
                else preset
                for name, preset in value.items()
            }
        kept[key] = value
    return kept


class Settings(BaseSettings):
    """Everything tokendial can be configured with (see the README's config reference)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
        validate_default=False,
    )

    model_path: Path | None = Field(
        None, description="The GGUF model file to load (default: the default model in models_dir)."
    )
    models_dir: Path = Field(
        default_factory=default_models_dir,
        description="Folder holding GGUF models; `tokendial fetch` installs the default model here.",
    )
    n_ctx: int = Field(
        2048, ge=N_CTX_MIN, le=N_CTX_MAX, multiple_of=N_CTX_STEP,
        description="Context window in tokens (prompt + reply), a multiple of 256.",
    )
    n_gpu_layers: int = Field(
        0, ge=-1, le=N_GPU_LAYERS_MAX,
        description="Model layers to offload to the GPU (0 = none, -1 = all); needs a GPU build of "
        "llama-cpp-python.",
    )
    n_threads: int | None = Field(
        None, ge=1, le=N_THREADS_MAX, description="CPU threads for generation (unset = chosen automatically)."
    )
    chat_template: str | None = Field(
        None,
        description="Chat template override: Jinja text, or a llama.cpp built-in template's name (chatml, "
        "llama3, gemma, mistral-v7, phi3, ...); unset = the model's own template.",
    )
    system_prompt: str = Field(
        "You are a helpful assistant.",
        description="System message sent at the start of every chat (empty = none).",
    )
    theme: str = Field("textual-dark", min_length=1, description="Textual theme name for the app.")
    keymap: dict[str, str] = Field(
        default_factory=dict,
        description='Keys remapped by binding id, e.g. `"app.regenerate" = "f5"` in a `[keymap]` table (see '
        "Keys).",
    )
    top_n: int = Field(
        10, ge=1, le=TOP_N_MAX,
        description="How many candidate tokens (with probabilities) to record and show per generated token.",
    )
    sampling: SamplingParams = Field(
        default_factory=SamplingParams, description="Default sampling parameters for new chats."
    )
    presets: dict[str, SamplingParams] = Field(
        default_factory=_default_presets,
        description="Named sampling presets: built-in greedy, precise, balanced, creative, plus or "
        "overridden by yours.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Folder for tokendial's data (the chat database)."
    )
    backend: Backend = Field(
        Backend.LOCAL,
        description="Where the model runs: local (this process), llama-server (llama.cpp's server), openai "
        "(compatible).",
    )
    server_url: str = Field(
        "http://127.0.0.1:8080", pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The server's URL for the llama-server and openai backends (an openai URL may end in "
        "/v1).",
    )
    server_model: str | None = Field(
        None,
        description="The model to ask the server for (openai: one of its /v1/models; unset = the first it "
        "lists).",
    )
    api_key_file: Path | None = Field(
        None,
        description="A file holding the server's API key ($TOKENDIAL_API_KEY wins); the key is never stored "
        "or shown.",
    )
    server_probs: ServerProbs = Field(
        ServerProbs.SAMPLED,
        description="llama-server, sample mode: candidates' probabilities after the samplers (sampled) or "
        "before (raw).",
    )
    library_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra folders the model library (F2, `tokendial models`) looks through, besides "
        "models_dir and the hub, llama.cpp, LM Studio and Ollama stores.",
    )
    hide_thinking: bool = Field(
        False,
        description="Leave a reply's thinking section (what a reasoning model writes between its think "
        "tags) out of the chat view (the token view and the inspector still show every token).",
    )

    @field_validator("model_path", "models_dir", "data_dir", "api_key_file", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("presets", mode="before")
    @classmethod
    def _merge_default_presets(cls, value: Any) -> Any:
        """Start from the built-in presets; a partial table for a built-in name updates that preset."""
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = dict(DEFAULT_PRESETS)
        for name, preset in value.items():
            base = DEFAULT_PRESETS.get(name)
            if base is not None and isinstance(preset, Mapping):
                merged[name] = {**base.model_dump(), **preset}
            else:
                merged[name] = preset
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values (the CLI's flags) > environment > TOML file > defaults."""
        path = _active_config_path.get() or config_path_from_env()
        return (init_settings, env_settings, TokendialTomlSource(settings_cls, path))

    @property
    def default_model_path(self) -> Path:
        """Where the default model lives (or will, after `tokendial fetch`)."""
        return self.models_dir / DEFAULT_MODEL_FILENAME


@dataclass(frozen=True)
class LoadedSettings:
    """The result of :func:`load_settings`: the settings, the config file read, and warnings to show."""

    settings: Settings
    config_path: Path
    warnings: tuple[str, ...]


def load_settings(
    cli_values: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
) -> LoadedSettings:
    """Build Settings from flags (``cli_values``, nested dict keyed by field name) > env > TOML > defaults.

    Raises :class:`ConfigError` with one line per bad field (naming its source and allowed range),
    or one line for a TOML syntax error.
    """
    cli = dict(cli_values or {})
    path = config_path.expanduser() if config_path is not None else config_path_from_env()
    toml_source = TokendialTomlSource(Settings, path)
    try:
        env_values = EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise _env_source_error(exc) from None
    with using_config_file(path):
        try:
            settings = Settings(**cli)
        except ValidationError as exc:
            layers = [("flag", cli), ("env", env_values), ("toml", toml_source.toml_data)]
            raise ConfigError(describe_validation_error(exc, layers, path)) from None
    warnings = (*toml_source.warnings, *unknown_env_warnings())
    return LoadedSettings(settings=settings, config_path=path, warnings=warnings)


def _has_key_path(data: Any, loc: Sequence[str | int]) -> bool:
    current = data
    for part in loc:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return False
    return True


def _source_label(kind: str, loc: Sequence[str | int], config_path: Path) -> str:
    names = [str(part) for part in loc]
    if kind == "flag":
        return "flag --" + ".".join(name.replace("_", "-") for name in names)
    if kind == "env":
        environ_upper = {key.upper(): key for key in os.environ}
        for end in range(len(names), 0, -1):
            candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(names[:end]).upper()
            if candidate in environ_upper:
                return "env " + environ_upper[candidate]
        return "env " + ENV_PREFIX + ENV_NESTED_DELIMITER.join(names).upper()
    return f"config file {config_path}"


def _field_at(loc: Sequence[str | int]) -> FieldInfo | None:
    """The FieldInfo a validation error location points at (walking into models and dict values)."""
    annotation: Any = Settings
    field: FieldInfo | None = None
    index = 0
    while index < len(loc):
        part = loc[index]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
            index += 1
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            index += 1
        else:
            return field if index == len(loc) else None
    return field


def _setting_path(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The part of an error location that names a setting, not a key or an item inside its value
    (``sampling.logit_bias`` for ``sampling.logit_bias.abc.[key]``; presets' tables walked into)."""
    annotation: Any = Settings
    for index, part in enumerate(loc):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return tuple(loc[: index + 1])
            annotation = field.annotation
            continue
        value = get_args(annotation)[1] if get_origin(annotation) is dict else None
        if isinstance(value, type) and issubclass(value, BaseModel):
            annotation = value  # a named preset: its sampling keys follow
            continue
        return tuple(loc[:index])
    return tuple(loc)


def _unwrap_optional(annotation: Any) -> Any:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    return args[0] if len(args) == 1 and type(None) in get_args(annotation) else annotation


def allowed_values(field: FieldInfo, name: str) -> str | None:
    """A short description of what ``field`` accepts, e.g. ``0 < top_p <= 1`` (None if nothing to say)."""
    lower = upper = None
    extras: list[str] = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            lower = f"{meta.ge} <= "
        elif isinstance(meta, annotated_types.Gt):
            lower = f"{meta.gt} < "
        elif isinstance(meta, annotated_types.Le):
            upper = f" <= {meta.le}"
        elif isinstance(meta, annotated_types.Lt):
            upper = f" < {meta.lt}"
        elif isinstance(meta, annotated_types.MultipleOf):
            extras.append(f"a multiple of {meta.multiple_of}")
        elif isinstance(meta, annotated_types.MinLen):
            extras.append("not empty" if meta.min_length == 1 else f"at least {meta.min_length} characters")
    annotation = _unwrap_optional(field.annotation)
    parts: list[str] = []
    if lower or upper:
        kind = "an integer " if annotation is int else "a number " if annotation is float else ""
        parts.append(f"{kind}{lower or ''}{name}{upper or ''}")
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        parts.append("one of " + ", ".join(str(member.value) for member in annotation))
    elif annotation is int:
        parts.append("an integer")
    elif annotation is float:
        parts.append("a number")
    elif annotation is bool:
        parts.append("true or false")
    parts.extend(extras)
    if field.annotation is not annotation and parts:
        parts.append("or unset")
    return ", ".join(parts) if parts else None


def _show_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_validation_error(
    exc: ValidationError, layers: Sequence[tuple[str, Mapping[str, Any]]], config_path: Path
) -> list[str]:
    """One line per bad field: the (highest-priority) source that gave it, the value, the allowed range."""
    lines: list[str] = []
    seen: set[tuple[str | int, ...]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        # The error may point inside the value a source gave (a JSON env value): find the longest
        # prefix of the location that some source supplied, highest priority first.
        source = "default"
        for end in range(len(loc), 0, -1):
            found = next((kind for kind, data in layers if _has_key_path(data, loc[:end])), None)
            if found is not None:
                named = _setting_path(loc[:end]) if found == "flag" else loc[:end]  # the flag as typed
                source = _source_label(found, named, config_path)
                break
        dotted = ".".join(str(part) for part in loc if part != "[key]") or "settings"
        field = _field_at(loc)
        allowed = allowed_values(field, str(loc[-1])) if field is not None and loc else None
        setting = _setting_path(loc)
        if allowed is None and setting != loc and (inside := _field_at(setting)) is not None:
            allowed = _allowed_text(".".join(str(part) for part in setting), inside)  # a key or an item
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        line = f"bad setting {dotted} = {_show_value(error.get('input'))} (from {source}): {message}"
        if allowed:
            line += f"; allowed: {allowed}"
        lines.append(line)
    return lines


def save_default_sampling(params: SamplingParams, config_path: Path | None = None) -> Path:
    """Write ``params`` as the ``[sampling]`` table of the TOML config (atomically); return the path.

    Other keys in the file are kept (comments are not). Raises :class:`ConfigWriteError` with a
    user-facing message when the file can't be read as TOML or can't be written.
    """
    path = (config_path or config_path_from_env()).expanduser()
    document: dict[str, Any] = {}
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        pass
    except tomllib.TOMLDecodeError as exc:
        raise ConfigWriteError(f"cannot update config file {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigWriteError(f"cannot update config file {path}: {_not_utf8(exc)}") from None
    except OSError as exc:
        raise ConfigWriteError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    document["sampling"] = params.model_dump(mode="json")
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise ConfigWriteError(f"cannot write config file {path}: {exc.strerror or exc}") from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return path


def _default_text(name: str, field: FieldInfo) -> str:
    if name in ("models_dir", "data_dir"):
        return "see below"
    if name == "library_dirs":
        return "none"
    if name == "presets":
        return "greedy, precise, balanced, creative"
    if name in ("keymap", "logit_bias"):
        return "none"
    if field.default_factory is not None:
        return "see below"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, tuple) and name == "samplers":
        return "`" + ";".join(str(v) for v in value) + "`"
    if isinstance(value, tuple):
        shown = [repr(v) if name == "dry_sequence_breakers" else str(v) for v in value]
        return "none" if not value else ", ".join(f"`{v}`" for v in shown)
    if value == "":
        return "empty"
    return f"`{value}`"


_ALLOWED_TEXT: dict[str, str] = {
    "library_dirs": "a list of paths",
    "model_path": "a path, or unset",
    "api_key_file": "a path, or unset",
    "models_dir": "a path",
    "data_dir": "a path",
    "chat_template": "Jinja text or a built-in name, or unset",
    "server_model": "text, or unset",
    "presets": "tables of sampling keys",
    "server_url": "an http:// or https:// URL",
    "keymap": "a table of binding id = key(s)",
    "sampling.stop": "a list of non-empty strings",
    "sampling.dry_sequence_breakers": "a list of non-empty strings (flag, env: a JSON list or one breaker)",
    "sampling.logit_bias": 'a table of token id = bias (-100 to 100, or "-inf" to ban)',
    "sampling.samplers": "sampler names in order (a list, or one string joined by ;)",
    "sampling.grammar": "text (empty = none)",
    "sampling.json_schema": "text (empty = none)",
}
"""The Allowed column where the field's type and bounds don't say it."""


def _allowed_text(dotted: str, field: FieldInfo) -> str:
    """What setting ``dotted`` accepts, in words (the reference table's Allowed column)."""
    return _ALLOWED_TEXT.get(dotted) or allowed_values(field, dotted.rsplit(".", 1)[-1]) or "text"


def reference_table() -> str:
    """The README's config reference: one Markdown row per setting (sampling fields expanded)."""
    rows = ["| Setting (TOML key) | Default | Allowed | What it does |", "| --- | --- | --- | --- |"]
    fields: list[tuple[str, FieldInfo]] = []
    for name, field in Settings.model_fields.items():
        if name == "sampling":
            fields.extend(
                (f"sampling.{sub}", sub_field) for sub, sub_field in SamplingParams.model_fields.items()
            )
        else:
            fields.append((name, field))
    for dotted, field in fields:
        leaf = dotted.rsplit(".", 1)[-1]
        allowed = _allowed_text(dotted, field)
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{dotted}` | {_default_text(leaf, field)} | {allowed} | {description} |")
    return "\n".join(rows)
