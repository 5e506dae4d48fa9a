"""Grafana dashboards built with grafana-foundation-sdk and written as committed JSON."""
