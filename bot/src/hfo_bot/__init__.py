"""Reference Discord bot for hybrid-failover: health endpoints, graceful SIGTERM, StatefulSet sharding."""

__version__ = "0.1.0"
