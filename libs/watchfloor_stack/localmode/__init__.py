"""Local mode: the metrics half of the stack on native binaries, on 127.0.0.1, without Docker.

`watchfloor-local up|down|status` (and `make local-up|local-down|local-status`). It runs the same
infrastructure/prometheus/prometheus.yml and rule files as Compose; only the file_sd target files
differ (written into the state directory for 127.0.0.1 and the configured ports).
"""
