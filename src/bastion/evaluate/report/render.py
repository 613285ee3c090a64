"""Rendering a :class:`Report` as Markdown (PNG files beside it) and as one self-contained
HTML file (PNG plots inlined as base64, no external resource, no network).

The HTML carries a tiny script that records script errors and broken images and marks the
page ``data-report-status="ready"`` once every image has decoded; the browser test reads
that marker from the rendered DOM.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bastion.errors import EvaluationError
from bastion.evaluate.gate import gate_metrics
from bastion.evaluate.report import plots
from bastion.evaluate.report.data import Report

__all__ = [
    "headline_rows",
    "load_report",
    "per_attack",
    "render_html",
    "render_markdown",
    "write_report",
]


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.2f}%"


def _num(value: Any, digits: int = 4) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def per_attack(evaluation: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(attack, robust accuracy) pairs from an evaluation record's per-attack results."""
    found = evaluation.get("per_attack") or evaluation.get("attacks") or []
    rows: list[tuple[str, float]] = []
    if isinstance(found, Mapping):
        for name, value in found.items():
            acc = (
                value.get("robust_accuracy", value.get("accuracy"))
                if isinstance(value, Mapping)
                else value
            )
            if acc is not None:
                rows.append((str(name), float(acc)))
    else:
        for item in found:
            if isinstance(item, Mapping):
                name = item.get("label") or item.get("name")
                acc = item.get("robust_accuracy")
                if acc is None and item.get("cumulative_accuracy") is not None:
                    acc, name = item["cumulative_accuracy"], f"{name} (cumulative)"
                if acc is not None and name is not None:
                    rows.append((str(name), float(acc)))
    return rows


def headline_rows(
    evaluation: Mapping[str, Any], production: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """(metric, candidate, production) rows of the summary table."""
    cand = gate_metrics(evaluation)
    prod_eval = production.get("evaluation") if production else None
    prod = gate_metrics(prod_eval) if prod_eval else None
    rows = [
        ("clean accuracy", _pct(cand.clean_accuracy), _pct(prod and prod.clean_accuracy)),
        (
            "worst-case robust accuracy",
            _pct(cand.robust_accuracy),
            _pct(prod and prod.robust_accuracy),
        ),
    ]
    prod_attacks = dict(per_attack(prod_eval)) if prod_eval else {}
    for name, acc in per_attack(evaluation):
        rows.append((f"robust accuracy: {name}", _pct(acc), _pct(prod_attacks.get(name))))
    rows.append(
        ("ECE under attack", _num(cand.adversarial_ece), _num(prod and prod.adversarial_ece))
    )
    clean_ece = evaluation.get("ece_clean")
    prod_clean_ece = prod_eval.get("ece_clean") if prod_eval else None
    if clean_ece is not None:
        rows.append(("ECE clean", _num(clean_ece), _num(prod_clean_ece)))
    rows.append(
        (
            "p95 latency (ms/sample)",
            _num(cand.latency_p95_ms, 3),
            _num(prod and prod.latency_p95_ms, 3),
        )
    )
    return rows


def _figures(report: Report) -> list[tuple[str, str, bytes]]:
    """(slug, caption, PNG) for every figure the report has data for."""
    out: list[tuple[str, str, bytes]] = []
    examples = report.examples
    if report.robustness_curve:
        caption = "Robustness curve: accuracy against ε per attack (cheapened attacks)"
        out.append(("robustness_curve", caption, plots.robustness_curve(report.robustness_curve)))
    if report.reliability:
        caption = "Reliability diagram, clean vs worst-case attack"
        out.append(("reliability", caption, plots.reliability_diagram(report.reliability)))
    if report.per_class:
        caption = "Per-class clean and worst-case robust accuracy"
        out.append(("per_class", caption, plots.per_class_chart(report.per_class)))
    if examples is not None and examples.sample_ids:
        caption = (
            "Clean (top) and attacked (bottom) test inputs with predictions (cheapened attacks)"
        )
        out.append(("examples", caption, plots.example_grid(examples)))
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return [*lines, ""]


def _sections(report: Report) -> dict[str, Any]:
    """The tabular content shared by both renderings."""
    gate = report.gate
    verdict = gate["verdict"].upper() if gate else "NOT GATED"
    reasons: list[tuple[str, str]] = []
    if gate:
        for check in sorted(gate["checks"], key=lambda c: c["passed"]):
            reasons.append(("pass" if check["passed"] else "FAIL", check["reason"]))
    attacks = []
    for channel in ("image", "text", "tabular"):
        section = report.threat_model.get(channel)
        for spec in (section or {}).get("attacks", []):
            params = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
            attacks.append((channel, spec.get("label") or spec["name"], spec["name"], params))
    flags = [
        f"{flag.get('code')}: {flag.get('message', '')}" if isinstance(flag, Mapping) else str(flag)
        for flag in report.evaluation.get("flags") or []
    ] or list(gate_metrics(report.evaluation).flags)
    lineage = [
        (
            row.get("name", ""),
            row.get("version", ""),
            row.get("parent_version") or "—",
            str(row.get("artifact_sha256", ""))[:12],
            str(row.get("dataset_fingerprint", ""))[:12],
            row.get("attack_library_version", ""),
            row.get("code_version", ""),
            row.get("created_at", ""),
        )
        for row in report.lineage
    ]
    per_class = [
        (p.label, p.samples, _pct(p.clean_accuracy), _pct(p.robust_accuracy))
        for p in report.per_class
    ]
    return {
        "verdict": verdict,
        "reasons": reasons,
        "attacks": attacks,
        "flags": flags,
        "lineage": lineage,
        "per_class": per_class,
        "headline": headline_rows(report.evaluation, report.production),
    }


_LINEAGE_HEADER = (
    "name",
    "version",
    "parent",
    "artifact sha256",
    "dataset",
    "attack lib",
    "code",
    "created",
)


def render_markdown(report: Report, figure_paths: Mapping[str, str]) -> str:
    """Markdown; figures are linked from ``figure_paths`` (slug -> relative path)."""
    s = _sections(report)
    prod = report.production
    lines = [
        f"# Robustness report: {report.title}",
        "",
        f"Generated {report.created_at}. Gate verdict: **{s['verdict']}**.",
        "",
    ]
    lines += ["## Summary", ""]
    prod_name = prod["model"] if prod else "production"
    lines += _md_table(
        ("metric", report.title, f"{prod_name}" if prod else "production (none)"), s["headline"]
    )
    lines += ["## Gate", "", f"Verdict: **{s['verdict']}**", ""]
    lines += [f"- {mark}: {reason}" for mark, reason in s["reasons"]] or ["- not gated"]
    lines += [
        "",
        "## Threat model",
        "",
        f"`{report.threat_model.get('name', '')}` — fingerprint "
        f"`{str(report.evaluation.get('threat_model_fingerprint', ''))[:16]}`",
        "",
    ]
    lines += _md_table(("channel", "attack", "registry name", "parameters"), s["attacks"])
    lines += ["## Sanity flags", ""]
    lines += [f"- {f}" for f in s["flags"]] or ["none raised"]
    lines += [
        "",
        "## Figures",
        "",
        f"Diagnostics measured on the first {report.diagnostics_samples} test points.",
        "",
    ]
    for slug, path in figure_paths.items():
        lines += [f"![{slug}]({path})", ""]
    if s["per_class"]:
        lines += ["## Per-class accuracy", ""]
        lines += _md_table(("class", "samples", "clean", "worst-case robust"), s["per_class"])
    if report.calibration:
        lines += ["## Calibration", ""]
        lines += _md_table(("field", "value"), sorted(report.calibration.items()))
    lines += ["## Lineage", ""]
    lines += _md_table(_LINEAGE_HEADER, s["lineage"]) if s["lineage"] else ["unknown", ""]
    lines += ["## Dataset", ""]
    lines += _md_table(("field", "value"), sorted(report.dataset.items()))
    return "\n".join(lines)


_SCRIPT = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || (e.target && e.target.src) || 'error'));
}, true);
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  images.forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { window.__reportErrors.push('broken image'); }
  });
  var body = document.body;
  body.setAttribute('data-images', String(images.length));
  body.setAttribute('data-errors', window.__reportErrors.join(' | '));
  body.setAttribute('data-report-status', window.__reportErrors.length ? 'error' : 'ready');
});
"""

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
th{background:#f3f3f3}.pass{color:#176f2c}.fail{color:#b00020;font-weight:bold}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:white}
.verdict.PASS{background:#176f2c}.verdict.FAIL{background:#b00020}
.verdict.NOT{background:#777}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:13px;color:#555}
"""


def _h_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, figures: Sequence[tuple[str, str, bytes]]) -> str:
    """One self-contained HTML page with the figures inlined."""
    s = _sections(report)
    e = html.escape
    verdict = s["verdict"]
    prod = report.production
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Bastion report {e(report.title)}</title>",
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head>",
        '<body data-report-status="loading">',
        f"<h1>Robustness report: {e(report.title)}</h1>",
        f"<p>Generated {e(report.created_at)}. Gate verdict: "
        f'<span class="verdict {e(verdict.split()[0])}">{e(verdict)}</span></p>',
        "<h2>Summary</h2>",
        _h_table(
            ("metric", report.title, prod["model"] if prod else "production (none)"), s["headline"]
        ),
        "<h2>Gate</h2><ul>",
    ]
    if s["reasons"]:
        for mark, reason in s["reasons"]:
            css = "pass" if mark == "pass" else "fail"
            parts.append(f'<li class="{css}">{e(mark)}: {e(reason)}</li>')
    else:
        parts.append("<li>not gated</li>")
    parts.append("</ul><h2>Threat model</h2>")
    parts.append(f"<p><code>{e(str(report.threat_model.get('name', '')))}</code></p>")
    parts.append(_h_table(("channel", "attack", "registry name", "parameters"), s["attacks"]))
    parts.append("<h2>Sanity flags</h2>")
    parts.append(
        "<ul>" + "".join(f'<li class="fail">{e(f)}</li>' for f in s["flags"]) + "</ul>"
        if s["flags"]
        else "<p>none raised</p>"
    )
    parts.append("<h2>Figures</h2>")
    parts.append(
        f"<p>Diagnostics measured on the first {report.diagnostics_samples} test "
        "points with the threat model's attacks.</p>"
    )
    for slug, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="fig-{e(slug)}"><img alt="{e(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{e(caption)}</figcaption></figure>'
        )
    if s["per_class"]:
        parts.append("<h2>Per-class accuracy</h2>")
        parts.append(_h_table(("class", "samples", "clean", "worst-case robust"), s["per_class"]))
    if report.calibration:
        parts.append("<h2>Calibration</h2>")
        parts.append(_h_table(("field", "value"), sorted(report.calibration.items())))
    parts.append("<h2>Lineage</h2>")
    parts.append(_h_table(_LINEAGE_HEADER, s["lineage"]) if s["lineage"] else "<p>unknown</p>")
    parts.append("<h2>Dataset</h2>")
    parts.append(_h_table(("field", "value"), sorted(report.dataset.items())))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Report, folder: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (+ PNGs) and ``report.html`` into ``folder``.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        figures = _figures(report)
        paths: dict[str, Path] = {}
        figure_paths: dict[str, str] = {}
        for slug, _caption, png in figures:
            path = folder / f"{slug}.png"
            _atomic_write(path, png)
            figure_paths[slug] = path.name
        paths["json"] = folder / "report.json"
        _atomic_write(paths["json"], report.to_json().encode())
        paths["markdown"] = folder / "report.md"
        _atomic_write(paths["markdown"], render_markdown(report, figure_paths).encode())
        paths["html"] = folder / "report.html"
        _atomic_write(paths["html"], render_html(report, figures).encode())
    except OSError as exc:
        raise EvaluationError(f"cannot write the report into {folder}: {exc}") from exc
    return paths


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_report(path: Path) -> Report:
    """Read a ``report.json`` back."""
    try:
        return Report.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise EvaluationError(f"{path}: not a readable Bastion report: {exc}") from exc
