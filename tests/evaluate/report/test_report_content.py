"""Report content: data first, and both renderings carry every section from that data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from bastion.evaluate.report import Report, load_report, write_report


def test_report_is_data_that_round_trips(tiny_report: Report) -> None:
    again = Report.from_dict(json.loads(tiny_report.to_json()))
    assert again == tiny_report


def test_curve_starts_at_clean_accuracy_and_covers_each_attack(tiny_report: Report) -> None:
    curve = tiny_report.robustness_curve
    assert {p.attack for p in curve} == {"fgsm", "pgd"}
    for name in ("fgsm", "pgd"):
        series = sorted((p for p in curve if p.attack == name), key=lambda p: p.eps)
        assert series[0].eps == 0.0
        assert series[0].accuracy == 1.0  # labels are the model's own predictions
        assert abs(series[-1].eps - 0.2) < 1e-9
        assert len(series) == 5


def test_examples_show_clean_and_attacked_inputs(tiny_report: Report) -> None:
    grid = tiny_report.examples
    assert grid is not None
    assert 0 < len(grid.sample_ids) <= 8
    assert all(100 <= i < 110 for i in grid.sample_ids)
    flipped = [
        p != label for p, label in zip(grid.adversarial_predictions, grid.labels, strict=True)
    ]
    # a linear model at eps 0.2 on 8x8 inputs breaks; the grid shows broken points first
    assert flipped[0]
    assert grid.attacks[0] in {"fgsm", "pgd"}


def test_markdown_and_html_have_every_section(tiny_report: Report, tmp_path: Path) -> None:
    paths = write_report(tiny_report, tmp_path / "r")
    md = paths["markdown"].read_text()
    page = paths["html"].read_text()
    for text in (md, page):
        for heading in (
            "Summary",
            "Gate",
            "Threat model",
            "Sanity flags",
            "Figures",
            "Per-class accuracy",
            "Calibration",
            "Lineage",
            "Dataset",
        ):
            assert heading in text
        assert "tiny:1" in text  # the production comparison column
        assert "black_box_stronger" in text
        assert "90.00%" in text
        assert "95.00%" in text
    # markdown links its PNGs, HTML inlines them (4 figures), nothing external
    for slug in ("robustness_curve", "reliability", "per_class", "examples"):
        assert (tmp_path / "r" / f"{slug}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"]({slug}.png)" in md
    inlined = page.split('src="data:image/png;base64,')[1:]
    assert len(inlined) == 4
    assert base64.b64decode(inlined[0].split('"')[0])[:4] == b"\x89PNG"
    assert "http://" not in page
    assert "https://" not in page
    # user-supplied text is escaped
    assert "<drop>" not in page
    assert "&lt;drop&gt;" in page
    assert load_report(paths["json"]) == tiny_report
