"""``Settings``: every knob of the service layer, from a config file, the environment and code.

Precedence, lowest to highest: a config file (TOML or YAML), environment variables named
``MLSERVICES_<SETTING>`` (upper case), keyword arguments. The file is ``config_file=...`` or
``MLSERVICES_CONFIG_FILE``. A bad value fails at construction with a
:class:`~mlservices.errors.SettingsError` naming the setting, the value, where it came from and
the allowed range.

Example:
    >>> settings = Settings(max_batch_tokens=8192, validation_strategy="lenient")
    >>> settings.max_batch_tokens
    8192
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from mlservices.errors import SettingsError

ENV_PREFIX = "MLSERVICES_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


class Settings(BaseModel):
    """Configuration of the embedding and processing services.

    Args:
        config_file: a ``.toml``, ``.yaml`` or ``.yml`` file (its top level, or its
            ``[mlservices]`` table, holds settings); defaults to ``$MLSERVICES_CONFIG_FILE``.
        **values: settings by name; they override the environment and the file.

    Raises:
        SettingsError: a value is invalid, or the file is unreadable or names unknown settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    model: str | None = Field(None, description="model folder; None: bundled all-MiniLM-L6-v2")
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="auto, cpu, cuda or cuda:N")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    normalize_embeddings: bool = False
    warmup: bool = True

    max_batch_tokens: int = Field(16384, ge=16, le=1 << 22, description="token budget ceiling")
    min_batch_tokens: int | None = Field(
        None, ge=16, le=1 << 22, description="token budget floor; None: the model's window"
    )
    max_batch_texts: int = Field(256, ge=1, le=65536)
    memory_fraction: float = Field(0.25, gt=0.0, le=1.0, description="of free memory per batch")
    max_wait_ms: float = Field(5.0, ge=0.0, le=10_000.0, description="coalescing window")
    max_queue_texts: int = Field(100_000, ge=1, description="queued texts before refusing")
    request_timeout_s: float = Field(120.0, gt=0.0, le=86_400.0)
    drain_timeout_s: float = Field(30.0, ge=0.0, le=3600.0)

    validation_strategy: Literal["strict", "lenient"] = "strict"
    max_text_chars: int = Field(100_000, ge=1, le=100_000_000)
    max_request_texts: int = Field(100_000, ge=1)

    memory_limit_mb: float | None = Field(None, gt=0.0, description="process RSS limit")
    gpu_memory_limit_mb: float | None = Field(None, gt=0.0, description="GPU memory limit")

    alert_latency_ms: float | None = Field(None, gt=0.0)
    alert_memory_mb: float | None = Field(None, gt=0.0)
    alert_gpu_utilization: float | None = Field(None, ge=0.0, le=100.0)

    chunk_window_tokens: int | None = Field(None, ge=8, description="None: the model's window")
    chunk_overlap_tokens: int = Field(32, ge=0)
    tensorboard_dir: str | None = None

    def __init__(self, config_file: str | os.PathLike | None = None, **values: Any) -> None:
        merged, sources = _gather(config_file, values)
        try:
            super().__init__(**merged)
        except pydantic.ValidationError as exc:
            raise _settings_error(exc, merged, sources) from None
        self._check_consistency(sources)

    def _check_consistency(self, sources: dict[str, str]) -> None:
        if self.min_batch_tokens is not None and self.min_batch_tokens > self.max_batch_tokens:
            raise SettingsError(
                f"min_batch_tokens={self.min_batch_tokens} exceeds "
                f"max_batch_tokens={self.max_batch_tokens}",
                hint=f"allowed: 16 <= min_batch_tokens <= max_batch_tokens "
                f"(from {sources.get('min_batch_tokens', 'default')})",
                setting="min_batch_tokens",
                value=self.min_batch_tokens,
                allowed=f"16..{self.max_batch_tokens}",
                source=sources.get("min_batch_tokens", "default"),
            )
        window = self.chunk_window_tokens
        if window is not None and self.chunk_overlap_tokens >= window - 2:
            raise SettingsError(
                f"chunk_overlap_tokens={self.chunk_overlap_tokens} leaves no room in "
                f"chunk_window_tokens={window} (2 of which are special tokens)",
                hint=f"allowed: 0 <= chunk_overlap_tokens <= {window - 3}",
                setting="chunk_overlap_tokens",
                value=self.chunk_overlap_tokens,
                allowed=f"0..{window - 3}",
                source=sources.get("chunk_overlap_tokens", "default"),
            )


def _gather(config_file, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """File < environment < keywords, with the source of each value."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file if config_file is not None else os.environ.get(CONFIG_FILE_ENV)
    if path:
        for name, value in read_config_file(Path(path)).items():
            merged[name], sources[name] = value, f"config file {path}"
    for name in Settings.model_fields:
        env = ENV_PREFIX + name.upper()
        if env in os.environ:
            merged[name], sources[name] = _env_value(os.environ[env]), f"environment {env}"
    for name, value in values.items():
        merged[name], sources[name] = value, "keyword argument"
    return merged, sources


def _env_value(raw: str) -> Any:
    """Environment strings: ``none``/empty mean None; pydantic converts the rest."""
    if raw.strip().lower() in ("", "none", "null"):
        return None
    return raw


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML or YAML file: its top level, or its ``mlservices`` table.

    Raises:
        SettingsError: the file is missing, unreadable, of another type or not a mapping.
    """
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsError(
            f"config file {path} must be .toml, .yaml or .yml, got {suffix or 'no suffix'}",
            setting="config_file",
            value=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8")
        data = _parse_toml(text) if suffix == ".toml" else _parse_yaml(text)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"config file {path} cannot be read: {exc}",
            hint="check the path and the syntax",
            setting="config_file",
            value=str(path),
        ) from exc
    data = data if data is not None else {}
    if isinstance(data, dict) and isinstance(data.get("mlservices"), dict):
        data = data["mlservices"]
    if not isinstance(data, dict):
        raise SettingsError(
            f"config file {path} holds a {type(data).__name__}, expected a mapping of settings",
            setting="config_file",
            value=str(path),
        )
    return data


def _parse_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)


def _parse_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


def _settings_error(
    exc: pydantic.ValidationError, merged: dict[str, Any], sources: dict[str, str]
) -> SettingsError:
    """The first pydantic error as a SettingsError with name, value, source and allowed range."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "settings"
    value = merged.get(name, error.get("input"))
    source = sources.get(name, "default")
    if error["type"] == "extra_forbidden":
        known = ", ".join(Settings.model_fields)
        return SettingsError(
            f"unknown setting {name!r} (from {source})",
            hint=f"known settings: {known}",
            setting=name,
            value=value,
            source=source,
        )
    allowed = allowed_range(name)
    return SettingsError(
        f"setting {name}={value!r} (from {source}) is invalid: {error['msg']}",
        hint=f"allowed: {allowed}",
        setting=name,
        value=value,
        allowed=allowed,
        source=source,
    )


def allowed_range(name: str) -> str:
    """A readable description of what ``name`` accepts, from its type and constraints."""
    field = Settings.model_fields[name]
    bounds = []
    for item in field.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                bounds.append(f"{symbol} {getattr(item, attr)}")
        if getattr(item, "pattern", None):
            bounds.append(f"matching {item.pattern}")
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if type(None) in typing.get_args(annotation) and len(args) == 1:
        annotation = args[0]
    kind = getattr(annotation, "__name__", None) or str(annotation)
    if typing.get_origin(annotation) is Literal:
        kind = "one of " + ", ".join(map(json.dumps, typing.get_args(annotation)))
    text = f"{kind} {' and '.join(bounds)}".strip()
    return text + (" or None" if field.default is None else "")


__all__ = ["CONFIG_FILE_ENV", "ENV_PREFIX", "Settings", "allowed_range", "read_config_file"]
