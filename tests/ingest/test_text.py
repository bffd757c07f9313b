"""Text embeddings: the lexical fallback always, the MiniLM model when the extra is installed."""

from __future__ import annotations

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.ingest.text import (
    EMBEDDING_DIM,
    embed_messages,
    lexical_embedding,
    model_available,
)

MESSAGES = [
    "the cat sat on the mat",
    "a cat was sitting on a mat",
    "stock prices fell sharply today",
]


def test_lexical_embedding_is_deterministic_normalised_and_lexical():
    """Same text → same vector; rows unit length; shared words → higher similarity."""
    a = lexical_embedding(MESSAGES)
    b = lexical_embedding(MESSAGES)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    sim = a @ a.T
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_empty_message_maps_to_a_unit_vector():
    """A message without words still gets a finite unit vector."""
    v = lexical_embedding(["", "?!"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)


def test_bad_messages_are_rejected():
    """A bare string, a non-string item or an unknown backend raise InputError."""
    with pytest.raises(InputError, match="one string"):
        embed_messages("hello")
    with pytest.raises(InputError, match="item 1"):
        embed_messages(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputError) as info:
        embed_messages(["a"], backend="magic")  # type: ignore[arg-type]
    assert info.value.parameter == "backend"


def test_empty_sequence_gives_empty_matrix():
    """No messages → an empty (0, 384) matrix."""
    assert embed_messages([], backend="lexical").shape == (0, EMBEDDING_DIM)


@pytest.mark.text
@pytest.mark.skipif(not model_available(), reason="the 'text' extra is not installed")
def test_model_embeddings_see_meaning():
    """MiniLM, loaded offline from the installed wheel, puts paraphrases close together."""
    e = embed_messages(MESSAGES, backend="model")
    assert e.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.8
    assert e[0] @ e[2] < 0.3
