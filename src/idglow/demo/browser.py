"""Open ``report.html`` in headless Chromium (Debian's ``chromium`` package) and read how many images loaded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _run(browser: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--allow-file-access-from-files",
             "--virtual-time-budget=15000"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=timeout)


def check_images(report: str | Path, browser: str | None = None) -> dict[str, int]:
    """Render ``report`` headlessly and return ``{"total", "loaded"}`` as counted by the page's own script.

    Raises:
        FileNotFoundError: no browser found; RuntimeError: the page's check did not run.
    """
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no headless browser found (tried {', '.join(BROWSERS)}); "
                                "install Debian's `chromium` package")
    done = _run(browser, "--dump-dom", Path(report).resolve().as_uri())
    match = re.search(r'id="image-check"[^>]*data-total="(\d+)"[^>]*data-loaded="(\d+)"', done.stdout)
    if not match:
        raise RuntimeError(f"{report}: the image check did not run in {browser} (exit {done.returncode}): {done.stderr[-500:]}")
    return {"total": int(match.group(1)), "loaded": int(match.group(2))}


def screenshot(report: str | Path, png: str | Path, browser: str | None = None, size: str = "1200,4000") -> Path:
    """A full-page-height PNG screenshot of ``report`` (for looking at it)."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no headless browser found; install Debian's `chromium` package")
    _run(browser, f"--screenshot={Path(png).resolve()}", f"--window-size={size}", Path(report).resolve().as_uri())
    return Path(png)
