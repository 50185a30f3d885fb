"""A TensorBoard scalar writer when ``torch.utils.tensorboard`` can be imported (it needs the
``tensorboard`` package); otherwise a no-op that says so once, at info level."""

from __future__ import annotations

import logging
from numbers import Real

logger = logging.getLogger(__name__)


class TensorBoardWriter:
    """Writes metric snapshots as scalars under ``log_dir``.

    Args:
        log_dir: the event-file folder; None disables writing.

    Attributes:
        enabled: True when events are actually being written.
    """

    def __init__(self, log_dir: str | None) -> None:
        self._writer = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info(
                "tensorboard is not installed; metrics for %s are not written "
                "(pip install tensorboard)",
                log_dir,
            )
            return
        self._writer = SummaryWriter(log_dir=log_dir)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def write(self, snapshot: dict[str, object], step: int) -> None:
        """Every number of a metrics snapshot (histograms: their mean and p95) at ``step``."""
        if self._writer is None:
            return
        for name, value in snapshot.items():
            tag = name.replace("{", "/").replace("}", "").replace(",", "/")
            if isinstance(value, Real):
                self._writer.add_scalar(tag, float(value), step)
            elif isinstance(value, dict):
                for key in ("mean", "p95"):
                    if key in value:
                        self._writer.add_scalar(f"{tag}/{key}", float(value[key]), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


__all__ = ["TensorBoardWriter"]
