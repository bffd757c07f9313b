"""Reading ``becomingone.yaml``: file → environment overrides → validated :class:`CellConfig`.

Rule: every problem comes back with the dotted key path and the reason
(``becomingone.kairos.dt: Input should be greater than 0``); :func:`check_config` lists them all,
:func:`load_config` raises :class:`~becomingone.errors.ConfigError` carrying them all.
Environment overrides are ``BECOMINGONE__SECTION__KEY=value`` (value parsed as YAML).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from becomingone.config.schema import BecomingOneConfig, CellConfig
from becomingone.errors import ConfigError

__all__ = ["ENV_PREFIX", "ConfigIssue", "check_config", "load_config", "read_raw"]

ENV_PREFIX = "BECOMINGONE__"
_KEY = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One bad key: its dotted ``path`` and the ``reason``."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def read_raw(path: Path) -> dict[str, Any]:
    """The YAML document at ``path`` as a dict; raises ``ConfigError`` if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), f"top level must be a mapping, got {type(data).__name__}")
    return data


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[list[str], Any]]:
    out = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(name, "empty key in environment override")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError as exc:
            raise ConfigError(name, f"value is not valid YAML: {exc}") from exc
        out.append((keys, value))
    return out


def _apply(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data.setdefault("becomingone", {})
    if not isinstance(node, dict):
        raise ConfigError("becomingone", "must be a mapping to apply environment overrides")
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"becomingone.{key}", "is not a mapping; cannot override inside it")
        node = child
    node[keys[-1]] = value


def _issues(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "becomingone"
        if err["type"] == "extra_forbidden":
            issues.append(ConfigIssue(path=where, reason="unknown key"))
            continue
        for line in err["msg"].removeprefix("Value error, ").splitlines():
            key, sep, rest = line.partition(": ")
            if err["type"] == "value_error" and sep and _KEY.fullmatch(key):
                issues.append(ConfigIssue(path=f"{where}.{key}", reason=rest))
            else:
                issues.append(ConfigIssue(path=where, reason=line))
    return issues


def _validate(data: dict[str, Any]) -> tuple[CellConfig | None, list[ConfigIssue]]:
    try:
        return BecomingOneConfig.model_validate(data).becomingone, []
    except ValidationError as exc:
        return None, _issues(exc)


def check_config(path: Path, environ: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Every problem in the file at ``path`` (plus overrides from ``environ``); [] when valid."""
    try:
        data = read_raw(path)
        for keys, value in _env_overrides(environ or {}):
            _apply(data, keys, value)
    except ConfigError as exc:
        return [ConfigIssue(path=exc.path, reason=exc.message)]
    return _validate(data)[1]


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> CellConfig:
    """The validated config: embedded defaults, then the file, then environment overrides.

    ``environ`` defaults to ``os.environ``. Raises ``ConfigError`` listing every bad key.
    """
    data = read_raw(path) if path is not None else {}
    for keys, value in _env_overrides(os.environ if environ is None else environ):
        _apply(data, keys, value)
    config, issues = _validate(data)
    if config is None:
        first = issues[0]
        text = "; ".join(str(i) for i in issues)
        raise ConfigError(first.path, f"{len(issues)} invalid key(s): {text}")
    return config
