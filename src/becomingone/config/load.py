"""Reading ``becomingone.yaml``: file → environment overrides → validated :class:`CellConfig`.

Rule: every problem comes back with the dotted key path and the reason
(``becomingone.kairos.dt: Input should be greater than 0``); :func:`check_config` lists them all,
:func:`load_config` raises :class:`~becomingone.errors.ConfigError` carrying them all.
Each problem is one line: a YAML syntax error names ``FILE:LINE:COLUMN``, a binary file its
name. Environment overrides are ``BECOMINGONE__SECTION__KEY=value``, the value parsed as a YAML
scalar (YAML 1.2 floats: ``1e-3`` is a number) before the schema's strict validation.
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


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 floats: ``1e-3`` is a number (PyYAML's 1.1 rules make it text)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_error(where: str, exc: yaml.YAMLError) -> ConfigError:
    """One line for a YAML error: ``FILE:LINE:COLUMN: problem (context)`` when it has a mark."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = exc.problem or "not valid YAML"
        if exc.context:
            ctx = exc.context_mark
            at = f" at line {ctx.line + 1}, column {ctx.column + 1}" if ctx is not None else ""
            text += f" ({exc.context}{at})"
        return ConfigError(f"{where}:{mark.line + 1}:{mark.column + 1}", " ".join(text.split()))
    if isinstance(exc, yaml.reader.ReaderError):
        return ConfigError(
            where,
            f"not valid YAML: character #x{exc.character:04x} at offset {exc.position}:"
            f" {exc.reason}",
        )
    return ConfigError(where, "not valid YAML: " + " ".join(str(exc).split()))


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document ``text``; raises a one-line ``ConfigError`` at ``where`` if invalid."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(where, exc) from exc


def read_raw(path: Path) -> dict[str, Any]:
    """The YAML document at ``path`` as a dict; raises a one-line ``ConfigError`` naming the
    file (and line:column for a syntax error) if it is unreadable, binary or not YAML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if b"\x00" in raw:
        raise ConfigError(str(path), "not a YAML text file (it holds NUL bytes: binary data?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path),
            f"not a YAML text file (byte 0x{raw[exc.start]:02x} at offset {exc.start} is not"
            " UTF-8)",
        ) from exc
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), f"top level must be a mapping, got {type(data).__name__}")
    return data


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[list[str], Any]]:
    """(keys, value) of each ``BECOMINGONE__*`` variable, its value parsed as a YAML scalar
    (``0.9`` a float, ``true`` a bool, ``"7"`` a string) before strict validation."""
    out = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(name, "empty key in environment override")
        try:
            value = parse_yaml(raw, name) if raw.strip() else raw
        except ConfigError as exc:
            raise ConfigError(name, f"value is not valid YAML: {exc.message}") from exc
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
