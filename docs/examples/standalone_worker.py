"""/metrics from a process that serves no HTTP of its own: a worker taking jobs off a queue.

    python docs/examples/standalone_worker.py [port] [jobs]

`start_metrics_server` serves from a daemon thread on 127.0.0.1 (pass addr="0.0.0.0" for a
Prometheus on another host); port 0 takes a free one. tests/unit/test_metrics_serving.py runs it.
"""

import sys
import time

from prometheus_client import Counter, Histogram

from watchfloor.metrics import start_metrics_server

JOBS = Counter("example_jobs_processed", "Jobs the worker finished.")
JOB_SECONDS = Histogram("example_job_duration_seconds", "Time to process one job.")


def process(job: int) -> None:
    with JOB_SECONDS.time():
        time.sleep(0.05)  # stands in for the work
    JOBS.inc()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9400
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    server = start_metrics_server(port)
    print(f"metrics on {server.url}", flush=True)
    try:
        for job in range(jobs):
            process(job)
    finally:
        server.close()


if __name__ == "__main__":
    main()
