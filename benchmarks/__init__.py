"""End-to-end throughput benchmark: this package against the usual ways of sending bulk email."""
