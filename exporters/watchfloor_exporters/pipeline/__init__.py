"""The pipeline exporter: run, quality and external-API events → pipeline metrics."""
