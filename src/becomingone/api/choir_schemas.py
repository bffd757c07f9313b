"""The bodies and answers of the Choir routes (``/api/v1/choir``), as pydantic models.

Rule: values only; what each field means and its limits, so the OpenAPI document is exact
(schemathesis generates from it). A pre-signed transaction's body has one model per kind
with exactly the fields the ledger checks; only its signature is beyond a schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from becomingone.choir import TOTAL_SUPPLY

__all__ = [
    "DivestPublic",
    "MessageCreate",
    "MessagePublic",
    "OutcomePublic",
    "ReceiptPublic",
    "SearchHit",
    "SpecCreate",
    "ThreadCreate",
    "ThreadDetail",
    "ThreadPublic",
    "TotalsPublic",
    "TransactionIn",
    "UserPublic",
    "VoteCreate",
    "VotePublic",
    "Votes",
]

ID = r"^[A-Za-z0-9._-]{1,64}$"
CLIENT_ID = r"^[A-Za-z0-9._:-]{1,64}$"
#: A title: 1-200 characters, no control character, not blank.
TITLE = r"^[^\x00-\x1f]*[^\x00-\x1f\s][^\x00-\x1f]*$"
#: A text or a query: not blank.
NOT_BLANK = r"\S"
_HASH = r"^[0-9a-f]{64}$"


class UserPublic(BaseModel):
    """A user: key id, name and wallet (CHOIR)."""

    id: str
    name: str
    wallet: int


class ThreadPublic(BaseModel):
    """A thread: balance and price in CHOIR, temperature T = balance / co-authors, and the
    KAIROS coherence of its published messages (null below 10 of them)."""

    id: str
    title: str
    balance: int
    coauthors: list[str] = Field(description="User ids")
    price: int
    temperature: float
    coherence: float | None


class Votes(BaseModel):
    """Voter ids by choice."""

    approve: list[str]
    deny: list[str]


class MessagePublic(BaseModel):
    """A post or a spec. ``status``: a post is published; a spec is pending, then published,
    denied (``outcome`` denied or mixed) or expired (its stake refunded)."""

    id: str
    thread_id: str
    author: str
    author_name: str
    text: str
    status: Literal["pending", "published", "denied", "expired", "refunded"]
    outcome: str = Field(description="posted, or the spec's status: pending, approved, ...")
    stake: int
    created_at: float
    votes: Votes
    closes_at: float | None


class ThreadDetail(ThreadPublic):
    """A thread and its messages, oldest first."""

    messages: list[MessagePublic]


class ThreadCreate(BaseModel):
    """A new thread."""

    title: str = Field(min_length=1, max_length=200, pattern=TITLE)


class MessageCreate(BaseModel):
    """A co-author's post; ``client_id`` comes back on the post's events."""

    text: str = Field(min_length=1, max_length=10_000, pattern=NOT_BLANK)
    client_id: str | None = Field(default=None, pattern=CLIENT_ID)


class SpecCreate(MessageCreate):
    """A spec; ``stake`` in CHOIR (default: the thread's price now)."""

    stake: int | None = Field(default=None, ge=1, le=TOTAL_SUPPLY)


class VoteCreate(BaseModel):
    """A co-author's vote on a pending spec."""

    choice: Literal["approve", "deny"]
    client_id: str | None = Field(default=None, pattern=CLIENT_ID)


class VotePublic(BaseModel):
    """A vote as recorded; ``status`` is the spec's after it (all voted: decided)."""

    spec_id: str
    voter: str
    choice: Literal["approve", "deny"]
    status: Literal["pending", "published", "denied", "expired", "refunded"]
    seq: int


class OutcomePublic(BaseModel):
    """A settled spec: its message (status published, denied or expired) and chain seq."""

    message: MessagePublic
    seq: int


class DivestPublic(BaseModel):
    """A co-author left: ``paid`` CHOIR went to their wallet."""

    thread_id: str
    user_id: str
    paid: int
    seq: int


class TotalsPublic(BaseModel):
    """The invariant's terms: treasury + wallets + threads + escrow = supply, none negative."""

    treasury: int
    wallets: int
    threads: int
    escrow: int
    total: int
    supply: int
    invariant: bool
    residual: int = Field(description="total - supply: always 0")


class SearchHit(BaseModel):
    """A published message near the query (cosine similarity)."""

    message_id: str
    thread_id: str
    text: str
    score: float


class ReceiptPublic(BaseModel):
    """What the ledger did: the chain ``seq``; ``replayed`` when the id was applied before."""

    tx_id: str
    kind: str
    seq: int
    replayed: bool


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JoinBody(_Body):
    """Join: a key becomes the user ``name``."""

    name: str = Field(pattern=ID)


class ThreadBody(_Body):
    """Open the thread ``thread`` titled ``title``."""

    thread: str = Field(pattern=ID)
    title: str = Field(min_length=1, max_length=200, pattern=TITLE)


class PostBody(_Body):
    """Post the message ``message`` (its SHA-256) to ``thread``."""

    thread: str = Field(pattern=ID)
    message: str = Field(pattern=ID)
    content_hash: str = Field(pattern=_HASH)


class SubmitBody(_Body):
    """Submit the spec ``spec`` to ``thread`` with ``stake`` CHOIR."""

    thread: str = Field(pattern=ID)
    spec: str = Field(pattern=ID)
    content_hash: str = Field(pattern=_HASH)
    stake: int = Field(ge=1, le=TOTAL_SUPPLY)


class VoteBody(_Body):
    """Approve or deny ``spec``."""

    spec: str = Field(pattern=ID)
    approve: bool


class SpecBody(_Body):
    """Close ``spec``."""

    spec: str = Field(pattern=ID)


class DivestBody(_Body):
    """Divest from ``thread``."""

    thread: str = Field(pattern=ID)


class _Signed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID)
    actor: str = Field(pattern=r"^[0-9a-f]{64}$", description="Ed25519 public key, hex")
    signature: str = Field(pattern=r"^[0-9a-f]{128}$", description="Ed25519 signature, hex")


class JoinTx(_Signed):
    """A signed join."""

    kind: Literal["join"]
    body: JoinBody


class ThreadTx(_Signed):
    """A signed new thread."""

    kind: Literal["thread"]
    body: ThreadBody


class PostTx(_Signed):
    """A signed post."""

    kind: Literal["post"]
    body: PostBody
    text: str = Field(
        min_length=1,
        max_length=10_000,
        pattern=NOT_BLANK,
        description="The text, outside the signed body: its SHA-256 must be content_hash",
    )


class SubmitTx(_Signed):
    """A signed spec."""

    kind: Literal["submit"]
    body: SubmitBody
    text: str = Field(
        min_length=1,
        max_length=10_000,
        pattern=NOT_BLANK,
        description="The text, outside the signed body: its SHA-256 must be content_hash",
    )


class VoteTx(_Signed):
    """A signed vote."""

    kind: Literal["vote"]
    body: VoteBody


class CloseTx(_Signed):
    """A signed close."""

    kind: Literal["close"]
    body: SpecBody


class DivestTx(_Signed):
    """A signed divest."""

    kind: Literal["divest"]
    body: DivestBody


#: A transaction signed by its actor (:meth:`~becomingone.choir.Transaction.to_json`).
TransactionIn = Annotated[
    JoinTx | ThreadTx | PostTx | SubmitTx | VoteTx | CloseTx | DivestTx,
    Field(discriminator="kind"),
]
