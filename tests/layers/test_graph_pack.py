"""The graph's direct packers make exactly what kvstore.tuple.pack makes (and unpack reads)."""

from __future__ import annotations

import math

from hypothesis import example, given
from hypothesis import strategies as st

from kvstore import tuple as tuple_layer
from kvstore.layers.graph_pack import pack_association, pack_concept, pack_concept_key

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
ids = st.binary(min_size=16, max_size=16)


@given(prefix=st.binary(max_size=8), concept_id=ids)
@example(prefix=b"", concept_id=b"\x00" * 16)
def test_concept_key_is_packs(prefix: bytes, concept_id: bytes) -> None:
    assert pack_concept_key(prefix, concept_id) == tuple_layer.pack((concept_id,), prefix)


@given(
    content=st.binary(max_size=64),
    vector=st.none() | st.binary(max_size=32),
    strength=floats,
    confidence=floats,
    created=floats,
)
@example(b"a\x00b", b"\x00\x00\x80?", 0.0, -0.0, 1.7e9)
@example(b"", None, 1.0, 1.0, -math.inf)
@example(b"x", None, math.nan, 0.5, math.inf)
def test_concept_record_is_packs(
    content: bytes, vector: bytes | None, strength: float, confidence: float, created: float
) -> None:
    record = (content, vector, strength, confidence, created)
    packed = pack_concept(*record)
    assert packed == tuple_layer.pack(record)
    back = tuple_layer.unpack(packed)
    assert back[:2] == (content, vector)
    for got, want in zip(back[2:], record[2:], strict=True):
        assert got == want or (math.isnan(got) and math.isnan(want))


@given(confidence=floats, weight=floats, created=floats)
@example(-0.0, 0.0, 0.0)
@example(1.0, -1.0, 5e-324)
def test_association_record_is_packs(confidence: float, weight: float, created: float) -> None:
    assert pack_association(confidence, weight, created) == tuple_layer.pack(
        (confidence, weight, created)
    )
