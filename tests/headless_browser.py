"""Headless Chromium for the browser tests: Debian's chromium and chromedriver driven by selenium.

``browser_or_skip()`` says, naming what is missing, why no browser can be had (the tests then
skip); ``start_browser()`` gives a driver that records the console (``goog:loggingPrefs``) and the
network requests (performance log), read back with ``console_errors`` and ``requested_urls``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "run `make system-deps` as root (Debian packages chromium and chromium-driver)"


def missing() -> str | None:
    """What keeps a headless browser from starting here, or None when it can be had."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (make setup installs it)"
    chromium = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    driver = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    absent = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if absent:
        return f"{' and '.join(absent)} not found: {INSTALL}"
    return None


def browser_or_skip():
    """pytest.skip with the reason when no headless browser can be had."""
    import pytest

    reason = missing()
    if reason:
        pytest.skip(f"no headless browser: {reason}")


def start_browser(width: int = 1400, height: int = 1000):
    """A headless Chromium driver with console and network logging; its profile lives in a temp dir.

    The caller quits it (``driver.quit()``), which also ends chromium's processes.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    profile = tempfile.mkdtemp(prefix="arflow-chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", f"--user-data-dir={profile}",
                     "--no-first-run", "--disable-background-networking", "--disable-extensions",
                     "--disable-component-update", "--disable-sync"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    original_quit = driver.quit

    def quit_and_clean():
        try:
            original_quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


def console_errors(driver, allowed: tuple[str, ...] = ()) -> list[str]:
    """The SEVERE console entries since the last call, less those containing an ``allowed`` text."""
    entries = driver.get_log("browser")
    return [entry["message"] for entry in entries
            if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)]


def requested_urls(driver) -> list[str]:
    """Every URL the page asked the network for since the last call (from the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def is_local(url: str) -> bool:
    """True for a URL that stays on this machine (file, data, blob, about, loopback http)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme in ("file", "data", "blob", "about", "chrome", "devtools", ""):
        return True
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname in ("127.0.0.1", "localhost", "::1")
