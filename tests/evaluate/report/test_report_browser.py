"""The HTML report opens in real headless Chromium with no script error, no console message
and every image decoded. CI installs Chromium with ``apt-get install -y chromium``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.evaluate.report import Report, write_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page: Path, profile: Path) -> tuple[str, str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _status(dom: str) -> str | None:
    match = re.search(r'<body[^>]*data-report-status="([a-z]+)"', dom)
    return match.group(1) if match else None


def test_report_renders_without_errors(tiny_report: Report, tmp_path: Path) -> None:
    page = write_report(tiny_report, tmp_path / "r")["html"]
    dom, log = _render(page, tmp_path / "profile")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert _status(dom) == "ready", re.search(r'data-errors="([^"]*)"', dom)
    assert 'data-images="4"' in dom
    assert "Robustness report: tiny:2" in dom


def test_the_check_catches_a_broken_page(tiny_report: Report, tmp_path: Path) -> None:
    page = write_report(tiny_report, tmp_path / "r")["html"]
    html = page.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    html = html.replace("</body>", "<script>undefinedFunction()</script></body>")
    page.write_text(html)
    dom, log = _render(page, tmp_path / "profile")
    assert _status(dom) == "error"
    assert "undefinedFunction" in log
