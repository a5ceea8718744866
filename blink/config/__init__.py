"""One frozen Settings object: built-in defaults < config.toml < environment < flags.

Every setting is declared once below with its TOML key, its environment name and a line of
help; the README table is generated from the same declarations (`python -m blink settings`).
A bad value raises ConfigError naming the key and the value; the CLI prints it and exits 2.
"""

from blink.config.declared import ROLES, SOURCES, ConfigError, Settings
from blink.config.loading import BY_TOML, FIELDS, load, normalize_dsn
from blink.config.redaction import redact, redact_secret

__all__ = ["BY_TOML", "FIELDS", "ROLES", "SOURCES", "ConfigError", "Settings", "load",
           "normalize_dsn", "redact", "redact_secret"]
