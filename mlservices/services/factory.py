"""``ServiceFactory``: the one place services are built from settings."""

from __future__ import annotations

from mlservices.encoder import Encoder
from mlservices.monitoring.alerts import AlertCallback
from mlservices.services.embedding import EmbeddingService
from mlservices.services.processing import ProcessingService
from mlservices.settings import Settings


class ServiceFactory:
    """Builds services; nothing is loaded until the service starts.

    Example:
        >>> service = ServiceFactory.create_embedding_service(Settings(device="cpu"))
        >>> async with service:
        ...     matrix = await service.embed_batch(["a", "b"])
    """

    @staticmethod
    def create_embedding_service(
        settings: Settings | None = None,
        *,
        encoder: Encoder | None = None,
        alert_callbacks: list[AlertCallback] | None = None,
    ) -> EmbeddingService:
        """An EmbeddingService; ``settings=None`` reads ``Settings()`` (environment, file)."""
        return EmbeddingService(settings, encoder=encoder, alert_callbacks=alert_callbacks)

    @staticmethod
    def create_processing_service(
        settings: Settings | None = None,
        *,
        embedding_service: EmbeddingService | None = None,
        encoder: Encoder | None = None,
    ) -> ProcessingService:
        """A ProcessingService; it creates and owns an embedding service unless given one."""
        return ProcessingService(settings, embedding_service=embedding_service, encoder=encoder)


__all__ = ["ServiceFactory"]
