"""Small builders over grafana-foundation-sdk so each dashboard reads as a list of signals."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import LegendDisplayMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prometheus")
# Where a panel's figures lead next: traces in Jaeger (through Grafana), logs in Kibana.
JAEGER_EXPLORE = (
    '/explore?left={"datasource":"jaeger","queries":[{"refId":"A","queryType":"search"}]}'
)
KIBANA_ERRORS = "http://localhost:5601/app/discover#/view/watchfloor-errors-24h"
KIBANA_BY_CORRELATION = "http://localhost:5601/app/discover#/view/watchfloor-by-correlation-id"


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend or "__auto")
        .ref_id(ref)
        .datasource(PROMETHEUS)
    )
    if "_bucket" in expr:
        target.exemplar(True)  # histograms carry trace_id exemplars: a click opens the trace
    return target


def _targets(
    builder: timeseries.Panel | stat.Panel | heatmap.Panel, exprs: list[tuple[str, str]]
) -> None:
    for index, (expr, legend) in enumerate(exprs):
        builder.with_target(query(expr, legend, chr(ord("A") + index)))


def series(
    title: str,
    unit: str,
    *exprs: tuple[str, str],
    description: str = "",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    links: tuple[tuple[str, str], ...] = (),
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(height)
        .legend(VizLegendOptions().display_mode(LegendDisplayMode.TABLE).show_legend(True))
    )
    if stack:
        panel.fill_opacity(40)
    if links:
        panel.links(
            [
                db.DashboardLink(title)
                .type(model.DashboardLinkType.LINK)
                .url(url)
                .target_blank(True)
                for title, url in links
            ]
        )
    _targets(panel, list(exprs))
    return panel


def single(
    title: str, unit: str, expr: str, *, description: str = "", width: int = 6, height: int = 4
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(height)
    )
    _targets(panel, [(expr, "")])
    return panel


def heat(
    title: str, unit: str, expr: str, *, description: str = "", width: int = 12
) -> heatmap.Panel:
    panel = (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .unit(unit)
    )
    panel.with_target(query(expr, "{{le}}").format(PromQueryFormat.HEATMAP))
    return panel


def variable(name: str, label: str, query_text: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .query(query_text)
        .datasource(PROMETHEUS)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def row(title: str) -> db.Row:
    return db.Row(title)


def base(uid: str, title: str, tags: list[str], refresh: str = "5s") -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(["watchfloor", *tags])
        .refresh(refresh)
        .time("now-1h", "now")
        .timezone("browser")
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("watchfloor")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["watchfloor"])
            .as_dropdown(True)
        )
    )


Built = Builder[model.Dashboard]
