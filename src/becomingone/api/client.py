"""A typed Python client of the cell and cluster API: httpx for routes, websockets for events.

Rule: one method per route, returning the route's response model; an error answer becomes an
:class:`ApiError` carrying the status and the error body's ``code``, ``message`` and
``field``; a connection failure becomes a ``TransportError``. The event stream can resume: it
remembers the last ``seq`` it yielded and reconnects with ``since=`` that seq. For example::

    with CellClient("http://127.0.0.1:8787", token=token) as api:
        api.post_signals([0.1, 0.2, 0.3])
        print(api.coherence_now().sync)
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx
import websockets
from pydantic import BaseModel

from becomingone.api.app import PREFIX
from becomingone.api.choir_schemas import (
    DivestPublic,
    MessagePublic,
    OutcomePublic,
    ReceiptPublic,
    SearchHit,
    ThreadDetail,
    ThreadPublic,
    TotalsPublic,
    UserPublic,
    VotePublic,
)
from becomingone.api.schemas import (
    ClusterHistory,
    ClusterMemberPublic,
    ClusterNow,
    CoherenceHistory,
    CoherenceNow,
    GlyphCreate,
    GlyphList,
    GlyphPublic,
    NodePublic,
    NodeState,
    ProposalGlyph,
    ProposalList,
    ProposalPublic,
    ProposalText,
    RecordPage,
    RecordPublic,
    RolesPublic,
    SignalsAccepted,
    VerifyPublic,
    VoteCreate,
)
from becomingone.choir import Transaction
from becomingone.errors import BecomingOneError, InputError, TransportError

__all__ = ["ApiError", "CellClient", "ChoirClient"]

M = TypeVar("M", bound=BaseModel)


class ApiError(BecomingOneError):
    """The server refused: HTTP ``status`` and the error body's ``code``, ``message``, ``field``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field
        where = f" ({field})" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")


class CellClient:
    """The API of one cell at ``url`` (``http://127.0.0.1:8787``); ``token`` for writes."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        #: TLS trust: only ``ca`` when given (an https API with the cluster's certificates),
        #: else the system's trust store.
        self.tls: ssl.SSLContext | None = None
        if ca is not None:
            try:
                self.tls = ssl.create_default_context(cafile=os.fspath(ca))
            except (OSError, ssl.SSLError) as exc:
                raise InputError("ca", f"{os.fspath(ca)}: {exc}") from exc
        self._http = httpx.Client(
            base_url=self.url + PREFIX,
            headers=headers,
            timeout=timeout,
            verify=self.tls if self.tls is not None else True,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> CellClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._answer(method, path, **kwargs)[1]

    def _answer(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """The status and JSON body of a successful call (else :class:`ApiError`)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {self.url}{PREFIX}{path}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response.status_code, response.json()

    def _get(self, model: type[M], path: str, **params: Any) -> M:
        query = {k: v for k, v in params.items() if v is not None}
        return model.model_validate(self._call("GET", path, params=query))

    # -- node ------------------------------------------------------------------------------------

    def node(self) -> NodePublic:
        """Who the cell is."""
        return self._get(NodePublic, "/node")

    def config(self) -> dict[str, Any]:
        """The cell's config, secrets redacted."""
        out: dict[str, Any] = self._call("GET", "/node/config")
        return out

    def state(self) -> NodeState:
        """Counts, samples, inbox and the API's error counts."""
        return self._get(NodeState, "/node/state")

    # -- coherence -------------------------------------------------------------------------------

    def coherence_now(self) -> CoherenceNow:
        """The newest decision."""
        return self._get(CoherenceNow, "/coherence/now")

    def coherence_history(
        self, start: float | None = None, end: float | None = None, points: int | None = None
    ) -> CoherenceHistory:
        """History over ``[start, end]`` stream seconds, at most ``points`` points."""
        return self._get(
            CoherenceHistory, "/coherence/history", start=start, end=end, points=points
        )

    # -- signals ---------------------------------------------------------------------------------

    def post_signals(self, samples: Sequence[float] | Sequence[Sequence[float]]) -> SignalsAccepted:
        """Queue samples (numbers, or rows of ``channels`` numbers) for the running cell."""
        rows = [list(map(float, s)) if isinstance(s, Sequence) else float(s) for s in samples]
        body = json.dumps({"samples": rows}, allow_nan=True)
        headers = {"Content-Type": "application/json"}
        return SignalsAccepted.model_validate(
            self._call("POST", "/signals", content=body, headers=headers)
        )

    def post_csv(self, text: str) -> SignalsAccepted:
        """Queue samples given as CSV text (one sample per line)."""
        headers = {"Content-Type": "text/csv"}
        return SignalsAccepted.model_validate(
            self._call("POST", "/signals", content=text.encode(), headers=headers)
        )

    # -- witness ---------------------------------------------------------------------------------

    def verify(self) -> VerifyPublic:
        """Verify the whole chain on the server."""
        return self._get(VerifyPublic, "/witness/verify")

    def records(self, start: int = 0, limit: int = 100) -> RecordPage:
        """One page of witness records."""
        return self._get(RecordPage, "/witness/records", start=start, limit=limit)

    def record(self, seq: int) -> RecordPublic:
        """The witness record ``seq``."""
        return self._get(RecordPublic, f"/witness/records/{seq}")

    # -- events ----------------------------------------------------------------------------------

    def cluster(self) -> ClusterNow:
        """The served cluster and its newest frame (every cell)."""
        return self._get(ClusterNow, "/cluster")

    def cluster_member(self, name: str) -> ClusterMemberPublic:
        """One cell of the served cluster at the newest tick."""
        return self._get(ClusterMemberPublic, f"/cluster/members/{name}")

    def cluster_history(self, since: int = -1, limit: int = 1000, every: int = 1) -> ClusterHistory:
        """C, band and T_global per kept tick after ``since``."""
        return self._get(ClusterHistory, "/cluster/history", since=since, limit=limit, every=every)

    def glyphs(self) -> GlyphList:
        """Every glyph of the served cluster with its owner."""
        return self._get(GlyphList, "/cluster/glyphs")

    def submit_glyph(
        self, kind: str, *, cell: str | None = None, **fields: Any
    ) -> GlyphPublic | ProposalPublic:
        """Run a new glyph of ``kind`` (``payload``, ``theta``, ``energy``, ``lifetime``,
        ``kappa``, ``id`` as keywords) on ``cell`` or the least-loaded cell; an AUTONOMOUS
        cluster proposes it instead (the proposal)."""
        body = GlyphCreate(kind=kind, cell=cell, **fields).model_dump(exclude_none=True)
        return _glyph_or_proposal(*self._answer("POST", "/cluster/glyphs", json=body))

    def cancel_glyph(self, glyph_id: str) -> GlyphPublic | ProposalPublic:
        """End a glyph on its owner (its last state); an AUTONOMOUS cluster proposes it
        instead (the proposal)."""
        return _glyph_or_proposal(*self._answer("DELETE", f"/cluster/glyphs/{glyph_id}"))

    def roles(self) -> RolesPublic:
        """The lifecycle with its conditions and each cell's state and role (``--roles``)."""
        return self._get(RolesPublic, "/cluster/roles")

    def proposals(self, *, operator: bool = False, limit: int = 100) -> ProposalList:
        """Open and decided proposals, newest first (``operator``: only the API's)."""
        return self._get(ProposalList, "/cluster/proposals", operator=operator, limit=limit)

    def proposal(self, proposal_id: str) -> ProposalPublic:
        """One proposal with its votes."""
        return self._get(ProposalPublic, f"/cluster/proposals/{proposal_id}")

    def propose(
        self, text: str | None = None, *, glyph: GlyphCreate | None = None
    ) -> ProposalPublic:
        """Put a text or a glyph (exactly one) to the cluster's Validators."""
        body: ProposalText | ProposalGlyph
        try:
            if text is not None and glyph is None:
                body = ProposalText(text=text)
            elif glyph is not None and text is None:
                body = ProposalGlyph(glyph=glyph)
            else:
                raise InputError("text", "give a text or a glyph (one of them)")
        except ValueError as exc:
            raise InputError("text", str(exc).splitlines()[-1].strip()) from None
        doc = self._call("POST", "/cluster/proposals", json=body.model_dump(exclude_none=True))
        return ProposalPublic.model_validate(doc)

    def vote(self, proposal_id: str, cell: str, yes: bool) -> ProposalPublic:
        """Vote yes or no on ``proposal_id`` as ``cell``; the proposal after the vote."""
        body = VoteCreate(cell=cell, vote="yes" if yes else "no").model_dump()
        doc = self._call("POST", f"/cluster/proposals/{proposal_id}/votes", json=body)
        return ProposalPublic.model_validate(doc)

    def events_url(
        self, types: Sequence[str] = (), since: int | None = None, *, path: str = "/events"
    ) -> str:
        """The WebSocket URL of an event stream (``path``) with a filter and a resume seq."""
        query = []
        if types:
            query.append("types=" + ",".join(types))
        if since is not None:
            query.append(f"since={since}")
        ws = "ws" + self.url.removeprefix("http")
        return f"{ws}{PREFIX}{path}" + ("?" + "&".join(query) if query else "")

    def cluster_events(
        self,
        types: Sequence[str] = (),
        since: int | None = None,
        *,
        reconnects: int = 0,
        retry_seconds: float = 0.5,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of the served cluster (``seq`` = tick): ``cluster.tick`` frames and the
        typed glyph, role, lifecycle and proposal events (``types`` filters them; default all)
        and ``resumed`` markers, resuming on a reconnect as :meth:`events`."""
        return self.events(
            types,
            since=since,
            reconnects=reconnects,
            retry_seconds=retry_seconds,
            path="/cluster/events",
        )

    async def events(
        self,
        types: Sequence[str] = (),
        since: int | None = None,
        *,
        reconnects: int = 0,
        retry_seconds: float = 0.5,
        path: str = "/events",
    ) -> AsyncIterator[dict[str, Any]]:
        """Messages of the event stream (events and ``resumed`` markers). After a lost
        connection, reconnect up to ``reconnects`` times. Several events share one ``seq`` (a
        record's, or a tick's), so a resume asks for everything after the seq *before* the
        last one seen and skips the events of the last seq it has yielded already: nothing
        is missed or yielded twice."""
        last, seen, left = since, 0, reconnects
        while True:
            resume, skip = last, 0
            if last is not None and last > 0 and seen:
                resume, skip = last - 1, seen
            try:
                url = self.events_url(types, resume, path=path)
                tls = self.tls if url.startswith("wss:") else None
                async with websockets.connect(url, ssl=tls) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") != "resumed":
                            seq = int(message["seq"])
                            if seq == last and skip:
                                skip -= 1
                                continue
                            seen = seen + 1 if seq == last else 1
                            last = seq
                        yield message
            except (OSError, websockets.ConnectionClosed) as exc:
                if left <= 0:
                    raise TransportError(f"event stream {self.url}: {exc}") from exc
            if left <= 0:
                return
            left -= 1
            await asyncio.sleep(retry_seconds)


def _glyph_or_proposal(status: int, doc: Any) -> GlyphPublic | ProposalPublic:
    """A glyph write's answer: the glyph, or (202) the proposal it became."""
    if status == 202:
        return ProposalPublic.model_validate(doc)
    return GlyphPublic.model_validate(doc)


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()["error"]
        return ApiError(
            response.status_code, str(body["code"]), str(body["message"]), body.get("field")
        )
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "http_error", response.text[:200])


class ChoirClient:
    """The Choir routes at ``url`` as the user of ``token`` (None: reads only).

    One method per route, each returning the route's model; an error answer is an
    :class:`ApiError` whose ``code`` names the rule (``insufficient_funds``, ``not_coauthor``,
    ...). :meth:`events` follows a thread's WebSocket and resumes after the last ``seq``.
    For example::

        with ChoirClient("http://127.0.0.1:8795", token=token) as choir:
            thread = choir.create_thread("tides")
            choir.post(thread.id, "the moon pulls the sea")
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + PREFIX, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> ChoirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, "/choir" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {self.url}{PREFIX}/choir{path}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response.json()

    def me(self) -> UserPublic:
        """The user of the token and their wallet."""
        return UserPublic.model_validate(self._call("GET", "/me"))

    def users(self) -> list[UserPublic]:
        """Every user, by name."""
        return [UserPublic.model_validate(u) for u in self._call("GET", "/users")]

    def threads(self) -> list[ThreadPublic]:
        """Every thread, oldest first."""
        return [ThreadPublic.model_validate(t) for t in self._call("GET", "/threads")]

    def create_thread(self, title: str) -> ThreadPublic:
        """Open a thread (the token's user is its first co-author)."""
        return ThreadPublic.model_validate(self._call("POST", "/threads", json={"title": title}))

    def thread(self, thread_id: str) -> ThreadDetail:
        """A thread and its messages, oldest first."""
        return ThreadDetail.model_validate(self._call("GET", f"/threads/{thread_id}"))

    def post(self, thread_id: str, text: str, *, client_id: str | None = None) -> MessagePublic:
        """Post ``text`` as a co-author."""
        body = {"text": text, "client_id": client_id}
        doc = self._call("POST", f"/threads/{thread_id}/messages", json=_some(body))
        return MessagePublic.model_validate(doc)

    def submit(
        self,
        thread_id: str,
        text: str,
        *,
        stake: int | None = None,
        client_id: str | None = None,
    ) -> MessagePublic:
        """Submit ``text`` as a spec with ``stake`` CHOIR (default: the price now)."""
        body = {"text": text, "stake": stake, "client_id": client_id}
        doc = self._call("POST", f"/threads/{thread_id}/specs", json=_some(body))
        return MessagePublic.model_validate(doc)

    def vote(self, spec_id: str, approve: bool, *, client_id: str | None = None) -> VotePublic:
        """Approve (``approve``) or deny a pending spec as a co-author."""
        body = {"choice": "approve" if approve else "deny", "client_id": client_id}
        doc = self._call("POST", f"/specs/{spec_id}/votes", json=_some(body))
        return VotePublic.model_validate(doc)

    def close_spec(self, spec_id: str) -> OutcomePublic:
        """Settle a spec whose window is over or whose co-authors all voted."""
        return OutcomePublic.model_validate(self._call("POST", f"/specs/{spec_id}/close"))

    def divest(self, thread_id: str) -> DivestPublic:
        """Leave a thread with its balance / co-authors."""
        return DivestPublic.model_validate(self._call("POST", f"/threads/{thread_id}/divest"))

    def submit_transaction(self, tx: Transaction, text: str | None = None) -> ReceiptPublic:
        """Submit a transaction signed by its actor (a user holding their own key); a post or
        a spec with its ``text``."""
        doc = tx.to_json() | _some({"text": text})
        return ReceiptPublic.model_validate(self._call("POST", "/transactions", json=doc))

    def totals(self) -> TotalsPublic:
        """The invariant's terms."""
        return TotalsPublic.model_validate(self._call("GET", "/totals"))

    def search(self, q: str, *, thread: str | None = None, k: int = 5) -> list[SearchHit]:
        """Priors: published messages nearest ``q`` in meaning."""
        params = _some({"q": q, "thread": thread, "k": k})
        return [SearchHit.model_validate(h) for h in self._call("GET", "/search", params=params)]

    def events_url(self, thread_id: str, after: int | None = None) -> str:
        """The WebSocket URL of a thread's events (resuming after ``after``; the token in
        the query, as a browser sends it)."""
        query = _some({"after": after, "token": self.token})
        ws = "ws" + self.url.removeprefix("http")
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{ws}{PREFIX}/choir/threads/{thread_id}/events" + (f"?{tail}" if tail else "")

    async def events(
        self,
        thread_id: str,
        after: int | None = None,
        *,
        reconnects: int = 0,
        retry_seconds: float = 0.5,
    ) -> AsyncIterator[dict[str, Any]]:
        """Frames of a thread's WebSocket (events and ``resumed`` markers). After a lost
        connection, reconnect up to ``reconnects`` times, resuming after the last seq seen
        (the events of one seq arrive together, so none is lost or repeated)."""
        last, left = after, reconnects
        while True:
            try:
                async with websockets.connect(self.events_url(thread_id, last)) as ws:
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame.get("type") != "resumed":
                            last = int(frame["seq"])
                        yield frame
            except (OSError, websockets.ConnectionClosed) as exc:
                if left <= 0:
                    raise TransportError(f"Choir events {self.url}: {exc}") from exc
            if left <= 0:
                return
            left -= 1
            await asyncio.sleep(retry_seconds)


def _some(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the None ones."""
    return {k: v for k, v in values.items() if v is not None}
