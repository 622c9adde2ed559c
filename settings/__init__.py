"""What tokendial can be configured with: Settings (layered sources), SamplingParams, presets."""

from settings.config import (
    DEFAULT_MODEL_FILENAME,
    ConfigError,
    ConfigWriteError,
    LoadedSettings,
    Settings,
    default_config_path,
    load_settings,
    save_default_sampling,
)
from settings.sampling import DEFAULT_PRESETS, SamplingMode, SamplingParams, replace_params

__all__ = [
    "DEFAULT_MODEL_FILENAME",
    "DEFAULT_PRESETS",
    "ConfigError",
    "ConfigWriteError",
    "LoadedSettings",
    "SamplingMode",
    "SamplingParams",
    "Settings",
    "default_config_path",
    "load_settings",
    "replace_params",
    "save_default_sampling",
]
