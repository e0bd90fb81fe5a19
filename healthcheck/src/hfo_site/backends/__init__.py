"""Workload backends: how a site starts and stops its bot. One interface, two implementations."""

from hfo_site.backends.base import ConflictError, Observation, WorkloadBackend, WorkloadError

__all__ = ["ConflictError", "Observation", "WorkloadBackend", "WorkloadError"]
