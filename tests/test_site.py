"""`make site`: lectures run and rendered to static HTML whose every script is served by the site itself.

The builder's pieces are tested on small inputs (pins, checksums, which files of a package are
kept, lecture lookup); then lecture 01 is built in fast mode into a temporary folder and opened
from disk (file://) in headless Chromium: no console errors, no broken image, the explorer's
picture rendered by the widget manager, the maths typeset, and no request leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from headless_browser import browser_or_skip, console_errors, is_local, requested_urls, start_browser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402

LECTURE = "01_causal_convolutions_wavenet"


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_pins_name_the_three_packages_with_sha512():
    pins = {pin.name: pin for pin in build_site.read_pins()}
    assert set(pins) == {build_site.HTML_MANAGER, build_site.REQUIREJS, build_site.MATHJAX}
    for pin in pins.values():
        assert pin.integrity.startswith("sha512-") and len(base64.b64decode(pin.integrity[7:])) == 64
        assert pin.version.count(".") == 2, f"{pin.name}: pin an exact version, not {pin.version}"


def test_a_bad_pin_line_is_a_clear_error(tmp_path):
    bad = tmp_path / "pins.txt"
    bad.write_text("# comment\nrequirejs 2.3.8\n")
    with pytest.raises(build_site.SiteError, match="pins.txt:2: expected 'name version sha512-...'"):
        build_site.read_pins(bad)


def test_unpack_checks_the_checksum_and_keeps_only_what_the_site_loads(tmp_path):
    tarball = _tarball({"package/dist/embed-amd.js": b"// manager", "package/dist/embed.js.map": b"{}",
                        "package/lib/index.js": b"// source", "package/package.json": b"{}"})
    pin = build_site.Pin(build_site.HTML_MANAGER, "1.0.0", _integrity(tarball))
    written = build_site.unpack(pin, tarball, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "@jupyter-widgets/html-manager/dist/embed-amd.js"]

    tampered = tarball[:-1] + bytes([tarball[-1] ^ 1])
    with pytest.raises(build_site.SiteError, match="does not match the pin"):
        build_site.unpack(pin, tampered, tmp_path)


def test_unpack_keeps_mathjax_for_its_configuration_only(tmp_path):
    files = {f"package/{name}": b"x" for name in (
        "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/TeX-AMS_SVG-full.js",
        "extensions/Safe.js", "extensions/a11y/explorer.js", "jax/output/CommonHTML/jax.js",
        "jax/output/SVG/jax.js", "fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff",
        "fonts/HTML-CSS/TeX/otf/MathJax_Main-Regular.otf", "unpacked/MathJax.js")}
    tarball = _tarball(files)
    pin = build_site.Pin(build_site.MATHJAX, "2.7.9", _integrity(tarball))
    kept = sorted(p.relative_to(tmp_path / "mathjax").as_posix() for p in build_site.unpack(pin, tarball, tmp_path))
    assert kept == ["MathJax.js", "config/Safe.js", "config/TeX-AMS_CHTML-full.js", "extensions/Safe.js",
                    "fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff", "jax/output/CommonHTML/jax.js"]


def test_scripts_not_matching_the_pins_are_refused(tmp_path):
    (tmp_path / ".stamp").write_text("requirejs 2.3.7 sha512-old\n")
    with pytest.raises(build_site.SiteError, match="run `make site-deps`"):
        build_site.copy_static(tmp_path / "out", vendored=tmp_path)


def test_lectures_are_found_in_order_and_an_unknown_one_is_named():
    every = build_site.lecture_paths()
    assert [p.name for p in every] == sorted(p.name for p in (ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
    assert build_site.lecture_paths([f"{LECTURE}.ipynb"]) == [ROOT / "lectures" / f"{LECTURE}.ipynb"]
    with pytest.raises(build_site.SiteError, match="no lecture '99_nothing'"):
        build_site.lecture_paths(["99_nothing"])


def test_title_and_summary_come_from_the_first_heading():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("# Causal convolutions\n\nThe *chain rule*, and `WaveNet`:\n\n$$p(x)$$")])
    assert build_site.title_and_summary(nb) == ("Causal convolutions", "The *chain rule*, and `WaveNet`…")
    page = build_site.index_page([("01.html", "Causal <convolutions>", "The chain rule $p(x_1, x_2)$.")])
    assert '<a href="01.html">Causal &lt;convolutions&gt;</a><p>The chain rule $p(x_1, x_2)$.</p>' in page


class _Sources(HTMLParser):
    """Every src/href of script, link, img and iframe tags."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if tag in ("script", "link", "img", "iframe") and name in ("src", "href") and value:
                self.urls.append(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Lecture 01 built in fast mode into a temporary folder (skipped without the vendored scripts)."""
    vendored = build_site.VENDOR
    if not (vendored / ".stamp").is_file():
        pytest.skip(f"the site's scripts are not in {vendored}: run `make site-deps` (needs npm once)")
    out = tmp_path_factory.mktemp("site")
    began = time.monotonic()
    pages = build_site.build(out, [LECTURE], fast=True, vendored=vendored)
    print(f"site built in {time.monotonic() - began:.1f} s")
    return out, pages


def test_every_page_loads_its_scripts_from_the_site(site):
    out, pages = site
    assert [p.name for p in pages] == ["index.html", f"{LECTURE}.html"]
    lecture = (out / f"{LECTURE}.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in lecture, "the widget state is not embedded"
    assert "_static/html-manager/embed-amd.js" in lecture
    for page in pages:
        parser = _Sources()
        parser.feed(page.read_text())
        for url in parser.urls:
            assert not url.startswith(("http:", "https:", "//")), f"{page.name} loads {url} from the network"
            if not url.startswith(("data:", "#")):
                assert (out / url.split("?")[0]).exists(), f"{page.name} refers to {url}, which is not in the site"
    assert f'href="{LECTURE}.html"' in pages[0].read_text(), "the course map does not link the lecture"


def test_the_site_renders_in_a_browser_without_errors(site):
    browser_or_skip()
    from selenium.webdriver.common.by import By

    out, _ = site
    driver = start_browser()
    try:
        driver.get((out / "index.html").as_uri())
        driver.find_element(By.CSS_SELECTOR, f'a[href="{LECTURE}.html"]').click()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not driver.find_elements(By.CSS_SELECTOR, "img.arflow-explorer-image"):
            time.sleep(0.25)
        explorers = driver.find_elements(By.CSS_SELECTOR, "img.arflow-explorer-image")
        assert len(explorers) == 1, "the widget manager did not render the explorer's picture"
        # every image decoded (the explorer's comes from the widget state), the maths typeset by MathJax
        while time.monotonic() < deadline and not driver.execute_script(
                "return Array.from(document.images).every(i => i.complete) && "
                "document.querySelectorAll('.mjx-chtml').length > 0"):
            time.sleep(0.25)
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.naturalWidth, i.src.slice(0, 60)])")
        assert len(images) >= 5, f"only {len(images)} images on the page"
        broken = [src for width, src in images if width == 0]
        assert not broken, f"broken images: {broken}"
        assert driver.execute_script("return arguments[0].naturalWidth", explorers[0]) > 100
        assert driver.execute_script("return document.querySelectorAll('.mjx-chtml').length") > 0, \
            "MathJax typeset nothing"
        errors = console_errors(driver)
        assert not errors, "errors in the browser console:\n" + "\n".join(errors)
        remote = [url for url in requested_urls(driver) if not is_local(url)]
        assert not remote, f"the page asked the network for {remote}"
    finally:
        driver.quit()
