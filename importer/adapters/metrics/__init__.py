"""Metrics adapters: prometheus_client for the local host's /metrics, and a no-op default."""
