"""What tokendial can be configured with: Settings (layered sources), SamplingParams, presets."""

from settings.sampling import DEFAULT_PRESETS, SamplingMode, SamplingParams, replace_params

__all__ = ["DEFAULT_PRESETS", "SamplingMode", "SamplingParams", "replace_params"]
