"""The explorer and the report in a real browser: JupyterLab + headless Chromium via Playwright.

The test starts JupyterLab on 127.0.0.1 (free port, random token) in a temporary folder holding a
copy of ``notebooks/09_explore.ipynb`` whose parameters point at a small synthetic run directory,
opens it in Debian's Chromium, runs every cell, waits for the explorer to render, drives it (a
class change and a reseed go through the kernel and back) and saves
``build/screenshots/explorer.png``; then it opens the HTML report in the same browser, checks that
it loads nothing from the network and that its table sorts, and saves
``build/screenshots/report.png``.

``PRIMEKIT_BROWSER_RUN=runs/demo`` shows that run directory instead of the synthetic one (for the
README's screenshots of the toy world).

Chromium is installed by ``scripts/install_browser.sh`` (called by ``make test``; called here too
when the browser is missing). The test is skipped, saying why, only where it cannot be installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_report import make_run_dir

from primekit.run_folder import load_run

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_explore.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install_browser.sh")], check=False, timeout=900
        )
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing and scripts/install_browser.sh could not install it "
            "(needs root or password-less sudo, apt-get and a package mirror)"
        )
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parameterized_notebook(folder: Path, **parameters) -> Path:
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), parameters)
    out = folder / NOTEBOOK.name
    nbformat.write(nb, out)
    return out


def _start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ)
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "cfg"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[var] = str(folder / ".jupyter" / sub)
    # no "get notified about news?" toast over the screenshot
    notification = folder / ".jupyter" / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    log = open(folder / "jupyterlab.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for_server(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started, and its kernels (same process group), by id."""
    if proc.poll() is None:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, 15)  # a kernel left behind by a crashed server
    except (ProcessLookupError, PermissionError):
        pass


def test_explorer_and_report_in_a_real_browser(tmp_path):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    own_run = os.environ.get("PRIMEKIT_BROWSER_RUN")
    run_dir = Path(own_run) if own_run else make_run_dir(tmp_path / "run")
    run = load_run(run_dir)
    work = tmp_path / "lab"
    work.mkdir()
    report = work / "report.html"
    _parameterized_notebook(
        work, run_dir=str(run_dir.resolve()), smoke=True, n_images=8, report_path=str(report)
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    proc = _start_lab(work, port, token)
    try:
        _wait_for_server(proc, f"{base}/api/status?token={token}", work / "jupyterlab.log")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1250})
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                _run_notebook(page, f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", report, run)
                offsite = [u for u in requests if not u.startswith((base, "data:", "blob:"))]
                assert offsite == []
                assert dialogs == []  # markup in class names and tags stayed text
                _check_report(browser, report, synthetic=not own_run)
            finally:
                browser.close()
    finally:
        _stop(proc)


def _option(select, text: str) -> str:
    """The label of the first option of a <select> containing ``text``.

    ipywidgets writes option labels with non-breaking spaces.
    """
    labels = select.locator("option").all_inner_texts()
    matches = [o for o in labels if text in o.replace("\xa0", " ")]
    assert matches, (text, labels)
    return matches[0]


def _run_notebook(page, url: str, report: Path, run) -> None:
    page.goto(url)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
        "&& window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=60_000,
    )
    page.evaluate("""async () => {
        const app = window.jupyterapp;
        const panel = app.shell.currentWidget;
        await panel.sessionContext.ready;
        if (!app.shell.leftCollapsed) { app.shell.collapseLeft(); }
        await app.commands.execute('notebook:run-all-cells');
    }""")
    explorer = page.locator(".primekit-explorer")
    explorer.locator(".widget-slider").first.wait_for(timeout=90_000)
    thumbs = explorer.locator(".primekit-thumb img")
    thumbs.first.wait_for(timeout=30_000)
    # min size, min drop, max tags, and the q-value slider of the confidence filter (issue 14)
    assert explorer.locator(".widget-slider").count() == 4
    # the last cell (key numbers) ran, and with it the report cell
    page.locator(".jp-OutputArea-output", has_text="n_failure_modes").first.wait_for(timeout=60_000)
    assert report.is_file()
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.first.inner_text()

    # the browser drives the kernel: a slider re-runs the search (there and back)...
    status = explorer.locator(".widget-html", has_text="failure modes in").first
    readout = explorer.locator(".widget-readout").first
    min_size = int(readout.inner_text())
    before = status.inner_text()
    handle = explorer.locator(".widget-slider").first.locator(".noUi-handle")
    handle.focus()
    handle.press("ArrowLeft")
    page.wait_for_function(
        "([el, old]) => el.innerText !== old",
        arg=[status.element_handle(), before],
        timeout=20_000,
    )
    assert int(readout.inner_text()) == min_size - 1
    handle.press("ArrowRight")
    page.wait_for_function(
        "([el, v]) => el.innerText.trim() === v", arg=[readout.element_handle(), str(min_size)]
    )
    # ... then pick the class and mode with the most tags (the run's own modes again) ...
    modes = run.modes.sort_values(["n_tags", "drop"], ascending=False, kind="stable")
    mode = modes.iloc[0]
    # (the notebook starts on that mode: go to another class first, so both picks go through the
    # kernel)
    class_select = explorer.locator(".widget-dropdown select").first
    mode_select = explorer.locator(".widget-select select").first
    other = run.modes[run.modes["class"] != mode["class"]]
    if len(other):
        class_select.select_option(label=_option(class_select, f"{other['class'].iloc[0]} ("))
        page.wait_for_function(
            "([el, text]) => el.textContent.replace(/\\u00a0/g, ' ').includes(text)",
            arg=[mode_select.element_handle(), " + ".join(other["tags"].iloc[0])],
            timeout=20_000,
        )
    class_select.select_option(label=_option(class_select, f"{mode['class']} ("))
    joined = " + ".join(mode["tags"])
    page.wait_for_function(
        "([el, text]) => el.textContent.replace(/\\u00a0/g, ' ').includes(text)",
        arg=[mode_select.element_handle(), joined],
        timeout=20_000,
    )
    mode_select.select_option(label=_option(mode_select, joined))
    explorer.locator(".widget-html", has_text=mode["description"]).first.wait_for(timeout=20_000)
    n_class = int((run.labels == mode["class"]).sum())
    expected = min(8, int(mode["size"])) + min(8, n_class - int(mode["size"]))
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n",
        arg=[".primekit-explorer .primekit-thumb img", expected],
        timeout=20_000,
    )
    # ... and draws new random images
    first_src = thumbs.first.get_attribute("src")
    explorer.get_by_role("button", name="new random images").click()
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel); return img && img.src !== old; }",
        arg=[".primekit-explorer .primekit-thumb img", first_src],
        timeout=20_000,
    )
    thumbs.nth(expected - 1).wait_for()
    page.wait_for_timeout(500)  # let the new images paint
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(SCREENSHOTS / "explorer.png"))


def _check_report(browser, report: Path, *, synthetic: bool) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    # everything is embedded: the page itself is the only request
    assert [u for u in requests if not u.startswith("data:")] == [report.as_uri()]
    assert dialogs == []  # the tag "<script>alert(1)</script>" stayed text
    if synthetic:
        assert page.get_by_text("<script>alert(1)</script>").count() >= 1
    images = page.locator("img")
    assert images.count() > (20 if synthetic else 0)
    assert page.evaluate("() => Array.from(document.images).every(i => i.naturalWidth > 0)")
    # the inline script (allowed by its hash in the CSP) sorts the table
    # the first table (a run with the q-value filter also lists its filtered-out modes in a second one)
    first = page.locator("table.modes").first
    accuracy = first.locator("th", has_text="accuracy").first
    accuracy.click()
    assert accuracy.get_attribute("aria-sort") == "ascending"
    values = first.locator("tbody tr td:nth-child(6)").evaluate_all("tds => tds.map(t => +t.dataset.sortValue)")
    assert values == sorted(values)
    accuracy.click()
    values = first.locator("tbody tr td:nth-child(6)").evaluate_all("tds => tds.map(t => +t.dataset.sortValue)")
    assert values == sorted(values, reverse=True)
    page.screenshot(path=str(SCREENSHOTS / "report.png"))
    page.close()


def test_install_script_is_idempotent():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install_browser.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == ""
    assert time.monotonic() - started < 5
    assert shutil.which("chromium") or CHROMIUM.exists()
