"""Fixtures of the memory layer: the storage conformance adapters (see ``conformance.py``)."""

from tests.memory.conformance import (
    make_append_log as make_append_log,
)
from tests.memory.conformance import (
    make_cas_record as make_cas_record,
)
from tests.memory.conformance import (
    make_coherence_history as make_coherence_history,
)
from tests.memory.conformance import (
    make_protocol_state as make_protocol_state,
)
from tests.memory.conformance import (
    make_signature_store as make_signature_store,
)
from tests.memory.conformance import (
    make_witness_log as make_witness_log,
)
