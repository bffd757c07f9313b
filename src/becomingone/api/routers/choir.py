"""``/api/v1/choir``: users, threads, messages, specs, votes, totals, priors and a WebSocket
per thread.

Rule: handlers are short and every ledger or store call runs in a worker thread (they block);
the service (:class:`~becomingone.api.choir.ChoirService`) is the app's ``state.choir``. A
user writes with ``Authorization: Bearer <their Choir token>`` and the server signs as them;
reads are open from loopback (like every read of the API). A refused transaction becomes the
one error body: 404 for an unknown thread, spec or user; 409 when the ledger's state forbids
it now (the ``code`` names the rule, :data:`RULE_CODES`); 422 for malformed input.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from becomingone.api.choir import ChoirService
from becomingone.api.choir_schemas import (
    ID,
    NOT_BLANK,
    DivestPublic,
    MessageCreate,
    MessagePublic,
    OutcomePublic,
    ReceiptPublic,
    SearchHit,
    SpecCreate,
    ThreadCreate,
    ThreadDetail,
    ThreadPublic,
    TotalsPublic,
    TransactionIn,
    UserPublic,
    VoteCreate,
    VotePublic,
)
from becomingone.api.deps import ApiState, State
from becomingone.api.errors import ApiProblem, ErrorBody
from becomingone.api.routers.events import loopback_or_public, refuse
from becomingone.api.settings import MAX_INDEX, is_loopback
from becomingone.api.tokens import TokenBucket
from becomingone.choir import (
    TREASURY,
    Receipt,
    Transaction,
    TxKind,
    User,
    content_hash,
    temperature,
    wallet,
)
from becomingone.errors import InputError

__all__ = ["RULE_CODES", "router", "rule_problem"]

T = TypeVar("T")

#: A refused transaction's message → (status, code): the ledger's state forbids it now.
RULE_CODES: tuple[tuple[str, int, str], ...] = (
    ("unknown thread", 404, "unknown_thread"),
    ("unknown spec", 404, "unknown_spec"),
    ("unknown user", 404, "unknown_user"),
    ("insufficient funds", 409, "insufficient_funds"),
    ("is not a co-author", 409, "not_coauthor"),
    ("is a co-author", 409, "is_coauthor"),
    ("vote after the window", 409, "window_closed"),
    ("already voted", 409, "double_vote"),
    ("already joined", 409, "already_joined"),
    ("is taken", 409, "name_taken"),
    (" exists", 409, "exists"),
    ("cannot vote on their own spec", 409, "own_spec"),
    ("is open for votes until", 409, "window_open"),
    ("is already", 409, "spec_decided"),
    ("below the thread's price", 409, "stake_below_price"),
    ("was used by a different transaction", 409, "id_conflict"),
)

_TEXT: dict[int, str] = {
    400: "Malformed request (the body is not JSON)",
    401: "Missing or unknown Choir user token",
    403: "A read from beyond loopback without a token; a signature that does not verify, or a"
    " text that is not the signed one (bad_signature, text_mismatch)",
    404: "No such thread, spec or user (code unknown_thread, unknown_spec, unknown_user)",
    405: "Writes are refused by a read-only server",
    409: "The ledger refuses it now; the code names the rule (insufficient_funds, not_coauthor,"
    " is_coauthor, window_closed, window_open, double_vote, own_spec, spec_decided,"
    " stake_below_price, id_conflict, already_joined, name_taken, exists)",
    413: "Request body larger than the limit",
    422: "Malformed input (names the field)",
    429: "Rate limit of the user's token exceeded (see Retry-After)",
    503: "The ledger or the content store failed",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _TEXT[s]} for s in statuses}


_READ = (403, 503)
_WRITE = (401, 405, 413, 422, 429, 503)
_RULED = (*_WRITE, 404, 409)
_BODY = (400, *_RULED)

router = APIRouter(prefix="/choir", tags=["choir"])


def rule_problem(exc: InputError) -> ApiProblem:
    """The answer for a refused Choir action (:data:`RULE_CODES`, else 422 ``invalid``)."""
    for needle, status, code in RULE_CODES:
        if needle in exc.message:
            return ApiProblem(status, code, exc.message, field=exc.parameter)
    return ApiProblem(422, "invalid", exc.message, field=exc.parameter)


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` in a worker thread; a refused action becomes its problem."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except InputError as exc:
        raise rule_problem(exc) from None


# --- access ------------------------------------------------------------------------------------


async def _service(request: Request) -> ChoirService:
    service: ChoirService = request.app.state.choir
    return service


Service = Annotated[ChoirService, Depends(_service)]


def _unauthorized(message: str) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", message, field="Authorization", headers={"WWW-Authenticate": "Bearer"}
    )


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send Authorization: Bearer <your Choir token>")
    return token.strip()


def _acting_user(state: State, service: Service, request: Request) -> User:
    """The user of the request's token (405 read-only, 401 unknown, 429 over the rate)."""
    if state.settings.read_only:
        raise ApiProblem(405, "read_only", "this server is read-only", headers={"Allow": ""})
    user = service.user_of_token(_bearer(request))
    if user is None:
        raise _unauthorized("unknown or revoked Choir token")
    _spend(state, f"choir:{user.id}")
    return user


def _spend(state: ApiState, name: str) -> None:
    s, now = state.settings, state.clock()
    bucket = state.buckets.setdefault(
        name, TokenBucket(rate=s.rate_per_second, burst=s.rate_burst, level=s.rate_burst, at=now)
    )
    if not bucket.take(now):
        wait = bucket.wait(now)
        raise ApiProblem(
            429,
            "rate_limited",
            f"over {s.rate_per_second:g} writes/s; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _reader(state: State, service: Service, request: Request) -> None:
    """Open from loopback (or with public reads); else a Choir token."""
    host = request.client.host if request.client else ""
    if state.settings.public_reads or is_loopback(host):
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or service.user_of_token(token.strip()) is None:
        raise ApiProblem(
            403, "remote_read", f"reads from {host} need a Choir token", field="Authorization"
        )


Actor = Annotated[User, Depends(_acting_user)]
Reader = Annotated[None, Depends(_reader)]
ThreadId = Annotated[str, Path(pattern=ID, description="Thread id")]
SpecId = Annotated[str, Path(pattern=ID, description="Spec id")]


# --- routes ------------------------------------------------------------------------------------


def _user_public(service: ChoirService, user: User) -> UserPublic:
    return UserPublic(id=user.id, name=user.name, wallet=service.ledger.balance(wallet(user.id)))


def _thread_public(service: ChoirService, thread_id: str) -> ThreadPublic:
    thread = service.ledger.thread(thread_id)
    if thread is None:
        raise InputError("thread", f"unknown thread {thread_id}")
    return ThreadPublic(
        id=thread.id,
        title=thread.title,
        balance=thread.balance,
        coauthors=list(thread.coauthors),
        price=service.ledger.price(thread.id, now=service.clock()),
        temperature=temperature(thread.balance, len(thread.coauthors)),
        coherence=service.coherence(thread.id),
    )


def _thread_detail(service: ChoirService, thread_id: str) -> ThreadDetail:
    public = _thread_public(service, thread_id)
    messages = [MessagePublic(**m) for m in service.messages(thread_id)]
    return ThreadDetail(**public.model_dump(), messages=messages)


async def _submit(
    service: ChoirService, tx: Transaction, *, text: str | None = None, client_id: str | None = None
) -> Receipt:
    """Apply ``tx``, push its events to the thread's sockets, then update the content store
    (so a subscriber hears of a write before the store has embedded its text)."""
    receipt, events = await _run(service.submit, tx, text=text, client_id=client_id, follow=False)
    service.publish(events)
    await _run(service.follow, tx)
    return receipt


async def _act(
    service: ChoirService,
    user: User,
    kind: TxKind,
    body: dict[str, Any],
    *,
    text: str | None = None,
    client_id: str | None = None,
) -> Receipt:
    """Sign as ``user`` (their custodial key) and :func:`_submit`."""
    tx = await _run(service.sign, user, kind, body)
    return await _submit(service, tx, text=text, client_id=client_id)


@router.get("/me", responses=_responses(401, 503))
async def me(service: Service, request: Request) -> UserPublic:
    """The user of the bearer token and their wallet."""
    user = await run_in_threadpool(service.user_of_token, _bearer(request))
    if user is None:
        raise _unauthorized("unknown or revoked Choir token")
    return await _run(_user_public, service, user)


@router.get("/users", responses=_responses(*_READ))
async def users(service: Service, _: Reader) -> list[UserPublic]:
    """Every user, by name."""

    def read() -> list[UserPublic]:
        return [_user_public(service, u) for u in service.ledger.users()]

    return await _run(read)


@router.get("/threads", responses=_responses(*_READ))
async def threads(service: Service, _: Reader) -> list[ThreadPublic]:
    """Every thread, oldest first."""

    def read() -> list[ThreadPublic]:
        return [_thread_public(service, t.id) for t in service.ledger.threads()]

    return await _run(read)


@router.post("/threads", status_code=201, responses=_responses(400, *_WRITE))
async def create_thread(service: Service, user: Actor, body: ThreadCreate) -> ThreadPublic:
    """Open a thread; its creator is its first co-author."""
    tx_body = service.new_thread_body(body.title)
    await _act(service, user, TxKind.THREAD, tx_body)
    return await _run(_thread_public, service, tx_body["thread"])


@router.get("/threads/{thread_id}", responses=_responses(404, 422, *_READ))
async def thread(service: Service, _: Reader, thread_id: ThreadId) -> ThreadDetail:
    """A thread with its posts and specs, oldest first."""
    return await _run(_thread_detail, service, thread_id)


async def _write_message(
    service: ChoirService, user: User, thread_id: str, body: MessageCreate, *, spec: bool
) -> MessagePublic:
    def make() -> dict[str, Any]:
        if not spec:
            return service.message_body(thread_id, body.text, None)
        stake = body.stake if isinstance(body, SpecCreate) else None
        if stake is None:  # default: the thread's price now
            stake = service.ledger.price(thread_id, now=service.clock())
        return service.message_body(thread_id, body.text, stake)

    if not body.text.strip():
        raise ApiProblem(422, "invalid", "must not be blank", field="body.text")
    tx_body = await _run(make)
    kind = TxKind.SUBMIT if spec else TxKind.POST
    await _act(service, user, kind, tx_body, text=body.text, client_id=body.client_id)
    message_id = tx_body.get("spec", tx_body.get("message"))
    found = [m for m in await _run(service.messages, thread_id) if m["id"] == message_id]
    return MessagePublic(**found[0])


@router.post("/threads/{thread_id}/messages", status_code=201, responses=_responses(*_BODY))
async def post_message(
    service: Service, user: Actor, thread_id: ThreadId, body: MessageCreate
) -> MessagePublic:
    """A co-author posts (published at once)."""
    return await _write_message(service, user, thread_id, body, spec=False)


@router.post("/threads/{thread_id}/specs", status_code=201, responses=_responses(*_BODY))
async def submit_spec(
    service: Service, user: Actor, thread_id: ThreadId, body: SpecCreate
) -> MessagePublic:
    """Anyone else submits a spec; its stake (>= the price) goes to escrow until decided."""
    return await _write_message(service, user, thread_id, body, spec=True)


def _spec_message(service: ChoirService, spec_id: str) -> dict[str, Any]:
    spec = service.ledger.spec(spec_id)
    if spec is None:
        raise InputError("spec", f"unknown spec {spec_id}")
    return next(m for m in service.messages(spec.thread) if m["id"] == spec_id)


@router.post("/specs/{spec_id}/votes", status_code=201, responses=_responses(*_BODY))
async def vote(service: Service, user: Actor, spec_id: SpecId, body: VoteCreate) -> VotePublic:
    """A co-author approves or denies a pending spec; the last vote decides it."""
    tx_body = {"spec": spec_id, "approve": body.choice == "approve"}
    receipt = await _act(service, user, TxKind.VOTE, tx_body, client_id=body.client_id)
    message = await _run(_spec_message, service, spec_id)
    return VotePublic(
        spec_id=spec_id, voter=user.id, choice=body.choice, status=message["status"],
        seq=receipt.seq,
    )  # fmt: skip


@router.post("/specs/{spec_id}/close", responses=_responses(*_RULED))
async def close(service: Service, user: Actor, spec_id: SpecId) -> OutcomePublic:
    """Settle a spec whose window is over or whose co-authors all voted (any user may)."""
    receipt = await _act(service, user, TxKind.CLOSE, {"spec": spec_id})
    message = await _run(_spec_message, service, spec_id)
    return OutcomePublic(message=MessagePublic(**message), seq=receipt.seq)


@router.post("/threads/{thread_id}/divest", responses=_responses(*_RULED))
async def divest(service: Service, user: Actor, thread_id: ThreadId) -> DivestPublic:
    """A co-author takes balance / co-authors from the thread and leaves it."""
    before = await _run(service.ledger.balance, wallet(user.id))
    receipt = await _act(service, user, TxKind.DIVEST, {"thread": thread_id})
    after = await _run(service.ledger.balance, wallet(user.id))
    return DivestPublic(thread_id=thread_id, user_id=user.id, paid=after - before, seq=receipt.seq)


@router.post(
    "/transactions",
    status_code=201,
    responses=_responses(400, 403, 404, 405, 409, 413, 422, 429, 503),
)
async def transaction(service: Service, state: State, body: TransactionIn) -> ReceiptPublic:
    """Submit a transaction signed by its actor (a user who holds their own key); the ledger
    checks the signature (403 ``bad_signature`` if it does not verify; 403 ``text_mismatch``
    for a text that is not the signed one). ``join`` needs no
    account; the rest need the actor to have joined. A post or a spec carries its ``text``
    beside the signed body (its SHA-256 must be the body's ``content_hash``); the text goes to
    the content store like any other."""
    if state.settings.read_only:
        raise ApiProblem(405, "read_only", "this server is read-only", headers={"Allow": ""})
    _spend(state, f"choir-tx:{body.actor}")
    doc = body.model_dump()
    text: str | None = doc.pop("text", None)
    try:
        tx = Transaction.from_json(doc)
    except InputError as exc:
        if exc.parameter == "signature":
            raise ApiProblem(403, "bad_signature", exc.message, field="body.signature") from None
        raise ApiProblem(422, "invalid", exc.message, field=f"body.{exc.parameter}") from None
    if text is not None and content_hash(text) != tx.body["content_hash"]:
        message = "its SHA-256 is not the signed content_hash"
        raise ApiProblem(403, "text_mismatch", message, field="body.text")
    receipt = await _submit(service, tx, text=text)
    return ReceiptPublic(
        tx_id=receipt.tx_id, kind=receipt.kind.value, seq=receipt.seq, replayed=receipt.replayed
    )


@router.get("/totals", responses=_responses(*_READ))
async def totals(service: Service, _: Reader) -> TotalsPublic:
    """The invariant: treasury + wallets + threads + escrow against the total supply."""

    def read() -> TotalsPublic:
        t = service.ledger.totals()
        return TotalsPublic(
            treasury=service.ledger.balance(TREASURY),
            wallets=t.wallets,
            threads=t.threads,
            escrow=t.escrow,
            total=t.total,
            supply=t.supply,
            invariant=t.ok,
            residual=t.total - t.supply,
        )

    return await _run(read)


@router.get("/search", responses=_responses(404, 422, *_READ))
async def search(
    service: Service,
    _: Reader,
    q: Annotated[
        str, Query(min_length=1, max_length=2_000, pattern=NOT_BLANK, description="Text to match")
    ],
    thread: Annotated[str | None, Query(pattern=ID, description="Only this thread")] = None,
    k: Annotated[int, Query(ge=1, le=100, description="How many")] = 5,
) -> list[SearchHit]:
    """Priors: the published messages nearest ``q`` in meaning, best first."""
    if not q.strip():
        raise ApiProblem(422, "invalid", "must not be blank", field="query.q")

    def read() -> list[SearchHit]:
        if thread is not None and service.ledger.thread(thread) is None:
            raise InputError("thread", f"unknown thread {thread}")
        return [SearchHit(**h) for h in service.search(q, thread=thread, k=k)]

    return await _run(read)


# --- the WebSocket -------------------------------------------------------------------------------


def _after(ws: WebSocket) -> int:
    text = ws.query_params.get("after", "-1")
    try:
        after = int(text)
    except ValueError:
        raise InputError("after", f"{text!r} is not a chain seq") from None
    if not -1 <= after <= MAX_INDEX:
        raise InputError("after", f"must be in -1..{MAX_INDEX}, got {after}")
    return after


async def _may_read(ws: WebSocket, service: ChoirService) -> bool:
    if loopback_or_public(ws):
        return True
    token = ws.query_params.get("token") or ws.headers.get("authorization", "").partition(" ")[2]
    return bool(token) and await run_in_threadpool(service.user_of_token, token.strip()) is not None


@router.websocket("/threads/{thread_id}/events")
async def thread_events(ws: WebSocket, thread_id: str) -> None:
    """A thread's events as ``{type, seq, data}`` frames: the stored ones after ``after``,
    one ``resumed`` frame, then live ones. ``token`` may be given in the query."""
    service: ChoirService = ws.app.state.choir
    if not await _may_read(ws, service):
        await refuse(ws, "remote_read", "reads from beyond loopback need a Choir token", "token")
        return
    try:
        after = _after(ws)
        if await run_in_threadpool(service.ledger.thread, thread_id) is None:
            raise InputError("thread", f"unknown thread {thread_id}")
    except InputError as exc:
        problem = rule_problem(exc)
        await refuse(ws, problem.code, problem.message, problem.field)
        return
    await ws.accept()
    sub, stored = service.subscribe(thread_id, after)
    try:
        last = after
        for event in stored:
            await ws.send_json(event.frame())
            last = event.seq
        resumed = {"type": "resumed", "seq": last, "data": {"replayed": len(stored)}}
        await ws.send_json(resumed)
        await _stream(ws, sub.queue, last)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        service.unsubscribe(sub)
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await ws.close()


async def _stream(ws: WebSocket, queue: asyncio.Queue[Any], last: int) -> None:
    """Live events newer than ``last`` until the client goes."""

    async def pump() -> None:
        while True:
            event = await queue.get()
            if event.seq > last:
                await ws.send_json(event.frame())

    async def until_closed() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    tasks = {asyncio.ensure_future(pump()), asyncio.ensure_future(until_closed())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
