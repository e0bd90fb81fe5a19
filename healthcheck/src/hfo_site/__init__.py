"""hybrid-failover site side: the health service (``hfo-site health``) and the site agent
(``hfo-site agent``). See docs/site.md."""

__version__ = "0.1.0"
