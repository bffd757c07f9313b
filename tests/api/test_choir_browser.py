"""The Choir page in Debian's Chromium (Playwright, ``executable_path``; never a downloaded
browser) against a real ``becomingone choir up`` process on a free loopback port, with two
users in two browser contexts signed in by the login links it prints: a guest's spec shows at
once as pending, reaches a co-author's ApprovalPane live, is approved there and is published
on both pages with both wallets changed; a spec staking more than the wallet shows pending,
then rolls back with the server's reason. Screenshots go to out/choir/."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.browserhelpers import CHROMIUM, CLI, free_port

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
    ),
]

OUT = Path(__file__).resolve().parents[2] / "out" / "choir"
#: Milliseconds any one expectation on the page may take.
WAIT_MS = 20_000
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/choir/#token=[A-Za-z0-9_\-]+)")
#: What Chromium logs for a fetch answered with an error status (the one refusal we provoke).
REFUSED_LOG = "Failed to load resource: the server responded with a status of 409 (Conflict)"


@dataclass
class ChoirUp:
    """One ``becomingone choir up --serve 127.0.0.1:PORT`` process and the links it printed."""

    data_dir: Path
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line: the demo community on embedded defaults in ``data_dir``."""
        serve = ["--serve", f"127.0.0.1:{self.port}"]
        return [*CLI, "choir", "up", "--data-dir", str(self.data_dir), *serve]

    def start(self, seconds: float = 120.0) -> list[str]:
        """Start it and wait (bounded) for its API and its login links; the links."""
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"choir up ended with {self.proc.returncode}: {self.text()}")
            links = LINK.findall(self.text())
            if len(links) >= 2 and self.answers():
                return links
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"choir up did not come up on {self.url}: {self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/choir/threads", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, seconds: float = 20.0) -> int | None:
        """SIGTERM the process by its PID and wait for it (SIGKILL after ``seconds``)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=seconds)


@pytest.fixture(scope="module")
def choir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChoirUp, list[str]]]:
    """`choir up` with its demo community on a temporary data dir; stopped by PID."""
    tmp = tmp_path_factory.mktemp("choir")
    OUT.mkdir(parents=True, exist_ok=True)
    server = ChoirUp(tmp / "data", tmp / "up.log", free_port())
    links = server.start()
    try:
        yield server, links
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the whole module."""
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield b
        finally:
            b.close()


@dataclass
class Person:
    """One user's page in their own browser context, its console errors and the frames its
    WebSockets received."""

    page: Any
    errors: list[str]
    name: str
    frames: list[str | bytes]

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The data of the received frames of one event type."""
        got = [json.loads(f) for f in list(self.frames)]
        return [f["data"] for f in got if f.get("type") == type_]

    def role(self) -> str:
        return str(self.page.inner_text("#role"))

    def wallet(self) -> int:
        """The wallet the header shows (whole CHOIR; thin spaces between thousands, "−" for
        a stake held beyond it)."""
        text = str(self.page.inner_text("#wallet")).split("CHOIR")[0]
        value = int(re.sub(r"[^\d]", "", text))
        return -value if "\u2212" in text else value


def server_error(response: Any) -> str:
    """A server error answered to the page, named by its request (the console only says 500)."""
    return f"HTTP {response.status} {response.request.method} {response.url}"


def sign_in(browser: Any, link: str, width: int = 1280, height: int = 860) -> Person:
    """A fresh context (its own sessionStorage) on a login link, live on the demo thread."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(server_error(r)) if r.status >= 500 else None)
    frames: list[str | bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.set_default_timeout(WAIT_MS)
    page.goto(link)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_function("document.querySelector('#wallet').textContent.match(/\\d/)")
    name = str(page.inner_text("#me"))
    assert "token" not in page.url, "the token is taken off the address bar"
    return Person(page, errors, name, frames)


def people(browser: Any, links: list[str]) -> tuple[Person, list[Person]]:
    """A guest (not a co-author of the demo thread) and the co-authors, each signed in."""
    everyone = [sign_in(browser, link) for link in links]
    for p in everyone:
        p.page.wait_for_function("document.querySelector('#role').textContent !== ''")
    guests = [p for p in everyone if p.role().startswith("guest")]
    coauthors = [p for p in everyone if p.role() == "co-author"]
    assert guests and coauthors, [(p.name, p.role()) for p in everyone]
    return guests[-1], coauthors


def shoot(p: Person, name: str) -> None:
    """A screenshot of the page down to the end of its panes (docs/img/choir.png is one)."""
    bottom = p.page.evaluate(
        "Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
    )
    size = p.page.viewport_size
    p.page.screenshot(
        path=str(OUT / name),
        clip={"x": 0, "y": 0, "width": size["width"], "height": min(bottom + 8, size["height"])},
    )


def hold(page: Any, pattern: str) -> list[Any]:
    """Hold the page's requests matching ``pattern`` until the test lets them go (a slow
    network), so the optimistic state can be seen before the server answers."""
    held: list[Any] = []
    page.route(pattern, lambda route: held.append(route))
    return held


def release(page: Any, held: list[Any], pattern: str) -> None:
    """Let the held requests go on to the server and stop holding new ones."""
    page.wait_for_function("true")  # lets Playwright deliver the route callbacks
    assert len(held) == 1, held
    held.pop().continue_()
    page.unroute(pattern)


def test_a_spec_goes_live_to_a_coauthor_who_approves_it(
    browser: Any, choir: tuple[ChoirUp, list[str]]
) -> None:
    """Guest A types a spec and sees priors (the thread's published messages nearest in
    meaning), then submits it: it shows at once as pending (the request is still held) with
    its stake held from the wallet; co-author B's ApprovalPane shows it live (no reload), B
    approves it (counted at once, marked sending, the buttons gone while the vote's request
    is held), and both pages show it published while A's wallet lost the stake and the
    approvers' wallets gained it. Neither page logs a console error."""
    _, links = choir
    guest, coauthors = people(browser, links)
    before = {p.name: p.wallet() for p in [guest, *coauthors]}
    price = int(guest.page.input_value("#stake"))
    text = "High water comes about fifty minutes later each day."
    pattern = "**/api/v1/choir/threads/*/specs"
    held = hold(guest.page, pattern)
    guest.page.fill("#text", text)
    prior = guest.page.wait_for_selector("#priors:not([hidden]) #prior-list li")
    assert "tide" in prior.inner_text().lower(), "priors: the thread's published messages"
    guest.page.click("#send")
    local = guest.page.wait_for_selector("#messages li[data-status='local']")
    assert text in local.inner_text() and "sending" in local.inner_text()
    assert guest.wallet() == before[guest.name] - price, "the stake is held at once"
    release(guest.page, held, pattern)
    votes = "**/api/v1/choir/specs/*/votes"
    for b in coauthors:
        spec = b.page.locator("#specs li[data-spec]", has_text=text)
        held = hold(b.page, votes)
        spec.locator("button[data-choice='approve']").click()
        spec.locator(".chip.local", has_text="you: approve").wait_for()
        assert spec.locator("button[data-choice]").count() == 0, "one vote per co-author"
        assert spec.locator(".counts").inner_text().startswith("1 approve")
        release(b.page, held, votes)
    for p in [guest, *coauthors]:
        p.page.wait_for_selector(f"#messages li[data-status='published']:has-text('{text}')")
        p.page.wait_for_selector("#flow-list .chip.published")
        decided = [d for d in p.events("approved") if d.get("text") == text]
        assert [d["status"] for d in decided] == ["published"], "the live event is `approved`"
    guest.page.wait_for_function(
        f"document.querySelector('#wallet').textContent.replace(/\\D/g, '') === "
        f"'{before[guest.name] - price}'"
    )
    gained = sum(p.wallet() - before[p.name] for p in coauthors)
    assert 0 < gained <= price, (gained, price)
    guest.page.wait_for_function(  # A became a co-author
        "n => document.querySelector('#t-coauthors').textContent.split(', ').includes(n)",
        arg=guest.name,
    )
    guest.page.wait_for_function("document.querySelector('#role').textContent === 'co-author'")
    shoot(coauthors[0], "choir-coauthor.png")
    shoot(guest, "choir-guest.png")
    for p in [guest, *coauthors]:
        assert p.errors == [], (p.name, p.errors)
        p.page.context.close()


def test_a_stake_beyond_the_wallet_rolls_back_with_the_reason(
    browser: Any, choir: tuple[ChoirUp, list[str]]
) -> None:
    """A guest stakes more than the wallet holds: the spec shows pending at once with the
    stake held, then the server's 409 rolls it back on the page — struck through, the reason
    from the error body (insufficient funds), the wallet as before — and "edit again" puts
    its text back into the composer. The only console line is Chromium's own log of that one
    refused request."""
    _, links = choir
    guest, coauthors = people(browser, links)
    start = guest.wallet()
    pattern = "**/api/v1/choir/threads/*/specs"
    held = hold(guest.page, pattern)
    guest.page.fill("#text", "The tide tables for the whole year, on one stake.")
    guest.page.fill("#stake", str(start + 1_000_000))
    guest.page.click("#send")
    guest.page.wait_for_selector("#messages li[data-status='local']")
    assert guest.wallet() < 0, "the impossible stake is held at once"
    release(guest.page, held, pattern)
    row = guest.page.locator("#messages li[data-status='rejected']")
    row.wait_for()
    assert "insufficient funds" in row.inner_text()
    assert "rolled back" in row.inner_text()
    assert guest.wallet() == start
    guest.page.screenshot(path=str(OUT / "choir-rollback.png"))
    row.locator("button.edit").click()
    guest.page.wait_for_selector("#messages li[data-status='rejected']", state="detached")
    assert guest.page.input_value("#text") == "The tide tables for the whole year, on one stake."
    assert guest.errors == [REFUSED_LOG], guest.errors
    for p in coauthors:
        assert p.errors == [], (p.name, p.errors)
    for p in [guest, *coauthors]:
        p.page.context.close()


def test_the_page_on_a_narrow_screen(browser: Any, choir: tuple[ChoirUp, list[str]]) -> None:
    """At 390 px wide (a phone) the panes stack in one column, nothing scrolls sideways,
    and the composer and the wallet are on the page; no console error."""
    _, links = choir
    p = sign_in(browser, links[0], width=390, height=844)
    width = p.page.evaluate("document.documentElement.scrollWidth")
    lefts = p.page.evaluate(
        "[...document.querySelectorAll('main > .card')]"
        ".map(c => Math.round(c.getBoundingClientRect().left))"
    )
    p.page.screenshot(path=str(OUT / "choir-narrow.png"), full_page=True)
    assert width <= 390
    assert len(lefts) == 4 and len(set(lefts)) == 1
    assert p.page.is_visible("#send") and p.page.is_visible("#wallet")
    assert p.errors == []
    p.page.context.close()


def titled(p: Person, title: str) -> None:
    """Wait until the page shows the thread ``title``."""
    p.page.wait_for_function(
        "t => document.querySelector('#thread-title').textContent === t", arg=title
    )


def test_start_a_thread_and_switch_between_threads(
    browser: Any, choir: tuple[ChoirUp, list[str]]
) -> None:
    """A user starts a thread from the page: it opens at once with the user as its only
    co-author and the composer posting; the switcher lists both threads and switching back
    shows the demo thread's messages again, live."""
    _, links = choir
    p = sign_in(browser, links[0])
    demo = p.page.inner_text("#thread-title")
    p.page.fill("#new-title", "Night shifts")
    p.page.click("#new-thread button")
    titled(p, "Night shifts")
    p.page.wait_for_selector("#conn[data-state='live']")
    assert p.page.inner_text("#t-coauthors") == p.name
    assert p.role() == "co-author" and p.page.inner_text("#send") == "Post"
    assert p.page.locator("#thread-pick option").count() == 2
    p.page.fill("#text", "Low water at first light")
    p.page.click("#send")
    p.page.wait_for_selector("#messages li[data-status='published']:has-text('first light')")
    value = p.page.eval_on_selector_all(
        "#thread-pick option", "(os, t) => os.find(o => o.textContent.startsWith(t)).value", demo
    )
    p.page.select_option("#thread-pick", value=value)
    titled(p, demo)
    p.page.wait_for_selector("#conn[data-state='live']")
    assert p.page.locator("#messages li[data-status='published']").count() >= 1
    assert "Low water at first light" not in p.page.inner_text("#messages")
    assert p.errors == []
    p.page.context.close()


def test_the_page_resumes_after_the_server_restarts(browser: Any, tmp_path: Path) -> None:
    """Its own `choir up`: stopping it (SIGTERM by PID) shows "reconnecting"; a post made
    from the command line while it is away appears once a new `choir up` on the same port and
    data dir is back: the page reconnected with ``after=SEQ`` (the newest seq it applied) and
    shows the post in StreamChat and in the MessageFlow, without a reload. No console error
    but Chromium's own lines about the refused reconnection attempts."""
    server = ChoirUp(tmp_path / "data", tmp_path / "up.log", free_port())
    links = server.start()
    try:
        p = sign_in(browser, links[0])
        sockets: list[str] = []
        p.page.on("websocket", lambda ws: sockets.append(ws.url))
        thread = p.page.url.split("thread=")[1]
        assert server.stop() == 0
        p.page.wait_for_selector("#conn[data-state='reconnecting']")
        text = "Posted while the server was away."
        cmd = [*CLI, "choir", "post", thread, text, "--as", p.name]
        post = subprocess.run(
            [*cmd, "--data-dir", str(server.data_dir)], capture_output=True, timeout=180
        )
        assert post.returncode == 0, post.stderr
        server.start()
        p.page.wait_for_selector(f"#messages li[data-status='published']:has-text('{text}')")
        p.page.wait_for_selector("#conn[data-state='live']")
        p.page.wait_for_selector(f"#flow-list li:has-text('{text[:20]}')")
        assert any(re.search(r"after=\d+", url) for url in sockets), sockets
        assert all("token=" in url for url in sockets)
        errors = [e for e in p.errors if "WebSocket" not in e and "ERR_CONNECTION_REFUSED" not in e]
        assert errors == [], p.errors
        p.page.context.close()
    finally:
        server.stop()
