"""The glyph ring of a NATS cluster's dashboard in Debian's Chromium (Playwright,
``executable_path``; never a downloaded browser): a real nats-server and three ``node --glyphs
--serve`` processes (stopped by their PIDs), the page served by one node, glyphs submitted to
another. Screenshot in out/dashboard/glyphs-nats.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from becomingone.cluster import OwnerRecord
from becomingone.runtime.node_glyphs import glyph_bucket
from becomingone.transport.jetstream import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.api.browserhelpers import CHROMIUM, OUT
from tests.api.test_dashboard_browser import browser, open_page, pixels
from tests.api.test_dashboard_governance_browser import until
from tests.faults.helpers import gone
from tests.faults.test_glyph_faults import GlyphFleet, _submit

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
    ),
]

__all__ = ["browser"]  # the module's Chromium

GLYPHS = [f"ring-{i}" for i in range(3)]


def shown(page: Any) -> dict[str, str]:
    """The owner node each glyph is listed under on the page."""
    rows = page.eval_on_selector_all(
        "#glyph-list li", "els => els.map(e => [e.dataset.cell, e.dataset.glyphs])"
    )
    return {g: cell for cell, ids in rows for g in ids.split() if g in GLYPHS}


def owners(kv: JetStreamCasRecord) -> dict[str, str]:
    """Each glyph's owner in its KV ownership record."""
    out = {}
    for gid in GLYPHS:
        got = kv.get(f"glyph.{gid}")
        if got is not None:
            out[gid] = OwnerRecord.from_bytes(got.value).owner
    return out


def test_a_nats_clusters_glyphs_on_the_ring(browser: object, tmp_path: Path) -> None:
    """The dashboard served by node 2 lists the glyphs submitted to node 0 under the owners
    their KV records name, names a migration it heard (glyph.migrated from the statuses), and
    the glyph circle draws more than the empty ring; no console error."""
    OUT.mkdir(parents=True, exist_ok=True)
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        fleet = GlyphFleet(tmp_path / "nodes", servers.urls)
        kv = JetStreamCasRecord(servers.urls, glyph_bucket("local"))
        try:
            for name in fleet.names:
                fleet.start(name)
            page, errors = open_page_when_up(browser, fleet.url(fleet.names[2]))
            page.wait_for_selector("#card-glyphs", state="visible")
            empty = pixels(page.locator("#glyphs").screenshot())
            for i, gid in enumerate(GLYPHS):
                _submit(fleet, fleet.names[0], gid, (i + 0.5) / 8)
            page.wait_for_function(
                "document.querySelector('#glyph-move').textContent.startsWith('ring-')",
                timeout=150_000,
            )
            until(lambda: len(set(owners(kv).values())) == 3, 120)
            until(lambda: shown(page) == owners(kv), 20)
            page.wait_for_timeout(1500)
            ring = pixels(page.locator("#glyphs").screenshot())
            page.screenshot(path=str(OUT / "glyphs-nats.png"), full_page=True)
            page.close()
            changed = np.abs(ring.astype(int) - empty.astype(int)).sum(axis=2) > 60
            assert int(np.count_nonzero(changed)) > 50, "the glyph ring drew nothing new"
            assert errors == []
        finally:
            kv.close()
            codes = fleet.stop()
    assert all(gone(pid) for pid in servers.pids)
    assert set(codes) == set(fleet.names)


def open_page_when_up(browser: object, url: str) -> tuple[Any, list[str]]:
    """The dashboard at ``url`` once its node answers (bounded), live."""
    until(lambda: _answers(url), 60)
    page, errors = open_page(browser, url)
    page.wait_for_selector("#conn[data-state='live']")
    return page, errors


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/cluster", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
