"""Fixtures of the memory layer: the storage conformance adapters (see ``conformance.py``)."""

from tests.memory import conformance

make_witness_log = conformance.make_witness_log
make_signature_store = conformance.make_signature_store
make_coherence_history = conformance.make_coherence_history
make_protocol_state = conformance.make_protocol_state
make_cas_record = conformance.make_cas_record
make_append_log = conformance.make_append_log
