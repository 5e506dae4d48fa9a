"""The data-pipeline metric catalog: runs, freshness, quality, external APIs, cost.

A run's job is labelled `pipeline_job`, not `job`: Prometheus sets `job` (and `instance`, `service`,
`component`) on every series it scrapes, so a metric's own `job` would be renamed `exported_job`.
The helpers still take it as `job=`, the name callers and the exporter's events use.

Labels pipeline, pipeline_job, dataset, api and resource are capped by the cardinality guard;
status (a run's status, or the HTTP code 100..599 of an API call), dimension and result are closed
sets, checked once per new label combination (`input_errors`: folded or `__overflow__`, never
raised outside strict mode; a quality score outside 0..1 is dropped). Quality thresholds (seed
000): completeness 0.8, consistency 0.9, validation pass rate 95%. docs/metrics.md describes every
label. The cardinality guard also bounds series per metric and in total, and removes idle ones
(`cardinality`); the last-success and freshness series are kept while there is room, since their
staleness is what alerts watch.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from watchfloor.metrics import input_errors
from watchfloor.metrics.cardinality import HTTP_STATUSES, Family, closed_value
from watchfloor.metrics.exemplars import current_exemplar

FINISHED_STATUSES = frozenset({"success", "failure", "cancelled"})
RUN_STATUSES = FINISHED_STATUSES | {"started"}
QUALITY_DIMENSIONS = frozenset({"completeness", "consistency", "validity"})
RESULTS = frozenset({"pass", "fail"})

RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

RUN_DURATION = Family(
    Histogram(
        "pipeline_run_duration_seconds",
        "Duration of finished pipeline runs by outcome (success, failure, cancelled).",
        ["pipeline", "pipeline_job", "status"],
        buckets=RUN_BUCKETS,
    ),
    capped=("pipeline", "pipeline_job"),
    closed={"status": FINISHED_STATUSES},
)
RUNS = Family(
    Counter(
        "pipeline_runs_total",
        "Pipeline runs by status (started, success, failure, cancelled).",
        ["pipeline", "pipeline_job", "status"],
    ),
    capped=("pipeline", "pipeline_job"),
    closed={"status": RUN_STATUSES},
)
LAST_SUCCESS = Family(
    Gauge(
        "pipeline_last_success_timestamp_seconds",
        "Unix time the job last finished successfully.",
        ["pipeline", "pipeline_job"],
    ),
    capped=("pipeline", "pipeline_job"),
    keep_idle=True,
)
RECORDS = Family(
    Counter(
        "pipeline_records_processed_total",
        "Records a job processed successfully.",
        ["pipeline", "pipeline_job"],
    ),
    capped=("pipeline", "pipeline_job"),
)
RECORD_ERRORS = Family(
    Counter(
        "pipeline_record_errors_total",
        "Records a job failed to process.",
        ["pipeline", "pipeline_job"],
    ),
    capped=("pipeline", "pipeline_job"),
)
FRESHNESS = Family(
    Gauge(
        "pipeline_data_freshness_seconds",
        "Age of the newest successfully loaded data of the dataset.",
        ["dataset"],
    ),
    capped=("dataset",),
    keep_idle=True,
)
QUALITY = Family(
    Gauge(
        "pipeline_data_quality_score",
        "Data quality score of the dataset's latest load (0..1) by dimension.",
        ["dataset", "dimension"],
    ),
    capped=("dataset",),
    closed={"dimension": QUALITY_DIMENSIONS},
)
VALIDATIONS = Family(
    Counter(
        "pipeline_validation_checks_total",
        "Validation checks run on the dataset, by result (pass, fail).",
        ["dataset", "result"],
    ),
    capped=("dataset",),
    closed={"result": RESULTS},
)
API_REQUESTS = Family(
    Counter(
        "pipeline_external_api_requests_total",
        "Requests to external data APIs by HTTP status code (429 = throttled).",
        ["api", "status"],
    ),
    capped=("api",),
    closed={"status": HTTP_STATUSES},
)
API_RATE_LIMIT_REMAINING = Family(
    Gauge(
        "pipeline_external_api_rate_limit_remaining",
        "Requests left in the external API's quota window.",
        ["api"],
    ),
    capped=("api",),
)
COST = Family(
    Counter(
        "pipeline_cost_usd_total",
        "Spend attributed to the pipeline, in US dollars, by resource (compute, storage, api).",
        ["pipeline", "resource"],
    ),
    capped=("pipeline", "resource"),
)


def record_run_started(*, pipeline: str, job: str) -> None:
    RUNS.inc((pipeline, job, "started"))


def record_run(
    *,
    pipeline: str,
    job: str,
    status: str,
    duration_seconds: float,
    records: int = 0,
    record_errors: int = 0,
    finished_at: float | None = None,
) -> None:
    """A finished run: its outcome, duration, record counts, and the last-success time."""
    # Checked once for both families, before anything is recorded: an unfinished status (say
    # "started") is recorded as __overflow__, not as a second start.
    status = closed_value(RUNS.name, "status", str(status), FINISHED_STATUSES)
    RUN_DURATION.observe((pipeline, job, status), duration_seconds, current_exemplar())
    RUNS.inc((pipeline, job, status))
    if records:
        RECORDS.inc((pipeline, job), records)
    if record_errors:
        RECORD_ERRORS.inc((pipeline, job), record_errors)
    if status == "success":
        LAST_SUCCESS.set((pipeline, job), time.time() if finished_at is None else finished_at)


def set_freshness(*, dataset: str, seconds: float) -> None:
    FRESHNESS.set((dataset,), seconds)


def track_freshness(*, dataset: str, loaded_at: float) -> None:
    """Freshness computed at each scrape: now minus `loaded_at` (unix time of the newest data)."""
    loaded = input_errors.number(FRESHNESS.name, loaded_at, "loaded_at")
    if loaded is not None:  # checked now: the function runs at scrape time, where nothing may raise
        FRESHNESS.set_function((dataset,), lambda: time.time() - loaded)


def set_quality(
    *,
    dataset: str,
    completeness: float | None = None,
    consistency: float | None = None,
    validity: float | None = None,
) -> None:
    scores = {"completeness": completeness, "consistency": consistency, "validity": validity}
    # Every score is checked before any is recorded (strict mode raises on the first bad one).
    checked = {
        dimension: input_errors.ratio(QUALITY.name, score, f"{dimension} score")
        for dimension, score in scores.items()
        if score is not None
    }
    for dimension, value in checked.items():
        if value is not None:
            QUALITY.set((dataset, dimension), value)


def record_validation(*, dataset: str, passed: bool, count: int = 1) -> None:
    VALIDATIONS.inc((dataset, "pass" if passed else "fail"), count)


def record_api_call(
    *, api: str, status: int, rate_limit_remaining: float | None = None, count: int = 1
) -> None:
    API_REQUESTS.inc((api, str(status)), count)
    if rate_limit_remaining is not None:
        API_RATE_LIMIT_REMAINING.set((api,), rate_limit_remaining)


def record_cost(*, pipeline: str, resource: str, usd: float) -> None:
    amount = input_errors.number(COST.name, usd, "usd")
    if amount is None:
        return
    if amount < 0:
        detail = f"cost must not be negative, got {usd}"
        input_errors.report(COST.name, input_errors.OUT_OF_RANGE, detail)
        return
    COST.inc((pipeline, resource), amount)
