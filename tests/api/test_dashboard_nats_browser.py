"""The dashboard of a NATS cluster in Debian's Chromium (Playwright, ``executable_path``; never
a downloaded browser): `cluster --bus nats --serve` on a free loopback port (a real
nats-server and node processes, the command stopped by PID with SIGTERM, which stops what it
started), the page fed by what the observer hears. Screenshot in out/dashboard/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.browserhelpers import CHROMIUM, OUT, ServerProcess
from tests.api.test_dashboard_browser import CLIP, browser, open_page  # noqa: F401

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
    ),
]


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`cluster --bus nats --serve`: four node processes (full cells) on one nats-server, for
    at most 3 minutes; stopped by PID."""
    tmp: Path = tmp_path_factory.mktemp("nats-cluster")
    OUT.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        [
            *("cluster", "--bus", "nats", "--nodes", "4", "--alpha", "0.3"),
            *("--duration", "180", "--data-dir", str(tmp / "data")),
        ],
        log=tmp / "cluster.log",
    )
    server.start()
    try:
        yield server
    finally:
        assert server.stop() == 0, (tmp / "cluster.log").read_text()


def test_band_label_reaches_shared_on_a_nats_cluster(
    browser: object,  # noqa: F811
    nats_cluster: ServerProcess,
) -> None:
    """The page names the cluster with its 4 nodes, its band label reaches SHARED with a
    C_cluster text above 0.75, the cell picker lists the 4 node processes, the picked node's
    last decision shows (its status carries its cell's Master/Emissary/Sync), and the console
    has no error."""
    page, errors = open_page(browser, nats_cluster.url)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_selector("#band[data-band='SHARED']", timeout=120_000)
    assert float(page.inner_text("#c-now").split()[0]) > 0.75
    page.wait_for_function("document.querySelectorAll('#cell-pick option').length === 4")
    assert page.inner_text("#node-name").startswith("cluster local · 4 cells")
    page.wait_for_function("document.querySelector('#outcome').textContent !== '–'")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "cluster-nats.png"), clip=CLIP)
    page.close()
    assert errors == []
