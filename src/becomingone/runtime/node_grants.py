"""What a node certificate bound to one cluster may do beyond a plain node: the NATS subjects
``node --glyphs`` and ``node --roles`` write, for that cluster only.

Rule: names only. Every subject is built from the functions that name it where it is used
(:func:`~becomingone.runtime.node_glyphs.glyph_bucket`,
:func:`~becomingone.runtime.node_glyphs.glyph_subject`,
:func:`~becomingone.runtime.node_partifacts.partifact_subject`,
:func:`~becomingone.runtime.node_partifacts.consensus_log_name`, the log's
:func:`~becomingone.transport.jetstream.log_stream`/``log_subject``), so the grant cannot drift
from what the node sends. The servers get it as a :class:`~becomingone.transport.natsd.NodeGrant`
(``becomingone nats up --tls --cluster NAME``).

Granted (publish; subscribe where marked):

- ``glyph.<cluster>.*`` (also subscribe): migration messages between the cluster's nodes;
- ``$KV.glyphs_<cluster>.>``: writes to the cluster's glyph ownership records (create, CAS
  update, delete), and ``$JS.API.STREAM.CREATE.KV_glyphs_<cluster>``: the first node creates
  the bucket (NATS names a KV bucket's stream ``KV_<bucket>``);
- ``partifacts.<cluster>`` (also subscribe): the signed obs/proposal/vote messages;
- ``becomingone.log.LOG_consensus_<cluster>``: appends to the consensus log, and
  ``$JS.API.STREAM.CREATE.LOG_consensus_<cluster>``: the first node creates it.

Not granted: any other cluster's subjects, the roster bucket (admins write it), stream update,
delete or purge, and consumers' acks (reads stay the plain node's read-only JetStream API).
"""

from __future__ import annotations

from becomingone.certs import cluster_uri
from becomingone.runtime.node_glyphs import glyph_bucket, glyph_subject
from becomingone.runtime.node_partifacts import consensus_log_name, partifact_subject
from becomingone.transport.jetstream import log_stream, log_subject
from becomingone.transport.natsd import NodeGrant

__all__ = ["cluster_grant"]

_CREATE = "$JS.API.STREAM.CREATE."


def cluster_grant(cluster: str) -> NodeGrant:
    """The server user of node certificates bound to ``cluster`` (``certs issue NAME
    --cluster CLUSTER``); an :class:`~becomingone.errors.InputError` names a bad name."""
    user = cluster_uri(cluster)
    bucket = glyph_bucket(cluster)
    stream = log_stream(consensus_log_name(cluster))
    talk = (glyph_subject(cluster, "*"), partifact_subject(cluster))
    return NodeGrant(
        user=user,
        publish=(
            *talk,
            f"$KV.{bucket}.>",
            f"{_CREATE}KV_{bucket}",
            log_subject(stream),
            f"{_CREATE}{stream}",
        ),
        subscribe=talk,
    )
