"""Reading user inputs: CSV and text files, and sentence embeddings for text streams.

Everything here turns outside data into validated NumPy arrays; it may read files and load a
model, and it never touches engine state.
"""

from becomingone.ingest.files import Series, read_csv_series, read_event_times, read_messages
from becomingone.ingest.text import (
    EMBEDDING_DIM,
    embed_messages,
    lexical_embedding,
    model_available,
)
from becomingone.ingest.times import (
    TimeAxis,
    find_time_column,
    is_timestamp,
    parse_time_axis,
    uniform_step,
)

__all__ = [
    "EMBEDDING_DIM",
    "Series",
    "TimeAxis",
    "embed_messages",
    "find_time_column",
    "is_timestamp",
    "lexical_embedding",
    "model_available",
    "parse_time_axis",
    "read_csv_series",
    "read_event_times",
    "read_messages",
    "uniform_step",
]
