"""The dashboard's glyph, roles and proposal views in Debian's Chromium (Playwright,
``executable_path``; never a downloaded browser), against a real `cluster --cells full
--roles --serve` process on a free loopback port: glyphs submitted through the API shown at
their owner cells and a migration moving one, every cell's role and the lifecycle with its
conditions, an operator's proposal with its tally, a vote refused without a token and passed
with one, a narrow screen — and no console error. Screenshots go to out/dashboard/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from becomingone.api import TokenStore
from tests.api.browserhelpers import CHROMIUM, OUT, ServerProcess
from tests.api.test_dashboard_browser import browser, open_page, pixels

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
    ),
]

__all__ = ["browser"]  # the module's Chromium, shared with the other browser tests

#: The accent colour the glyph circle draws a travelling glyph (and its chord) in.
ACCENT = np.array([0xD2, 0xA8, 0xFF])
#: Glyphs the test submits, all to one cell so that the migrator spreads them once SHARED.
GLYPHS = [f"move-{i}" for i in range(4)]
PROBE = {"kind": "probe", "payload": {"probe": "loadavg"}, "energy": 50.0, "lifetime": 5000}


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """`cluster --cells full --roles --serve`: 8 cells for at most 4 minutes, with a write
    token made before it starts; stopped by PID."""
    tmp = tmp_path_factory.mktemp("governed")
    data = tmp / "data"
    data.mkdir()
    tokens = TokenStore(data)
    token = tokens.create("browser")
    tokens.close()
    OUT.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        [
            *("cluster", "--nodes", "8", "--topology", "fractal", "--cells", "full"),
            *("--roles", "--duration", "240", "--data-dir", str(data)),
        ],
        log=tmp / "cluster.log",
    )
    server.start()
    try:
        yield server, token
    finally:
        server.stop()


def api(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    """One API request with the write token."""
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{server.url}/api/v1{path}", headers=headers, timeout=10, **kw)


def until(check: Any, seconds: float = 60.0) -> Any:
    """Poll ``check()`` every 0.2 s until it is truthy (its value), bounded in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {check}")


def submit_glyph(server: ServerProcess, token: str, body: dict[str, Any]) -> None:
    """Submit a glyph; an AUTONOMOUS cluster proposes it instead (202): vote it through as
    the eligible Validators, through the API."""
    answer = api(server, "POST", "/cluster/glyphs", token, json=body)
    assert answer.status_code in (201, 202), answer.text
    if answer.status_code == 202:
        p = answer.json()
        for cell in p["eligible"][: p["needed"]]:
            vote = {"cell": cell, "vote": "yes"}
            api(server, "POST", f"/cluster/proposals/{p['id']}/votes", token, json=vote)


def owners(server: ServerProcess) -> dict[str, str]:
    """The owner of each of the test's glyphs, from the glyph route."""
    rows = httpx.get(f"{server.url}/api/v1/cluster/glyphs", timeout=10).json()["glyphs"]
    return {g["id"]: g["owner"] for g in rows if g["id"] in GLYPHS}


def shown(page: Any) -> dict[str, str]:
    """The owner cell each of the test's glyphs is listed under on the page."""
    rows = page.eval_on_selector_all(
        "#glyph-list li", "els => els.map(e => [e.dataset.cell, e.dataset.glyphs])"
    )
    return {g: cell for cell, ids in rows for g in ids.split() if g in GLYPHS}


def test_glyphs_at_their_owners_and_a_migration_moves_one(
    browser: object, governed: tuple[ServerProcess, str]
) -> None:
    """Glyphs submitted to one cell appear in the glyph view under the owner the API names;
    once the cluster is SHARED the migrator moves one: the view names the move, lists the
    glyph under its new owner and the glyph circle's pixels change while the dot travels."""
    server, token = governed
    page, errors = open_page(browser, server.url)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_selector("#card-glyphs", state="visible")
    for gid in GLYPHS:
        submit_glyph(server, token, {**PROBE, "id": gid, "cell": "cell-0000"})
    until(lambda: len(shown(page)) == len(GLYPHS))
    until(lambda: shown(page) == owners(server), 10)
    text = page.wait_for_function(
        "(() => { const t = document.querySelector('#glyph-move').textContent;"
        " return t.startsWith('move-') ? t : null; })()",
        timeout=120_000,
    ).json_value()
    travelling = pixels(page.locator("#glyphs").screenshot())
    page.screenshot(path=str(OUT / "glyphs.png"), full_page=True)
    moved, _, route = str(text).partition(": ")
    source, target = route.split(" at ")[0].split(" → ")
    assert moved in GLYPHS and source != target
    until(lambda: shown(page) == owners(server), 10)
    stats = page.inner_text("#glyph-stats")
    assert stats.split(" · ")[1] != "0 migration(s)", stats
    page.close()
    near = np.abs(travelling - ACCENT).sum(axis=2) < 60
    assert int(np.count_nonzero(near)) > 20, "no travelling glyph drawn"
    assert errors == []


def test_roles_and_the_lifecycle_with_its_conditions(
    browser: object, governed: tuple[ServerProcess, str]
) -> None:
    """Every cell is listed with the role the roles route gives it, one Genesis among them;
    the lifecycle stage and each condition's held-or-not mark agree with the route."""
    server, _ = governed
    page, errors = open_page(browser, server.url)
    page.wait_for_selector("#roles li[data-role='genesis']", timeout=90_000)

    def agree() -> bool:
        doc = httpx.get(f"{server.url}/api/v1/cluster/roles", timeout=10).json()
        roles = {c: r["role"] or "none" for c, r in doc["cells"].items()}
        page_roles = dict(
            page.eval_on_selector_all(
                "#roles li", "els => els.map(e => [e.dataset.cell, e.dataset.role])"
            )
        )
        met = {n: str(c["met"]).lower() for n, c in doc["conditions"].items()}
        page_met = dict(
            page.eval_on_selector_all(
                "#conditions li", "els => els.map(e => [e.dataset.name, e.dataset.met])"
            )
        )
        stage = page.get_attribute("#lifecycle", "data-stage")
        return roles == page_roles and met == page_met and stage == doc["lifecycle"]

    until(agree, 30)
    assert page.locator("#roles li").count() == 8
    page.close()
    assert errors == []


def test_a_proposal_shows_its_tally_and_decision_and_a_vote_needs_the_token(
    browser: object, governed: tuple[ServerProcess, str]
) -> None:
    """A proposal made through the API appears open with a zero tally; voting in the page
    without a token shows the 401 refusal; with the token each needed Validator's yes raises
    the tally until the page shows it passed, as the proposal route does. The only console
    error is Chromium's own line for the refused (401) request."""
    server, token = governed
    page, errors = open_page(browser, server.url)
    page.wait_for_selector("#conn[data-state='live']")

    def propose() -> str | None:
        answer = api(server, "POST", "/cluster/proposals", token, json={"text": "browser vote"})
        return answer.json()["id"] if answer.status_code == 201 else None

    pid = until(propose, 90)
    row = f"#proposals li[data-id='{pid}']"
    page.wait_for_selector(f"{row}[data-status='open']")
    page.wait_for_function(
        f"document.querySelector(\"{row} .what\").textContent.includes('browser vote')"
    )
    assert page.inner_text(f"{row} .tally").startswith("yes 0 · no 0")
    page.click(f"{row} button[value='yes']")
    page.wait_for_selector("#vote-result[data-kind='refused']")
    assert page.inner_text("#vote-result").startswith("refused (401) unauthorized")
    page.fill("#vote-token", token)
    need = api(server, "GET", f"/cluster/proposals/{pid}", token).json()["needed"]
    for n in range(1, need + 1):
        page.wait_for_function(f'document.querySelector("{row} select").options.length > 0')
        page.click(f"{row} button[value='yes']")
        page.wait_for_function(
            f"document.querySelector(\"{row} .tally\").textContent.startsWith('yes {n}')"
        )
    page.wait_for_selector(f"{row}[data-status='passed']")
    assert api(server, "GET", f"/cluster/proposals/{pid}", token).json()["status"] == "passed"
    assert page.inner_text("#vote-result").startswith("cell-")
    page.screenshot(path=str(OUT / "governance.png"), full_page=True)
    page.close()
    # The one refused request is the browser's only console message (it logs every 401).
    assert errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]


def test_the_governance_views_fit_a_narrow_screen(
    browser: object, governed: tuple[ServerProcess, str]
) -> None:
    """At 390 px wide the glyph, roles and proposal views stack in one column with the
    others and nothing scrolls sideways."""
    server, _ = governed
    page, errors = open_page(browser, server.url, width=390, height=844)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_selector("#roles li[data-role='genesis']", timeout=90_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    lefts = page.evaluate(
        "[...document.querySelectorAll('main > .card')].filter(c => c.offsetParent)"
        ".map(c => Math.round(c.getBoundingClientRect().left))"
    )
    page.screenshot(path=str(OUT / "governance-narrow.png"), full_page=True)
    page.close()
    assert width <= 390
    assert len(lefts) >= 6 and len(set(lefts)) == 1
    assert errors == []
