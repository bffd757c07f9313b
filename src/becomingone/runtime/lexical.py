"""A deterministic lexical hashing embedding for text streams (fallback, no model).

Rule: each message becomes one unit-length vector of ``dim`` reals: every lower-cased word and
word bigram is hashed (BLAKE2b) to a bucket and a sign. Same text, same vector, on any machine.
Used by the ``text:`` source until ``becomingone.ingest.text.embed_messages`` (sentence
embeddings) is available; pure function, no I/O.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = ["LEXICAL_DIM", "lexical_embed"]

LEXICAL_DIM = 64
_WORD = re.compile(r"\w+", re.UNICODE)


def lexical_embed(messages: Sequence[str], dim: int = LEXICAL_DIM) -> NDArray[np.float64]:
    """Embed each message as a unit vector of shape (dim,); an empty message is the zero vector.

    Examples
    --------
    >>> v = lexical_embed(["the cell breathes", "the cell breathes"])
    >>> v.shape, bool(np.allclose(v[0], v[1])), round(float(np.linalg.norm(v[0])), 6)
    ((2, 64), True, 1.0)
    """
    if dim < 2:
        raise InputError("dim", f"must be >= 2, got {dim}")
    out = np.zeros((len(messages), dim), np.float64)
    for i, text in enumerate(messages):
        if not isinstance(text, str):
            raise InputError("messages", f"message {i} is not a string")
        words = _WORD.findall(text.lower())
        for token in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
            h = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(h[:4], "little") % dim
            out[i, bucket] += 1.0 if h[4] & 1 else -1.0
        norm = float(np.linalg.norm(out[i]))
        if norm > 0:
            out[i] /= norm
    return out
