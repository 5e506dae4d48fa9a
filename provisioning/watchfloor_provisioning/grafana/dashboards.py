"""The watchfloor dashboards (seed 003's layouts), one function each, signal by signal.

Units are set on every panel; real-time dashboards refresh every 5 s. Alert annotations link here
by uid (`/d/<uid>`), so uids never change.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from watchfloor_provisioning.grafana.panels import (
    JAEGER_EXPLORE,
    KIBANA_BY_CORRELATION,
    KIBANA_ERRORS,
    base,
    heat,
    row,
    series,
    single,
    variable,
)

TRADING = 'strategy=~"$strategy",symbol=~"$symbol"'
VENUE = 'venue=~"$venue"'
BPS = "suffix: bps"
RATE = "$__rate_interval"


def _trading_variables(dashboard: db.Dashboard, venue: bool = True) -> db.Dashboard:
    dashboard.with_variable(
        variable("strategy", "Strategy", "label_values(trading_orders_total, strategy)")
    )
    dashboard.with_variable(
        variable("symbol", "Symbol", "label_values(trading_orders_total, symbol)")
    )
    if venue:
        dashboard.with_variable(
            variable("venue", "Venue", "label_values(trading_orders_total, venue)")
        )
    return dashboard


def trading_operations() -> db.Dashboard:
    sel = f"{TRADING},{VENUE}"
    latency = "trading_order_execution_duration_seconds_bucket"
    dashboard = _trading_variables(base("watchfloor-trading", "Trading Operations", ["trading"]))
    return (
        dashboard.with_row(row("Orders"))
        .with_panel(series(
            "Order execution latency", "s",
            *[(f"histogram_quantile({q}, sum by (le) (rate({latency}{{{sel}}}[{RATE}])))", f"p{int(q * 100)}")
              for q in (0.5, 0.95, 0.99)],
            description="Submit to final fill. Exemplars link to the order's trace in Jaeger.",
            links=(("Order traces in Jaeger", JAEGER_EXPLORE), ("Logs by correlation id", KIBANA_BY_CORRELATION)),
        ))
        .with_panel(series(
            "Orders by status", "ops",
            (f"sum by (status) (rate(trading_orders_total{{{sel}}}[{RATE}]))", "{{status}}"),
        ))
        .with_panel(series(
            "Fills by strategy", "ops",
            (f"sum by (strategy) (rate(trading_fills_total{{{sel}}}[{RATE}]))", "{{strategy}}"),
        ))
        .with_panel(series(
            "Fill ratio", "percentunit",
            (f"trading_fill_ratio{{{TRADING}}}", "{{strategy}} {{symbol}}"),
            ("watchfloor:threshold:fill_ratio_min", "alert threshold"),
        ))
        .with_panel(series(
            "Rejections by reason", "ops",
            (f'sum by (reason) (rate(trading_order_rejections_total{{strategy=~"$strategy",{VENUE}}}[{RATE}]))', "{{reason}}"),
            links=(("Errors in Kibana", KIBANA_ERRORS),),
        ))
        .with_row(row("Execution quality"))
        .with_panel(heat(
            "Slippage against arrival (heatmap)", BPS,
            f"sum by (le) (rate(trading_slippage_bps_bucket{{{TRADING}}}[{RATE}]))",
            description="Positive is a cost: bought above or sold below the arrival price.",
        ))
        .with_panel(series(
            "Slippage p95 by strategy", BPS,
            ('strategy:trading_slippage_bps:p95_10m{strategy=~"$strategy"}', "{{strategy}}"),
            ("watchfloor:threshold:slippage_p95_bps", "alert threshold"),
        ))
        .with_panel(series(
            "P&L by strategy", "currencyUSD",
            ('sum by (strategy) (trading_strategy_pnl{strategy=~"$strategy",currency="USD"})', "{{strategy}}"),
        ))
        .with_row(row("Market data and broker"))
        .with_panel(series(
            "Market-data latency p99 by feed", "s",
            ("feed:trading_market_data_latency_seconds:p99_5m", "{{feed}}"),
            ("watchfloor:threshold:market_data_latency_p99_seconds", "alert threshold"),
        ))
        .with_panel(series(
            "Market-data updates", "ops",
            (f'sum by (feed) (rate(trading_market_data_updates_total{{symbol=~"$symbol"}}[{RATE}]))', "{{feed}}"),
        ))
        .with_panel(series(
            "Broker quota left", "percentunit",
            ("broker_endpoint:trading_broker_rate_limit:remaining_ratio", "{{broker}} {{endpoint}}"),
        ))
        .with_panel(series(
            "Broker requests by status", "reqps",
            (f"sum by (status) (rate(trading_broker_requests_total[{RATE}]))", "{{status}}"),
        ))
    )  # fmt: skip


def risk() -> db.Dashboard:
    dashboard = base("watchfloor-risk", "Risk", ["trading", "risk"])
    dashboard.with_variable(
        variable("strategy", "Strategy", "label_values(trading_strategy_pnl, strategy)")
    )
    return (
        dashboard.with_panel(series(
            "Exposure by currency", "short",
            ('trading_exposure{kind="gross"}', "gross {{currency}}"),
            ('trading_exposure{kind="net"}', "net {{currency}}"),
        ))
        .with_panel(series(
            "Drawdown from peak equity", "percentunit",
            ('trading_strategy_drawdown_ratio{strategy=~"$strategy"}', "{{strategy}}"),
            ("watchfloor:threshold:drawdown_warning_ratio", "warning"),
            ("watchfloor:threshold:drawdown_critical_ratio", "critical"),
        ))
        .with_panel(series(
            "Risk violations (5 min)", "short",
            ('sum by (rule, severity) (increase(trading_risk_violations_total{strategy=~"$strategy"}[5m]))', "{{rule}} {{severity}}"),
        ))
        .with_panel(series(
            "Limit utilisation", "percentunit",
            ('trading_risk_limit_utilisation_ratio{strategy=~"$strategy"}', "{{strategy}} {{rule}}"),
        ))
        .with_panel(series(
            "Realized and unrealized P&L", "currencyUSD",
            ('trading_strategy_pnl{strategy=~"$strategy",currency="USD"}', "{{strategy}} {{kind}}"),
        ))
        .with_panel(series(
            "Win ratio", "percentunit",
            ('trading_strategy_win_ratio{strategy=~"$strategy"}', "{{strategy}}"),
        ))
    )  # fmt: skip


def executive() -> db.Dashboard:
    return (
        base("watchfloor-executive", "Executive", ["trading", "executive"], refresh="30s")
        .with_panel(single("Total P&L (USD)", "currencyUSD", 'sum(trading_strategy_pnl{currency="USD"})'))
        .with_panel(single("Volume filled (1 h)", "short", "sum(increase(trading_filled_quantity_total[1h]))"))
        .with_panel(single("Order availability (1 h)", "percentunit", "1 - slo:order_availability:error_ratio_rate1h"))
        .with_panel(single("Orders filled within 100 ms (1 h)", "percentunit", "1 - slo:order_latency:error_ratio_rate1h"))
        .with_panel(series(
            "P&L trend by strategy", "currencyUSD",
            ('sum by (strategy) (trading_strategy_pnl{currency="USD"})', "{{strategy}}"),
        ))
        .with_panel(series(
            "Top 5 strategies by P&L", "currencyUSD",
            ('topk(5, sum by (strategy) (trading_strategy_pnl{currency="USD"}))', "{{strategy}}"),
        ))
        .with_panel(series(
            "Traded volume", "short",
            (f"sum by (strategy) (rate(trading_filled_quantity_total[{RATE}]))", "{{strategy}}"),
        ))
    )  # fmt: skip


def pipelines() -> db.Dashboard:
    dashboard = base("watchfloor-pipelines", "Pipelines", ["pipelines"], refresh="30s")
    dashboard.with_variable(
        variable("pipeline", "Pipeline", "label_values(pipeline_runs_total, pipeline)")
    )
    dashboard.with_variable(
        variable("dataset", "Dataset", "label_values(pipeline_data_quality_score, dataset)")
    )
    sel = 'pipeline=~"$pipeline"'
    return (
        dashboard.with_panel(series(
            "Runs by status (1 h)", "short",
            (f"sum by (pipeline, status) (increase(pipeline_runs_total{{{sel}}}[1h]))", "{{pipeline}} {{status}}"),
            links=(("Failed runs' logs in Kibana", KIBANA_ERRORS),),
        ))
        .with_panel(series(
            "Run duration p95", "s",
            (f"histogram_quantile(0.95, sum by (pipeline, le) (rate(pipeline_run_duration_seconds_bucket{{{sel}}}[1h])))", "{{pipeline}}"),
        ))
        .with_panel(series(
            "Time since last success", "s",
            (f"time() - max by (pipeline, pipeline_job) (pipeline_last_success_timestamp_seconds{{{sel}}})", "{{pipeline}}/{{pipeline_job}}"),
        ))
        .with_panel(series(
            "Data freshness", "s",
            ('pipeline_data_freshness_seconds{dataset=~"$dataset"}', "{{dataset}}"),
            ("watchfloor:threshold:data_freshness_seconds", "alert threshold"),
        ))
        .with_panel(series(
            "Quality scores", "percentunit",
            ('pipeline_data_quality_score{dataset=~"$dataset"}', "{{dataset}} {{dimension}}"),
        ))
        .with_panel(series(
            "Validation pass rate (1 h)", "percentunit",
            ('dataset:pipeline_validation_checks:pass_ratio_1h{dataset=~"$dataset"}', "{{dataset}}"),
        ))
        .with_panel(series(
            "External API requests by status", "reqps",
            (f"sum by (api, status) (rate(pipeline_external_api_requests_total[{RATE}]))", "{{api}} {{status}}"),
        ))
        .with_panel(series(
            "External API quota left", "short",
            ("pipeline_external_api_rate_limit_remaining", "{{api}}"),
        ))
        .with_panel(series(
            "Cost (24 h)", "currencyUSD",
            (f"pipeline:pipeline_cost_usd:increase_24h{{{sel}}}", "{{pipeline}}"),
        ))
        .with_panel(series(
            "Records processed", "short",
            (f"sum by (pipeline) (rate(pipeline_records_processed_total{{{sel}}}[{RATE}]))", "{{pipeline}}"),
        ))
    )  # fmt: skip


def operations() -> db.Dashboard:
    dashboard = base("watchfloor-operations", "Operations", ["platform"], refresh="30s")
    dashboard.with_variable(variable("instance", "Host", "label_values(node_uname_info, instance)"))
    dashboard.with_variable(
        # The scrape target's label (services/*.yml): every service has it, HTTP or not.
        variable("service", "Service", "label_values(up, service)")
    )
    host = 'instance=~"$instance"'
    svc = 'service=~"$service"'
    fs = f'{host},fstype!~"tmpfs|ramfs|overlay|squashfs"'
    return (
        dashboard.with_row(row("Hosts"))
        .with_panel(series(
            "CPU busy", "percentunit",
            (f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle",{host}}}[{RATE}]))', "{{instance}}"),
        ))
        .with_panel(series(
            "Memory available", "percentunit",
            (f"node_memory_MemAvailable_bytes{{{host}}} / node_memory_MemTotal_bytes{{{host}}}", "{{instance}}"),
        ))
        .with_panel(series(
            "Disk free", "percentunit",
            (f"node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}}", "{{instance}} {{mountpoint}}"),
        ))
        .with_panel(series(
            "Clock offset", "s",
            (f"node_timex_offset_seconds{{{host}}}", "{{instance}}"),
            ("watchfloor:threshold:host_clock_offset_seconds", "alert threshold"),
            ("-watchfloor:threshold:host_clock_offset_seconds", "alert threshold (behind)"),
            description="Offset from the time source the kernel last measured (ntpd, systemd-timesyncd; chrony: read `chronyc tracking`). HostClockSkewDetected fires past the threshold when it is not shrinking.",
            width=6,
        ))
        .with_panel(series(
            "Clock error bound", "s",
            (f"node_timex_maxerror_seconds{{{host}}}", "{{instance}}"),
            ("watchfloor:threshold:host_clock_maxerror_seconds", "alert threshold"),
            description="The kernel's bound on the clock's error: it grows by 0.5 ms a second while nothing synchronises the clock, up to 16 s. HostClockNotSynchronising fires when a host is unsynchronised (node_timex_sync_status 0) and this is past the threshold.",
            width=6,
        ))
        .with_row(row("Services (RED)"))
        .with_panel(series(
            "Requests by service and route", "reqps",
            (f"sum by (service, route) (rate(http_server_requests_total{{{svc}}}[{RATE}]))", "{{service}} {{route}}"),
            description="Requests a second of the services instrumented with instrument_app, by route template. `service` is the scrape target's label (infrastructure/prometheus/targets/services.example.yml); the metrics carry none of their own.",
        ))
        .with_panel(series(
            "Error ratio by service", "percentunit",
            (f'sum by (service) (rate(http_server_requests_total{{status=~"5..",{svc}}}[{RATE}])) / sum by (service) (rate(http_server_requests_total{{{svc}}}[{RATE}])) or sum by (service) (rate(http_server_requests_total{{{svc}}}[{RATE}])) * 0', "{{service}}"),
            links=(("Errors in Kibana", KIBANA_ERRORS), ("Traces in Jaeger", JAEGER_EXPLORE)),
        ))
        .with_panel(series(
            "Request duration p95 by service", "s",
            (f"histogram_quantile(0.95, sum by (service, le) (rate(http_server_request_duration_seconds_bucket{{{svc}}}[{RATE}])))", "{{service}}"),
        ))
        .with_panel(series(
            "Log events by level", "ops",
            (f"sum by (job, service, level) (rate(watchfloor_log_events_total{{{svc}}}[{RATE}]))", "{{job}} {{service}} {{level}}"),
            ("watchfloor:threshold:log_error_events_per_second", "error alert threshold"),
            description="Log events a second each service writes, by level, as the library counts them (no Elasticsearch needed). ServiceErrorLogBurst fires when error and critical together stay above the threshold for 5 minutes; ServiceCriticalLogEvents on any critical event.",
            links=(("Errors in Kibana", KIBANA_ERRORS),),
        ))
        .with_row(row("Containers (cAdvisor)"))
        .with_panel(series(
            "Container CPU", "percentunit",
            (f'sum by (container_label_com_docker_compose_service) (rate(container_cpu_usage_seconds_total{{container_label_com_docker_compose_service!=""}}[{RATE}]))', "{{container_label_com_docker_compose_service}}"),
            description="CPU time per second of each Compose service's container: 1 is one full core.",
        ))
        .with_panel(series(
            "Container memory against limit", "percentunit",
            ('max by (container_label_com_docker_compose_service) (container_memory_rss{container_label_com_docker_compose_service!=""}) / max by (container_label_com_docker_compose_service) (container_spec_memory_limit_bytes{container_label_com_docker_compose_service!=""} > 0)', "{{container_label_com_docker_compose_service}}"),
            ("watchfloor:threshold:container_memory_used_ratio", "alert threshold"),
            description="Resident memory over the Compose mem_limit; at 100% the kernel kills the container (exit 137). ContainerMemoryNearLimit fires past the threshold.",
        ))
        .with_row(row("Elasticsearch"))
        .with_panel(series(
            "Cluster health", "short",
            ("max by (color) (elasticsearch_cluster_health_status) == 1", "{{color}}"),
        ))
        .with_panel(series(
            "Heap used", "percentunit",
            ('elasticsearch_jvm_memory_used_bytes{area="heap"} / elasticsearch_jvm_memory_max_bytes{area="heap"}', "{{name}}"),
        ))
    )  # fmt: skip


def slos() -> db.Dashboard:
    dashboard = base("watchfloor-slo", "SLOs", ["slo"], refresh="30s")
    for slo, title in (
        ("order_availability", "Order availability"),
        ("order_latency", "Order latency"),
    ):
        budget = f"slo:{slo}:error_budget"
        dashboard.with_row(row(title))
        dashboard.with_panel(
            single(
                f"{title}: error budget left (1 d)",
                "percentunit",
                f"1 - slo:{slo}:error_ratio_rate1d / on() {budget}",
                width=6,
            )
        )
        dashboard.with_panel(series(
            f"{title}: burn rate", "short",
            *[(f"slo:{slo}:error_ratio_rate{w} / on() {budget}", w) for w in ("5m", "1h", "6h", "1d")],
            description="1 = spending the budget exactly over the period; 14.4 over 1 h pages.",
            width=18,
        ))  # fmt: skip
    return dashboard


def meta() -> db.Dashboard:
    return (
        base("watchfloor-meta", "Meta-monitoring", ["platform", "meta"], refresh="30s")
        .with_panel(series("Scrape targets up", "short", ("sum by (job) (up)", "{{job}}")))
        .with_panel(series("Scrape duration", "s", ("max by (job) (scrape_duration_seconds)", "{{job}}")))
        .with_panel(series(
            "Rule evaluation failures", "short",
            (f"sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total[{RATE}]))", "{{rule_group}}"),
        ))
        .with_panel(series(
            "Alerts sent to Alertmanager", "ops",
            (f"sum by (alertmanager) (rate(prometheus_notifications_sent_total[{RATE}]))", "{{alertmanager}}"),
        ))
        .with_panel(series(
            "Alertmanager notifications by integration", "ops",
            (f"sum by (integration) (rate(alertmanager_notifications_total[{RATE}]))", "{{integration}}"),
        ))
        .with_panel(series(
            "Log shipper queue", "short",
            ("sum by (job) (watchfloor_log_events_queued)", "{{job}}"),
        ))
        .with_panel(series(
            "Log events dropped", "short",
            ("sum by (job, reason) (increase(watchfloor_log_events_dropped_total[5m]))", "{{job}} {{reason}}"),
        ))
        .with_panel(series(
            "Label cardinality overflow", "short",
            ("sum by (job, metric) (increase(watchfloor_label_overflow_total[5m])) or vector(0)", "{{job}} {{metric}}"),
        ))
        .with_panel(series(
            "Logstash events out", "ops",
            (f"sum by (pipeline) (rate(logstash_stats_pipeline_events_out[{RATE}]))", "{{pipeline}}"),
        ))
        .with_panel(series(
            "Logstash dead-letter queue", "bytes",
            ("sum by (pipeline) (logstash_stats_pipeline_dead_letter_queue_size_in_bytes)", "{{pipeline}} size"),
            ("sum by (pipeline) (logstash_stats_pipeline_dead_letter_queue_max_size_in_bytes)", "{{pipeline}} max (refused events dropped beyond)"),
            description="Events Elasticsearch refused (400/404: mapping conflicts, bad fields), kept by Logstash. LogstashEventsRejected fires when it grows, LogstashDeadLetterQueueFull when it drops events.",
            width=6,
        ))
        .with_panel(series(
            "Logstash duplicates skipped (409)", "short",
            ("sum by (pipeline) (increase(logstash_stats_pipeline_plugin_documents_non_retryable_failures[5m]))", "{{pipeline}}"),
            description="Events whose event.id Elasticsearch already stores, e.g. replayed after a restart: deduplicated as designed, nothing lost.",
            width=6,
        ))
    )  # fmt: skip


# (folder, builder): one Grafana provider per folder.
DASHBOARDS = [
    ("trading", trading_operations),
    ("trading", risk),
    ("trading", executive),
    ("pipelines", pipelines),
    ("platform", operations),
    ("platform", slos),
    ("platform", meta),
]
