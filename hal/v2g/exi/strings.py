"""The string table of one EXI stream: its value partitions.

String values and the string table (EXI 1.0 §7.3): the header carries no options, so the
defaults hold, valueMaxLength and valuePartitionCapacity unbounded. The decoder keeps the value
partitions of the stream (one global, one "local" per element or attribute qname, §7.3.1): each
literal (length + 2) with at least one character is added to both, and a local hit (0, then the
compact id in ceil(log2 m) bits) or a global hit (1, then the id) is resolved; a hit with no such
entry is an ExiError. The encoder may send a hit (§7.3.3: a value found "may" be represented by
its compact identifier): with value_hits it does, local before global, as a conforming encoder
with the default options would. By default it sends every value as a literal, which every
decoder reads the same (the partitions just grow): the ISO 15118 codecs in the field cannot
resolve a hit (Josev's EXIficient sets valuePartitionCapacity and valueMaxLength to 0 without
saying so in the header and fails on a hit; EVerest's libcbv2g refuses one), so literals are the
only strings every peer reads. The URI, prefix and local-name partitions (§7.3.2) are read only
by qname content (SE(*), AT(*), xsi:type) and prefixes (not preserved): second-level or wildcard
events the codec refuses, so they are not kept.
"""

from __future__ import annotations


class Values:
    """The value partitions of one stream's string table (EXI 1.0 §7.3.1, §7.3.3, default
    options: no bound on entries or length). Entries come only from literals in the stream
    (each costs at least 8 bits), so its size is bounded by the stream's."""

    __slots__ = ("globals", "local", "global_ids", "local_ids")

    def __init__(self) -> None:
        self.globals: list[str] = []
        self.local: dict[int, list[str]] = {}
        # the encoder's look-ups: a value's compact id in each partition (its first entry)
        self.global_ids: dict[str, int] = {}
        self.local_ids: dict[int, dict[str, int]] = {}

    def add(self, qid: int, value: str) -> None:
        # §7.3.3: a literal is added to the global partition and to the local one of its
        # qname, next compact id in each. An empty string is not added (as EXIficient does;
        # checked against its default-options streams in the goldens).
        self.global_ids.setdefault(value, len(self.globals))
        self.globals.append(value)
        local = self.local.get(qid)
        if local is None:
            local = self.local[qid] = []
            self.local_ids[qid] = {}
        self.local_ids[qid].setdefault(value, len(local))
        local.append(value)
