"""Reading user inputs: CSV and text files, and sentence embeddings for text streams.

Everything here turns outside data into validated NumPy arrays; it may read files and load a
model, and it never touches engine state.
"""

from becomingone.ingest.files import Series, read_csv_series, read_messages
from becomingone.ingest.text import (
    EMBEDDING_DIM,
    embed_messages,
    lexical_embedding,
    model_available,
)

__all__ = [
    "EMBEDDING_DIM",
    "Series",
    "embed_messages",
    "lexical_embedding",
    "model_available",
    "read_csv_series",
    "read_messages",
]
