"""What one batch of the concept graph changed, as it is kept in the store for other processes.

Every batch the reconciler writes also stores one *change record*: the final state of every
concept and association the batch wrote.  Another instance on the same path brings its
snapshot up to date by decoding the records it has not seen, and never re-reads the graph's
own keys: re-reading touched ids through a transaction and the tuple layer cost ~50 µs per
changed item, which took a reader process's CPU away from its queries during write bursts
(PERFORMANCE L4).

The record is fixed-width binary so it decodes with :meth:`struct.Struct.iter_unpack`, in C::

    header   ">BII"            format (1), concept count, association count
    concept  ">16sdddIi"       id, strength, confidence, created, content length,
                               vector length in bytes (-1: no vector)      -- per concept
    assoc    ">16s16sBQddd"    source, target, type index, position, confidence, weight,
                               created                                     -- per association
    tail                       each concept's content, then its float32 vector, in order

``position`` orders a source's associations (first learned first), as in the store's keys.
"""

from __future__ import annotations

import struct
from typing import Final

from kvstore import CorruptData

__all__ = ["ASSOCIATION_TYPES", "Changes", "ConceptRecord", "EdgeRecord"]

ASSOCIATION_TYPES: Final = ("semantic", "causal", "temporal", "hierarchical", "compositional")
_TYPE_INDEX: Final = {t: i for i, t in enumerate(ASSOCIATION_TYPES)}

#: (content, float32 vector bytes or None, strength, confidence, created)
ConceptRecord = tuple[bytes, bytes | None, float, float, float]
#: (position, target, assoc_type, confidence, weight, created): sorts in first-learned order
EdgeRecord = tuple[int, bytes, str, float, float, float]

_HEADER: Final = struct.Struct(">BII")
_CONCEPT: Final = struct.Struct(">16sdddIi")
_EDGE: Final = struct.Struct(">16s16sBQddd")
_FORMAT: Final = 1


class Changes:
    """Concepts and associations written by one or more batches; a later write replaces."""

    __slots__ = ("concepts", "edges")

    def __init__(self) -> None:
        self.concepts: dict[bytes, ConceptRecord] = {}
        #: source -> (target, assoc_type) -> record
        self.edges: dict[bytes, dict[tuple[bytes, str], EdgeRecord]] = {}

    def __bool__(self) -> bool:
        return bool(self.concepts or self.edges)

    def add_edge(self, source: bytes, record: EdgeRecord) -> None:
        self.edges.setdefault(source, {})[record[1], record[2]] = record

    def merge(self, later: Changes) -> None:
        """Take ``later``'s writes on top of these (``later`` is left as it is)."""
        self.concepts.update(later.concepts)
        for source, records in later.edges.items():
            mine = self.edges.get(source)
            if mine is None:
                self.edges[source] = dict(records)
            else:
                mine.update(records)

    def encode(self) -> bytes:
        """The change record (see the module's docstring)."""
        concepts = self.concepts
        edge_count = sum(map(len, self.edges.values()))
        parts = [_HEADER.pack(_FORMAT, len(concepts), edge_count)]
        tail: list[bytes] = []
        pack_concept = _CONCEPT.pack
        for cid, (content, vector, strength, confidence, created) in concepts.items():
            size = -1 if vector is None else len(vector)
            parts.append(pack_concept(cid, strength, confidence, created, len(content), size))
            tail.append(content)
            if vector is not None:
                tail.append(vector)
        pack_edge = _EDGE.pack
        index = _TYPE_INDEX
        for source, records in self.edges.items():
            for position, target, kind, confidence, weight, created in records.values():
                parts.append(
                    pack_edge(source, target, index[kind], position, confidence, weight, created)
                )
        return b"".join(parts + tail)

    @classmethod
    def decode(cls, data: bytes) -> Changes:
        """Parse :meth:`encode`'s output; anything malformed is :class:`~kvstore.CorruptData`."""
        if len(data) < _HEADER.size:
            raise CorruptData("graph change record is truncated")
        fmt, n_concepts, n_edges = _HEADER.unpack_from(data)
        if fmt != _FORMAT:
            raise CorruptData(f"graph change record has unknown format {fmt}")
        concepts_at = _HEADER.size
        edges_at = concepts_at + n_concepts * _CONCEPT.size
        tail_at = edges_at + n_edges * _EDGE.size
        if tail_at > len(data):
            raise CorruptData("graph change record is truncated")
        view = memoryview(data)
        out = cls()
        pos = tail_at
        concepts = out.concepts
        for cid, strength, confidence, created, size, vsize in _CONCEPT.iter_unpack(
            view[concepts_at:edges_at]
        ):
            end = pos + size
            content = data[pos:end]
            if vsize < 0:
                vector = None
            else:
                vector = data[end : end + vsize]
                end += vsize
            if end > len(data) or len(content) != size:
                raise CorruptData("graph change record: a concept overruns the record")
            concepts[cid] = (content, vector, strength, confidence, created)
            pos = end
        if pos != len(data):
            raise CorruptData("graph change record has trailing bytes")
        types = ASSOCIATION_TYPES
        edges = out.edges
        mine = edges.get
        try:
            for source, target, kind, position, confidence, weight, created in _EDGE.iter_unpack(
                view[edges_at:tail_at]
            ):
                name = types[kind]
                record = (position, target, name, confidence, weight, created)
                # A dict per source only when it is new (setdefault would build one per edge)
                if (written := mine(source)) is None:
                    edges[source] = {(target, name): record}
                else:
                    written[target, name] = record
        except IndexError:
            raise CorruptData("graph change record names an unknown association type") from None
        return out
