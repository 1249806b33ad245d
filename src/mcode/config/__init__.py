"""Configuration: where things live and which settings are in force, resolved once at the edge."""

from mcode.config.paths import (
    MEMORY_DIRNAME,
    Paths,
    ensure_memory_dir,
    ensure_private_dir,
)
from mcode.config.settings import (
    ConfigError,
    Settings,
    load_settings,
    pre_push_range,
    read_toml,
)

__all__ = [
    "MEMORY_DIRNAME",
    "ConfigError",
    "Paths",
    "Settings",
    "ensure_memory_dir",
    "ensure_private_dir",
    "load_settings",
    "pre_push_range",
    "read_toml",
]
