"""Building Settings: defaults < config.toml < environment < flags, each value converted and
named in the error when it is bad."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blink.config.checks import validate
from blink.config.declared import ConfigError, Settings
from blink.config.redaction import redact

FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
BY_TOML = {f.metadata["toml"]: f for f in FIELDS.values()}


def _convert(f: dataclasses.Field, raw: Any, origin: str) -> Any:
    label = f"{origin}={raw!r}"
    typ = f.type
    try:
        if typ == "bool":
            value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        elif typ == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif typ == "float":
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        elif typ == "Path":
            value = Path(os.path.expanduser(str(raw)))
        elif typ.startswith("tuple"):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(str(i).strip() for i in items if str(i).strip())
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw
    except (TypeError, ValueError):
        raise ConfigError(f"{label}: expected {typ}") from None
    if f.metadata["choices"] and value not in f.metadata["choices"]:
        raise ConfigError(f"{label}: must be one of {', '.join(f.metadata['choices'])}")
    return value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in BY_TOML:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def normalize_dsn(dsn: str) -> str:
    """Accept the seed's SQLAlchemy form (postgresql+psycopg2://) and plain libpq URLs."""
    if not dsn:
        return dsn
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: not a postgresql:// URL")
    base = scheme.split("+", 1)[0]
    if base not in ("postgresql", "postgres"):
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: scheme must be postgresql://")
    try:
        urlsplit(dsn).port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: bad port") from None
    return f"postgresql://{rest}"


def _products(values: dict[str, Any], layers: dict[str, int]) -> None:
    """`pair` and `pairs` name the products; set in one layer (file, environment, flags) they
    contradict each other: an error. Set in different layers, the later one wins. Afterwards
    `pairs` lists every product and `pair` is the first."""
    if "pair" in layers and "pairs" in layers:
        if layers["pair"] == layers["pairs"]:
            where = ("the config file", "the environment (PAIR and PAIRS)",
                     "the flags (--pair and --pairs)")[layers["pair"]]
            raise ConfigError(f"PAIR={values['pair']!r} and PAIRS={','.join(values['pairs'])!r}"
                              f" both set in {where}: set PAIRS alone for several products")
        del values["pairs" if layers["pair"] > layers["pairs"] else "pair"]
    pairs = values.get("pairs") or (values.get("pair", FIELDS["pair"].default),)
    values["pairs"], values["pair"] = tuple(pairs), pairs[0]


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from defaults < TOML file < environment < flags (field name -> value)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    layers: dict[str, int] = {}  # pair/pairs -> 0 file, 1 environment, 2 flags
    explicit = path is not None or "BLINK_CONFIG" in env
    path = Path(path or env.get("BLINK_CONFIG", "config.toml"))
    if path.exists():
        try:
            table = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        for key, raw in _flatten(table).items():
            if key not in BY_TOML:
                raise ConfigError(f"{path}: unknown key {key!r}")
            values[BY_TOML[key].name] = _convert(BY_TOML[key], raw, f"{path}:{key}")
            layers[BY_TOML[key].name] = 0
    elif explicit:
        raise ConfigError(f"--config={str(path)!r}: file not found")
    for f in FIELDS.values():
        name = f.metadata["env"]
        if name in env and env[name] != "":
            values[f.name] = _convert(f, env[name], name)
            layers[f.name] = 1
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise ConfigError(f"--{name.replace('_', '-')}={raw!r}: unknown setting")
        values[name] = _convert(FIELDS[name], raw, f"--{name.replace('_', '-')}")
        layers[name] = 2
    _products(values, {k: v for k, v in layers.items() if k in ("pair", "pairs")})
    if "pg_dsn" in values:
        values["pg_dsn"] = normalize_dsn(values["pg_dsn"])
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    settings = Settings(**values)
    validate(settings)
    return settings
