"""Metrics adapters: prometheus_client for the local host's /metrics (without metrics, nothing counts)."""
