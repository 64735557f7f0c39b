"""The course as a static site (`make site`): every lecture run and rendered with its outputs.

Each lecture is executed with nbclient, which stores the widget state in the notebook
(``store_widget_state=True``), and exported with nbconvert's HTMLExporter, which embeds that
state, so every explorer shows the picture it had at the end of the run. Every script a page
loads is served from the site itself (``_static/``), never from a CDN:

the widget manager (``embed-amd.js`` of ``@jupyter-widgets/html-manager``), ``require.js`` and
MathJax 2 (the configuration nbconvert's pages ask for: ``TeX-AMS_CHTML-full,Safe``), npm packages
pinned with their sha512 integrity in ``requirements/site-js.txt``, fetched once by ``vendor``
(``make site-deps``) into ``build/site-js/`` and checked before use. Building and testing the site
needs no network.

Usage::

    python scripts/build_site.py vendor                 # once; `make site-deps`
    python scripts/build_site.py build --out site       # `make site`; --fast for ARFLOW_FAST=1
    python scripts/build_site.py build --out /tmp/s --lectures 01_causal_convolutions_wavenet
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
PINS = ROOT / "requirements" / "site-js.txt"
VENDOR = ROOT / "build" / "site-js"
TEMPLATES = Path(__file__).resolve().with_name("site_templates")
COURSE_TITLE = "Autoregressive and flow-based generative models"

# Where each vendored package's files land under _static/, and which files of its tarball go there.
HTML_MANAGER = "@jupyter-widgets/html-manager"
REQUIREJS = "requirejs"
MATHJAX = "mathjax"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"  # nbconvert's default (CommonHTML output, TeX fonts)
MATHJAX_CONFIG_FILES = {f"config/{name}.js" for name in MATHJAX_CONFIG.split(",")}
STATIC_URLS = {
    "widget_renderer_url": "_static/html-manager/embed-amd.js",
    "require_js_url": "_static/require.js",
    "mathjax_url": f"_static/mathjax/MathJax.js?config={MATHJAX_CONFIG}",
}


class SiteError(RuntimeError):
    """A clear reason why the site cannot be built (missing script, bad pin, failed lecture)."""


@dataclass(frozen=True)
class Pin:
    """One npm package the site serves: ``name@version`` whose tarball has sha512 ``integrity``."""

    name: str
    version: str
    integrity: str

    @property
    def folder(self) -> Path:
        """Where its files are unpacked under ``build/site-js/``."""
        return Path(*self.name.split("/"))


def read_pins(path: Path = PINS) -> list[Pin]:
    """The pinned npm packages of ``requirements/site-js.txt`` (``name version sha512-...`` a line)."""
    pins = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("sha512-"):
            raise SiteError(f"{path}:{number}: expected 'name version sha512-...', got {line!r}")
        pins.append(Pin(*parts))
    return pins


def check_integrity(data: bytes, integrity: str, what: str = "tarball") -> None:
    """Raise SiteError unless ``data`` has the npm integrity string ``sha512-<base64>``."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512" or not expected:
        raise SiteError(f"{what}: unsupported integrity {integrity!r} (expected sha512-<base64>)")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise SiteError(f"{what}: sha512 {actual} does not match the pin {expected}; not using it")


def _wanted(pin: Pin, member: str) -> str | None:
    """The path under the package folder that a tarball member goes to, or None to leave it."""
    if not member.startswith("package/"):
        return None
    relative = member[len("package/"):]
    if pin.name == HTML_MANAGER:
        keep = relative.startswith("dist/") and not relative.endswith(".map")
    elif pin.name == REQUIREJS:
        keep = relative == "require.js"
    elif pin.name == MATHJAX:  # what that configuration loads: 14 of the package's 70 MB
        top = relative.split("/", 1)[0]
        keep = (relative in ("MathJax.js", "LICENSE") or relative in MATHJAX_CONFIG_FILES
                or (top == "extensions" and not relative.startswith("extensions/a11y/"))
                or (top == "jax" and not relative.startswith(("jax/output/HTML-CSS/", "jax/output/SVG/")))
                or relative.startswith("fonts/HTML-CSS/TeX/woff/"))
    else:
        keep = True
    return relative if keep else None


def unpack(pin: Pin, tarball: bytes, dest: Path) -> list[Path]:
    """Check ``tarball`` against the pin and unpack the files the site needs into ``dest/<name>``."""
    check_integrity(tarball, pin.integrity, f"{pin.name}@{pin.version}")
    target = dest / pin.folder
    shutil.rmtree(target, ignore_errors=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "package.tgz"
        archive.write_bytes(tarball)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                relative = _wanted(pin, member.name) if member.isfile() else None
                if relative is None or ".." in Path(relative).parts:
                    continue
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
                written.append(path)
    if not written:
        raise SiteError(f"{pin.name}@{pin.version}: the tarball holds none of the files the site needs")
    return written


def vendor(dest: Path = VENDOR, pins: list[Pin] | None = None, npm: str = "npm") -> Path:
    """Fetch each pinned npm package with ``npm pack``, check its sha512, unpack it into ``dest``.

    Writes ``dest/.stamp`` when every package is in place; returns ``dest``.
    """
    pins = read_pins() if pins is None else pins
    if shutil.which(npm) is None:
        raise SiteError(f"`{npm}` not found: install Node.js and npm (Debian: apt-get install npm) to fetch "
                        + ", ".join(f"{p.name}@{p.version}" for p in pins))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for pin in pins:
        with tempfile.TemporaryDirectory() as tmp:
            spec = f"{pin.name}@{pin.version}"
            run = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, cwd=tmp)
            tarballs = list(Path(tmp).glob("*.tgz"))
            if run.returncode != 0 or len(tarballs) != 1:
                raise SiteError(f"npm pack {spec} failed: {run.stderr.strip()[-500:]}")
            files = unpack(pin, tarballs[0].read_bytes(), dest)
            print(f"{spec}: sha512 checked, {len(files)} files in {dest / pin.folder}")
    (dest / ".stamp").write_text("".join(f"{p.name} {p.version} {p.integrity}\n" for p in pins))
    return dest


def copy_static(out: Path, vendored: Path = VENDOR) -> Path:
    """Put the site's scripts into ``out/_static``: widget manager, require.js, MathJax."""
    pins = {pin.name: pin for pin in read_pins()}
    stamp = vendored / ".stamp"
    wanted = "".join(f"{p.name} {p.version} {p.integrity}\n" for p in pins.values())
    if not stamp.is_file() or stamp.read_text() != wanted:
        raise SiteError(f"the scripts in {vendored} are missing or not those pinned in {PINS.name}: "
                        "run `make site-deps` (python scripts/build_site.py vendor)")
    manager = vendored / pins[HTML_MANAGER].folder / "dist"
    require = vendored / pins[REQUIREJS].folder / "require.js"
    mathjax = vendored / pins[MATHJAX].folder
    for needed in (manager / "embed-amd.js", require, mathjax / "MathJax.js"):
        if not needed.is_file():
            raise SiteError(f"{needed} is missing: run `make site-deps` (python scripts/build_site.py vendor) first")
    static = out / "_static"
    shutil.rmtree(static, ignore_errors=True)
    shutil.copytree(manager, static / "html-manager")
    shutil.copy2(require, static / "require.js")
    shutil.copytree(mathjax, static / "mathjax")
    return static


def lecture_paths(names: list[str] | None = None, folder: Path = LECTURES) -> list[Path]:
    """Every lecture notebook in order, or those named (stem or file name, e.g. ``01_causal...``)."""
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    by_name = {path.stem: path for path in every}
    chosen = []
    for name in names:
        stem = Path(name).stem
        if stem not in by_name:
            raise SiteError(f"no lecture {name!r} in {folder}; there are: {', '.join(by_name)}")
        chosen.append(by_name[stem])
    return chosen


def title_and_summary(nb) -> tuple[str, str]:
    """The lecture's first ``# heading`` and the first paragraph after it (markdown, maths kept)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if lines and lines[0].startswith("# "):
            title = lines[0][2:].strip()
            paragraph = []
            for line in lines[1:]:
                if not line.strip():
                    if paragraph:
                        break
                    continue
                paragraph.append(line.strip())
            summary = " ".join(paragraph)
            # a paragraph that leads into a formula or a list ends with a colon: say it goes on
            return title, (summary[:-1] + "…" if summary.endswith(":") else summary)
    return "", ""


def execute(path: Path, timeout: int = 1200):
    """Run the notebook at ``path`` in its folder; the returned notebook keeps the widget state."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        raise SiteError(f"{path.name} failed while running:\n{error}") from error
    return nb


def render(nb, nav: dict) -> str:
    """The executed notebook as one HTML page (lab style) whose scripts all live in ``_static/``.

    ``nav``: ``{"prev": (href, title) | None, "next": (href, title) | None}`` for the bar on top.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="arflow_site", extra_template_basedirs=[str(TEMPLATES)],
                            **STATIC_URLS)
    page, _ = exporter.from_notebook_node(nb, resources={"arflow_nav": nav})
    return page


def index_page(entries: list[tuple[str, str, str]]) -> str:
    """The course map: one row per lecture, ``entries`` of (href, title, summary in markdown).

    The summaries' maths is typeset by the site's own MathJax, as in the lectures.
    """
    from nbconvert.filters.markdown import markdown2html

    rows = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(title)}</a>{markdown2html(summary)}</li>'
                      for href, title, summary in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(COURSE_TITLE)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
ul.course-map {{ list-style: none; padding-left: 0; }}
ul.course-map li {{ margin-bottom: 1rem; }}
ul.course-map li a {{ font-weight: 600; font-size: 1.1rem; }}
ul.course-map li p {{ margin: 0.25rem 0 0; color: #444; }}
</style>
<script type="text/x-mathjax-config">
MathJax.Hub.Config({{tex2jax: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], processEscapes: true}},
                    messageStyle: "none"}});
</script>
<script src="{html.escape(STATIC_URLS["mathjax_url"])}"></script>
</head>
<body>
<h1>{html.escape(COURSE_TITLE)}</h1>
<p>The lectures in order, each run once and shown with its outputs; the explorers show the picture
they had at the end of the run (open the notebooks in JupyterLab with <code>make lab</code> to move
their sliders).</p>
<ul class="course-map">
{rows}
</ul>
</body>
</html>
"""


def build(out: Path, lectures: list[str] | None = None, fast: bool = False, timeout: int = 1200,
          vendored: Path = VENDOR) -> list[Path]:
    """Execute and render the lectures into ``out`` (``index.html``, one page each, ``_static/``).

    ``fast`` runs them with ``ARFLOW_FAST=1`` (tiny data, few steps); otherwise the environment's
    own ``ARFLOW_FAST`` applies. Returns the pages written, index first.
    """
    from tqdm.auto import tqdm

    paths = lecture_paths(lectures)
    if not paths:
        raise SiteError(f"no lectures found in {LECTURES}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copy_static(out, vendored)
    if fast:
        os.environ["ARFLOW_FAST"] = "1"  # the kernels inherit it
    executed = []
    for path in tqdm(paths, desc="running lectures", unit="lecture"):
        executed.append((path, execute(path, timeout)))
    titles = [title_and_summary(nb)[0] or path.stem for path, nb in executed]
    pages = []
    for i, (path, nb) in enumerate(executed):
        nav = {"prev": (f"{paths[i - 1].stem}.html", titles[i - 1]) if i > 0 else None,
               "next": (f"{paths[i + 1].stem}.html", titles[i + 1]) if i + 1 < len(paths) else None}
        page = out / f"{path.stem}.html"
        page.write_text(render(nb, nav), encoding="utf-8")
        pages.append(page)
    entries = [(page.name, title, title_and_summary(nb)[1])
               for page, title, (_, nb) in zip(pages, titles, executed)]
    index = out / "index.html"
    index.write_text(index_page(entries), encoding="utf-8")
    return [index, *pages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("vendor", help="fetch the pinned npm scripts into build/site-js (once)")
    build_parser = commands.add_parser("build", help="run and render the lectures into a folder")
    build_parser.add_argument("--out", type=Path, default=ROOT / "site")
    build_parser.add_argument("--lectures", nargs="*", help="lecture stems (default: every lecture)")
    build_parser.add_argument("--fast", action="store_true", help="ARFLOW_FAST=1: tiny data, few steps")
    build_parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        if args.command == "vendor":
            vendor()
        else:
            pages = build(args.out, args.lectures, fast=args.fast, timeout=args.timeout)
            print(f"{len(pages) - 1} lectures rendered; open {pages[0]}")
    except SiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
