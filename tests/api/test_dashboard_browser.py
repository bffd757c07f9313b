"""The dashboard in Debian's Chromium (Playwright, ``executable_path``; never a downloaded
browser), against real `becomingone up --serve` processes on free loopback ports: what a
person would see — a page without console errors, live numbers, a refused write, a narrow
screen, a reconnection after the server restarts, a locking cluster's moving phase circle and
its band reaching SHARED. Screenshots go to out/dashboard/."""

from __future__ import annotations

import io
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from becomingone.api import TokenStore
from tests.api.browserhelpers import CHROMIUM, CLI, OUT, ServerProcess

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
    ),
]

CONFIG = """\
becomingone:
  name: dash-cell
  master: {tau_max: 30.0, witness_interval: 5.0}
  memory: {flush_interval: 0.25}
"""
#: The part of a 1280-px page the cluster views fill (the screenshot in the README).
CLIP = {"x": 0, "y": 0, "width": 1280, "height": 500}
#: Milliseconds any one expectation on the page may take.
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for the whole module."""
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield b
        finally:
            b.close()


def start_cell(tmp_path: Path) -> tuple[ServerProcess, str]:
    """`up --serve` on the synthetic source with a token made before it starts."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    data.mkdir()
    tokens = TokenStore(data)
    token = tokens.create("browser")
    tokens.close()
    OUT.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        ["up", "--config", str(config), "--data-dir", str(data)], log=tmp_path / "up.log"
    )
    return server.start(), token


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """One cell for the tests that only read it or post to it; stopped by PID."""
    server, token = start_cell(tmp_path_factory.mktemp("cell"))
    try:
        yield server, token
    finally:
        server.stop()


@pytest.fixture
def own_cell(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A cell of the test's own (the test stops and restarts it); stopped by PID."""
    server, token = start_cell(tmp_path)
    try:
        yield server, token
    finally:
        server.stop()


def open_page(browser: object, url: str, width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    """A fresh page on ``url`` and the list its console errors and page errors go to."""
    page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(WAIT_MS)
    page.goto(url + "/")
    return page, errors


def wait_live(page) -> None:  # type: ignore[no-untyped-def]
    """Until the stream is live and a tick, the chain check and a resonance map have shown."""
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_function("document.querySelector('#t-now').textContent.endsWith(' s')")
    page.wait_for_selector("#witness[data-ok='true']")
    page.wait_for_function("document.querySelector('#res-peak').textContent.includes('peak')")


def test_page_loads_live_without_console_errors(
    browser: object, cell: tuple[ServerProcess, str]
) -> None:
    """The page connects, shows the cell's name, stream time, a verified chain and a
    resonance peak, and the console has no error at all."""
    server, _ = cell
    page, errors = open_page(browser, server.url)
    wait_live(page)
    assert page.inner_text("#node-name") == "dash-cell"
    assert page.inner_text("#witness").startswith("verified")
    page.wait_for_timeout(1500)  # a few more ticks, polls and frames
    page.screenshot(path=str(OUT / "cell.png"), clip={**CLIP, "height": 760})
    page.close()
    assert errors == []


def test_write_without_a_token_is_refused_in_the_ui(
    browser: object, cell: tuple[ServerProcess, str]
) -> None:
    """Sending samples with no token shows the API's 401 refusal on the page; with the token
    made by `tokens create` the same samples are accepted."""
    server, token = cell
    page, _ = open_page(browser, server.url)
    page.fill("#write textarea[name=samples]", "0.1, 0.2 0.3")
    page.click("#write button")
    page.wait_for_selector("#write-result[data-kind='refused']")
    assert page.inner_text("#write-result").startswith("refused (401) unauthorized")
    page.fill("#write input[name=token]", token)
    page.click("#write button")
    page.wait_for_selector("#write-result[data-kind='accepted']")
    assert page.inner_text("#write-result").startswith("accepted 3 sample(s)")
    page.close()


def test_narrow_screen_stacks_the_views(browser: object, cell: tuple[ServerProcess, str]) -> None:
    """At 390 px wide (a phone) the views stack in one column and nothing scrolls sideways."""
    server, _ = cell
    page, errors = open_page(browser, server.url, width=390, height=844)
    wait_live(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    lefts = page.evaluate(
        "[...document.querySelectorAll('main > .card')].filter(c => c.offsetParent)"
        ".map(c => Math.round(c.getBoundingClientRect().left))"
    )
    page.screenshot(path=str(OUT / "narrow.png"), full_page=True)
    page.close()
    assert width <= 390
    assert len(lefts) >= 4 and len(set(lefts)) == 1
    assert errors == []


def test_reconnects_and_resumes_after_the_server_restarts(
    browser: object, own_cell: tuple[ServerProcess, str]
) -> None:
    """Stopping the server (SIGTERM by PID) shows "reconnecting"; a new `up --serve` on the
    same port and data dir is found again, the page says it resumed after the last seq it saw
    with the missed records replayed, the newest seq moves past the one before the stop, and
    the reads that failed while the server was away (the resonance map) are made again."""
    server, _ = own_cell
    page, _ = open_page(browser, server.url)
    wait_live(page)
    assert server.stop() == 0
    page.wait_for_selector("#conn[data-state='reconnecting']")
    before = int(page.inner_text("#seq"))
    # While the server is away the cell runs once more on its own, so records are certainly
    # missed (the stopping server may deliver its last records live before it closes).
    away = subprocess.run(
        [*CLI, *server.args, "--duration", "1.5"], capture_output=True, timeout=120
    )
    assert away.returncode == 0, away.stderr
    server.start()
    page.wait_for_function(
        "document.querySelector('#resume').textContent.includes('reconnected 1×')"
    )
    text = page.inner_text("#resume")
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_function(f"Number(document.querySelector('#seq').textContent) > {before}")
    page.wait_for_function("document.querySelector('#res-peak').textContent.includes('peak')")
    page.screenshot(path=str(OUT / "resumed.png"))
    page.close()
    assert f"resumed after seq {before}" in text
    replayed = int(text.split("·")[2].split()[0])
    assert replayed >= 1


def test_a_stopped_cell_with_a_tampered_record_shows_the_break(
    browser: object, tmp_path: Path
) -> None:
    """`becomingone serve` of a stopped cell whose record 3 was changed in the database: the
    page says the cell is stopped and read-only, shows its stored history (stream time), the
    chain view names seq 3 as broken, and a write with a valid token gets the read-only
    refusal."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    up = [*CLI, "up", "--config", str(config), "--data-dir", str(data), "--duration", "3"]
    subprocess.run(up, check=True, timeout=60, capture_output=True)
    tokens = TokenStore(data)
    token = tokens.create("browser")
    tokens.close()
    with sqlite3.connect(data / "memory.sqlite3") as db:
        db.execute("UPDATE witness SET payload = '{}' WHERE seq = 3")
    serve = ["serve", "--config", str(config), "--data-dir", str(data)]
    server = ServerProcess(serve, flag="--listen").start()
    try:
        page, _ = open_page(browser, server.url)
        page.wait_for_selector("#witness[data-ok='false']")
        page.wait_for_function("document.querySelector('#t-now').textContent.endsWith(' s')")
        broken = page.inner_text("#witness")
        name = page.inner_text("#node-name")
        page.fill("#write textarea[name=samples]", "0.1")
        page.fill("#write input[name=token]", token)
        page.click("#write button")
        page.wait_for_selector("#write-result[data-kind='refused']")
        refusal = page.inner_text("#write-result")
        page.screenshot(path=str(OUT / "tampered.png"))
        page.close()
    finally:
        server.stop()
    assert broken.startswith("BROKEN at seq 3")
    assert name == "dash-cell (stopped, read-only)"
    assert refusal.startswith("refused (405) read_only")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`cluster --serve`: 8 full cells (transducers, sync layer, chain) locking on a fractal
    topology at 20 ticks/s, for at most 3 minutes; stopped by PID."""
    tmp = tmp_path_factory.mktemp("cluster")
    server = ServerProcess(
        [
            *("cluster", "--nodes", "8", "--topology", "fractal", "--cells", "full"),
            *("--duration", "180", "--data-dir", str(tmp / "data")),
        ],
        log=tmp / "cluster.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pixels(png: bytes) -> np.ndarray:
    """The RGB pixels of a PNG screenshot."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_phase_circle_moves_with_the_cluster(browser: object, cluster: ServerProcess) -> None:
    """Two screenshots of the phase circle half a second apart differ in many pixels (the
    cells' dots move live), while the page shows one dot per cell and no console error."""
    page, errors = open_page(browser, cluster.url)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_function("document.querySelector('#phase').closest('.card') !== null")
    page.wait_for_function("document.querySelector('#c-now').textContent.includes('tick')")
    first = pixels(page.locator("#phase").screenshot())
    page.wait_for_timeout(500)
    second = pixels(page.locator("#phase").screenshot())
    assert page.inner_text("#node-name").startswith("cluster local · 8 cells")
    page.close()
    changed = int(np.count_nonzero(np.abs(first - second).sum(axis=2) > 30))
    assert changed > 200, f"only {changed} pixels changed"
    assert errors == []


def test_band_label_reaches_shared(browser: object, cluster: ServerProcess) -> None:
    """As the cluster locks, the band label reads SHARED (C > 0.75), the C_cluster text
    agrees, and the picked cell's coherence and the cell picker show; screenshot kept."""
    page, errors = open_page(browser, cluster.url)
    page.wait_for_selector("#band[data-band='SHARED']", timeout=90_000)
    c = float(page.inner_text("#c-now").split()[0])
    assert c > 0.75
    assert page.locator("#cell-pick option").count() == 8
    page.wait_for_function("document.querySelector('#outcome').textContent !== '–'")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "cluster.png"), clip=CLIP)
    page.close()
    assert errors == []
