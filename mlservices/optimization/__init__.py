"""Dynamic batching and resource management for the services."""

from mlservices.optimization.batching import DynamicBatcher, is_out_of_memory
from mlservices.optimization.resources import (
    MonitorReport,
    ResourceManager,
    ResourceUsage,
    activation_bytes_per_token,
)

__all__ = [
    "DynamicBatcher",
    "MonitorReport",
    "ResourceManager",
    "ResourceUsage",
    "activation_bytes_per_token",
    "is_out_of_memory",
]
