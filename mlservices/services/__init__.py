"""Async services around the encoder: embedding, document processing, their factory and
lifecycle."""

from mlservices.services.embedding import EmbeddingReport, EmbeddingService
from mlservices.services.factory import ServiceFactory
from mlservices.services.lifecycle import ManagedService, mark_degraded, mark_recovered, running
from mlservices.services.processing import ProcessedDocuments, ProcessingService

__all__ = [
    "EmbeddingReport",
    "EmbeddingService",
    "ManagedService",
    "ProcessedDocuments",
    "ProcessingService",
    "ServiceFactory",
    "mark_degraded",
    "mark_recovered",
    "running",
]
