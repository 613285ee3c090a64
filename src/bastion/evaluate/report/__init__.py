"""Robustness reports: measured data first (a JSON-ready dataclass), rendered second
(Markdown and self-contained HTML with plots)."""

from bastion.evaluate.report.build import build_report
from bastion.evaluate.report.data import (
    CurvePoint,
    ExampleGrid,
    PerClass,
    ReliabilityBins,
    Report,
)
from bastion.evaluate.report.measure import Diagnostics, measure_diagnostics
from bastion.evaluate.report.render import (
    headline_rows,
    load_report,
    render_html,
    render_markdown,
    write_report,
)

__all__ = [
    "CurvePoint",
    "Diagnostics",
    "ExampleGrid",
    "PerClass",
    "ReliabilityBins",
    "Report",
    "build_report",
    "headline_rows",
    "load_report",
    "measure_diagnostics",
    "render_html",
    "render_markdown",
    "write_report",
]
