"""Input checks shared by every backend, run before anything is allocated.

Messages name the op, the argument, what was expected and what was given, and what to do.
"""

from __future__ import annotations

import torch

from mlservices.errors import InputTypeError, ValidationError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def tensor(op: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise InputTypeError(f"mlservices.{op}: {name} must be a torch.Tensor, got {type(t)}")
    return t


def rows(op: str, name: str, t: torch.Tensor, ndim: int = 2) -> None:
    """A floating tensor of ``ndim`` dims whose last dimension is contiguous."""
    tensor(op, name, t)
    if t.dim() != ndim:
        raise ValidationError(
            f"mlservices.{op}: {name} must be {ndim}-D, got shape {tuple(t.shape)}", argument=name
        )
    if t.dtype not in FLOAT_DTYPES:
        raise ValidationError(
            f"mlservices.{op}: {name} must be float32, float16, bfloat16 or float64, got {t.dtype}",
            argument=name,
        )
    if t.shape[-1] > 1 and t.stride(-1) != 1:
        raise ValidationError(
            f"mlservices.{op}: {name} must have a contiguous last dimension, got strides "
            f"{t.stride()}",
            hint="pass a row-strided view or call .contiguous() yourself (no silent copy is made)",
            argument=name,
        )


def same_device(op: str, **tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValidationError(f"mlservices.{op}: tensors are on different devices: {devices}")


def cu_seqlens(op: str, cu: torch.Tensor, n_rows: int, check_values: bool = True) -> None:
    """int32 [B + 1], starts at 0, non-decreasing, ends at ``n_rows``."""
    tensor(op, "cu_seqlens", cu)
    if cu.dtype != torch.int32:
        raise ValidationError(
            f"mlservices.{op}: cu_seqlens must be int32, got {cu.dtype}",
            hint="build it with torch.int32 (e.g. F.pad(lengths.cumsum(0), (1, 0)).int())",
        )
    if cu.dim() != 1 or cu.numel() < 1:
        raise ValidationError(
            f"mlservices.{op}: cu_seqlens must be 1-D [batch + 1], got shape {tuple(cu.shape)}"
        )
    if not cu.is_contiguous():
        raise ValidationError(f"mlservices.{op}: cu_seqlens must be contiguous")
    if not check_values:
        return
    values = cu.tolist()
    if values[0] != 0:
        raise ValidationError(f"mlservices.{op}: cu_seqlens must start at 0, got {values[0]}")
    drops = [i for i in range(1, len(values)) if values[i] < values[i - 1]]
    if drops:
        i = drops[0]
        raise ValidationError(
            f"mlservices.{op}: cu_seqlens must be non-decreasing, but cu_seqlens[{i}]="
            f"{values[i]} < cu_seqlens[{i - 1}]={values[i - 1]}"
        )
    if values[-1] != n_rows:
        raise ValidationError(
            f"mlservices.{op}: cu_seqlens must end at the number of rows ({n_rows}), "
            f"got {values[-1]}"
        )


def max_seqlen(op: str, cu: torch.Tensor, value: object) -> None:
    """An int no smaller than the longest segment."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"mlservices.{op}: max_seqlen must be an int, got {value!r}")
    longest = int((cu[1:] - cu[:-1]).max()) if cu.numel() > 1 else 0
    if value < longest:
        raise ValidationError(
            f"mlservices.{op}: max_seqlen={value} but a segment has {longest} rows",
            hint="pass the longest segment length (pack() returns it)",
        )


def choice(op: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(
            f"mlservices.{op}: {name} must be one of {', '.join(allowed)}; got {value!r}",
            argument=name,
        )
