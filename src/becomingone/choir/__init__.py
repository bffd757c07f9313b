"""Choir: threads, co-authors, specs, votes and a conserved token ledger (DESIGN.md §7).

Rule: the rules are sans-IO (:mod:`~becomingone.choir.rules` over a read view, time as
``now``); users are Ed25519 keys and every transaction is signed by its actor; a ledger
adapter (SQLite by default, PostgreSQL to scale out) applies a transaction, its record in the
signed hash chain (:mod:`becomingone.witnessing`) and the invariant check in one database
transaction. The content store (:mod:`~becomingone.choir.store`, Qdrant; qdrant-edge by
default, :mod:`~becomingone.choir.edge`) keeps message text and embeddings and follows the
ledger (:mod:`~becomingone.choir.reconcile`); the web UI comes later.
"""

from becomingone.choir.edge import EdgeStore, edge_available
from becomingone.choir.home import STORE_ENGINES, ChoirHome, check_id, check_user_name, embedder
from becomingone.choir.ledger import Ledger, Receipt
from becomingone.choir.model import (
    TREASURY,
    Account,
    AccountKind,
    Message,
    Spec,
    SpecStatus,
    Thread,
    Totals,
    User,
    escrow,
    outcome,
    thread_account,
    wallet,
)
from becomingone.choir.postgres import NOTIFY_CHANNEL, AppendListener, PostgresLedger
from becomingone.choir.price import (
    HBAR_OVER_K,
    RATE_WINDOW,
    S0,
    TOTAL_SUPPLY,
    message_rate,
    price,
    temperature,
)
from becomingone.choir.reconcile import (
    Drift,
    DriftKind,
    Embed,
    Expected,
    Outbox,
    RepairReport,
    drift,
    expected,
    expected_messages,
    reconcile,
    reconcile_messages,
    repair,
)
from becomingone.choir.rules import VOTE_WINDOW, LedgerView, Rules, apply, settle
from becomingone.choir.sqlite import SqliteLedger
from becomingone.choir.store import (
    PUBLISHED,
    STORE_HELD,
    ContentStore,
    Hit,
    QdrantStore,
    StoredMessage,
    StoredThread,
    copy_store,
)
from becomingone.choir.tx import Transaction, TxKind, content_hash, new_id

__all__ = [
    "HBAR_OVER_K",
    "NOTIFY_CHANNEL",
    "PUBLISHED",
    "RATE_WINDOW",
    "S0",
    "STORE_ENGINES",
    "STORE_HELD",
    "TOTAL_SUPPLY",
    "TREASURY",
    "VOTE_WINDOW",
    "Account",
    "AccountKind",
    "AppendListener",
    "ChoirHome",
    "ContentStore",
    "Drift",
    "DriftKind",
    "EdgeStore",
    "Embed",
    "Expected",
    "Hit",
    "Ledger",
    "LedgerView",
    "Message",
    "Outbox",
    "PostgresLedger",
    "QdrantStore",
    "Receipt",
    "RepairReport",
    "Rules",
    "Spec",
    "SpecStatus",
    "SqliteLedger",
    "StoredMessage",
    "StoredThread",
    "Thread",
    "Totals",
    "Transaction",
    "TxKind",
    "User",
    "apply",
    "check_id",
    "check_user_name",
    "content_hash",
    "copy_store",
    "drift",
    "edge_available",
    "embedder",
    "escrow",
    "expected",
    "expected_messages",
    "message_rate",
    "new_id",
    "outcome",
    "price",
    "reconcile",
    "reconcile_messages",
    "repair",
    "settle",
    "temperature",
    "thread_account",
    "wallet",
]
