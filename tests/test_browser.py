"""A student's JupyterLab in a real browser: lecture 01 run, its causal-stack explorer moved, the picture changes.

JupyterLab is started headless on loopback (a free port, a token, the student configuration of
`make lab`: ``jupyter/student`` on JUPYTER_CONFIG_PATH, ``--allow-root`` when root) against a
temporary copy of the lecture, with its own HOME and runtime folder. Headless Chromium (Debian's
chromium + chromedriver, through selenium) opens the lecture, runs it down to the explorer, presses
the right arrow key on a slider's handle and checks that the explorer's one picture was replaced,
that the browser console has no errors, that the saved notebook holds the widget state with the
new picture, and that nbgrader's instructor tools are not there. Skipped, saying what is missing,
only where no headless browser can be had.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest
from headless_browser import browser_or_skip, console_errors, is_local, requested_urls, start_browser

ROOT = Path(__file__).resolve().parents[1]
LECTURE = "01_causal_convolutions_wavenet.ipynb"
EXPLORER_CALL = "causal_stack_explorer("
IMAGE = "img.arflow-explorer-image"
CONTROL = ".arflow-explorer-control"

# Console errors tolerated: none. (JupyterLab's news feed and update check, which would reach for
# the internet, are switched off below; a message worth tolerating would be listed here with why.)
ALLOWED_CONSOLE: tuple[str, ...] = ()

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll ``condition()`` until it returns something truthy; fail saying ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page is still loading: keep the last error, try again
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


@contextlib.contextmanager
def running_lab(tmp_path: Path, mode: str = "student"):
    """JupyterLab as `make lab` (or `make lab-instructor`) starts it, on loopback, over a copy of lecture 01.

    Yields ``(base_url, token, course)``: ``course`` is the temporary course folder. Stopped on exit,
    with a check that none of its processes (server, kernels) is left.
    """
    course = tmp_path / "course"
    (course / "lectures").mkdir(parents=True)
    shutil.copy2(ROOT / "lectures" / LECTURE, course / "lectures" / LECTURE)
    home = tmp_path / "home"
    home.mkdir()
    port, token = _free_port(), hashlib.sha256(os.urandom(16)).hexdigest()[:32]
    env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
           "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter" / mode),
           "ARFLOW_FAST": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}",
               # test hook: window.jupyterapp, to run cells and save through JupyterLab's own commands
               "--LabApp.expose_app_in_browser=True",
               # no news feed or update check from the internet (the machine has no network)
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp_path / f"lab-{mode}.log"
    log = open(log_path, "w")
    server = subprocess.Popen(command, env=env, cwd=course, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready():
            if server.poll() is not None:
                raise AssertionError(f"JupyterLab exited ({server.returncode}):\n" + log_path.read_text()[-3000:])
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                return response.status == 200

        _wait_until(ready, 90, "JupyterLab to answer on loopback")
        yield base, token, course
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
        leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
        for process in leftovers:
            process.kill()
        assert not leftovers, f"left running after JupyterLab stopped: {[p.info['cmdline'] for p in leftovers]}"


@pytest.fixture
def student_lab(tmp_path):
    browser_or_skip()  # before starting JupyterLab for nothing
    with running_lab(tmp_path, "student") as lab:
        yield lab


def _get(url: str) -> tuple[int, str]:
    """Status and body of a GET, redirects not followed (a 302 to a login page is an answer too)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.mark.parametrize("mode", ["student", "instructor"])
def test_make_lab_targets_and_who_sees_nbgrader(tmp_path, mode):
    """`make lab` / `make lab-instructor` use their config folder (and --allow-root as root); only
    instructors get nbgrader's server extensions (Formgrader) and its lab extension."""
    target = "lab" if mode == "student" else "lab-instructor"
    # a clean environment: under `make test` the outer make's MAKEFLAGS/MAKELEVEL would make this one print
    # "make[1]: Leaving directory ..." after the recipe
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "--always-make", target], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    assert f"JUPYTER_CONFIG_PATH={ROOT}/jupyter/{mode}" in recipe and "jupyter lab" in recipe, recipe
    assert ("--allow-root" in recipe) == (os.geteuid() == 0), recipe
    with running_lab(tmp_path, mode) as (base, token, _):
        formgrader, _ = _get(f"{base}/formgrader?token={token}")
        status, page = _get(f"{base}/lab?token={token}")
    assert status == 200
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    nbgrader_disabled = "@jupyter/nbgrader" in config["disabledExtensions"]
    assert config["appSettingsDir"] == str(ROOT / "jupyter" / "settings")
    if mode == "student":
        assert formgrader == 404 and nbgrader_disabled, (formgrader, config["disabledExtensions"])
    else:
        assert formgrader in (200, 302) and not nbgrader_disabled, (formgrader, config["disabledExtensions"])


def _image_bytes(driver) -> bytes:
    """The bytes the explorer's <img> shows now (its src is a blob: or data: URL)."""
    encoded = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const img = document.querySelector(arguments[0]);
        if (!img || !img.src) { done(null); return; }
        fetch(img.src).then(r => r.arrayBuffer()).then(buffer => {
            let text = ""; const bytes = new Uint8Array(buffer);
            for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
            done(btoa(text));
        }).catch(() => done(null));
    """, IMAGE)
    return base64.b64decode(encoded) if encoded else b""


def _kernel_idle(driver) -> bool:
    return driver.execute_script("""
        const panel = window.jupyterapp.shell.currentWidget;
        const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
        return !!kernel && kernel.status === 'idle' && !panel.sessionContext.pendingInput;
    """)


def test_student_runs_lecture_01_and_moves_the_explorer(student_lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, token, course = student_lab
    began = time.monotonic()
    driver = start_browser()
    try:
        driver.get(f"{base}/lab/tree/lectures/{LECTURE}?token={token}")
        _wait_until(lambda: driver.execute_script(
            "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            "return !!w && !!w.content && w.content.widgets && w.content.widgets.length > 0 && "
            "w.context && w.context.isReady;"), 120, "the lecture to open in JupyterLab")
        _wait_until(lambda: _kernel_idle(driver), 120, "the lecture's kernel to start")

        # The student's JupyterLab has no nbgrader tools: no plugin, no menu, no panel, no command.
        nbgrader = driver.execute_script("""
            const app = window.jupyterapp;
            return {plugins: app.listPlugins().filter(id => id.startsWith('@jupyter/nbgrader')),
                    commands: app.commands.listCommands().filter(id => id.startsWith('nbgrader:'))};
        """)
        assert nbgrader == {"plugins": [], "commands": []}, f"nbgrader's tools are in the student lab: {nbgrader}"
        page_text = driver.find_element(By.TAG_NAME, "body").text
        for tool in ("Formgrader", "Create Assignment", "Nbgrader"):
            assert tool not in page_text, f"{tool!r} is shown to students"
        with urllib.request.urlopen(f"{base}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"
                                    f"?token={token}") as response:
            schema = json.load(response)["schema"]
        assert schema["properties"]["saveState"]["default"] is True, "widget state would not be saved"

        # Run the lecture down to and including the explorer's cell, as Run > Run All Above + Shift+Enter.
        index = driver.execute_script("""
            const notebook = window.jupyterapp.shell.currentWidget.content;
            const index = notebook.widgets.findIndex(c => c.model.sharedModel.getSource().includes(arguments[0]));
            notebook.activeCellIndex = index;
            return index;
        """, EXPLORER_CALL)
        assert index > 0, f"no cell calls {EXPLORER_CALL} in {LECTURE}"
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-above')")
        _wait_until(lambda: driver.execute_script(
            "const n = window.jupyterapp.shell.currentWidget.content;"
            "return n.widgets.slice(0, arguments[0]).every(c => c.model.type !== 'code' || "
            "c.model.executionCount !== null);", index) and _kernel_idle(driver),
            150, "the cells above the explorer to run")
        errors_above = driver.execute_script(  # exceptions raised in the cells run (error outputs)
            "const n = window.jupyterapp.shell.currentWidget.content;"
            "return n.widgets.slice(0, arguments[0]).filter(c => c.model.type === 'code')"
            ".flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error')"
            ".map(o => o.ename + ': ' + o.evalue);", index)
        assert not errors_above, f"a cell above the explorer raised: {errors_above}"
        driver.execute_script(
            "const n = window.jupyterapp.shell.currentWidget.content; n.activeCellIndex = arguments[0];"
            "window.jupyterapp.commands.execute('notebook:run-cell');", index)
        image = _wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, IMAGE), 90,
                            "the causal-stack explorer's picture")[0]
        first = _wait_until(lambda: _image_bytes(driver), 30, "the explorer's first picture to load")
        assert first[:8] == b"\x89PNG\r\n\x1a\n", "the explorer's picture is not a PNG"
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 100
        assert len(driver.find_elements(By.CSS_SELECTOR, IMAGE)) == 1, "the explorer shows more than one picture"

        # Move the first slider with the keyboard, as a student would: focus its handle, press →.
        handle = driver.find_element(By.CSS_SELECTOR, f"{CONTROL} .noUi-handle")
        readout = driver.find_element(By.CSS_SELECTOR, f"{CONTROL} .widget-readout")
        value_before = readout.text
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", handle)
        handle.send_keys(Keys.ARROW_RIGHT)
        _wait_until(lambda: readout.text != value_before, 10, "the slider's value to change")
        changed = _wait_until(lambda: (b := _image_bytes(driver)) and b != first and b, 60,
                              f"the picture to change after the slider moved {value_before} -> {readout.text}")
        assert changed[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(driver.find_elements(By.CSS_SELECTOR, IMAGE)) == 1, "the old picture stayed beside the new one"

        # Saved, the notebook holds the widget state: the explorer's last picture reopens with it.
        _wait_until(lambda: _kernel_idle(driver), 60, "the kernel to finish drawing")
        driver.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
        saved_path = course / "lectures" / LECTURE

        def saved_state():
            widgets = nbformat.read(saved_path, as_version=4).metadata.get("widgets", {})
            return widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state")

        state = _wait_until(saved_state, 30, "the saved notebook to hold the widget state")
        saved_pictures = [base64.b64decode(buffer["data"]) for model in state.values()
                          if model.get("model_name") == "ImageModel"
                          for buffer in model.get("buffers", []) if buffer.get("path") == ["value"]]
        assert changed in saved_pictures, (f"the saved widget state does not hold the explorer's last picture "
                                           f"({len(saved_pictures)} Image models saved)")

        errors = console_errors(driver, ALLOWED_CONSOLE)
        assert not errors, "errors in the browser console:\n" + "\n".join(errors)
        remote = [url for url in requested_urls(driver) if not is_local(url)]
        assert not remote, f"the student's JupyterLab asked the network for {remote}"

        # Reopened with a fresh kernel (nothing run), the lecture shows the explorer's last picture.
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}") as response:
            sessions = json.load(response)
        for session in sessions:
            request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request).close()
        driver.refresh()
        _wait_until(lambda: _kernel_idle(driver), 120, "the reopened lecture's new kernel")
        # JupyterLab renders only the cells near the view: bring the explorer's cell into view.
        driver.execute_script(
            "const n = window.jupyterapp.shell.currentWidget.content;"
            "n.activeCellIndex = arguments[0]; n.scrollToItem(arguments[0]);", index)
        reopened = _wait_until(lambda: _image_bytes(driver), 60, "the saved picture to show after reopening")
        assert reopened == changed, "the reopened lecture does not show the explorer's last picture"
        errors = console_errors(driver, ALLOWED_CONSOLE)
        assert not errors, "errors in the browser console after reopening:\n" + "\n".join(errors)
    finally:
        driver.quit()
    elapsed = time.monotonic() - began
    print(f"browser part: {elapsed:.1f} s")
