"""Check the page structure of an LMDB data file before LMDB walks it.

LMDB keeps no checksums and trusts every page it reaches: a zeroed or scribbled B-tree page
makes it fail an internal assertion (``abort()``) or read past a page -- the interpreter dies
instead of raising.  So before a store is used, :func:`check_pages` walks the trees of one
snapshot itself, with plain reads of the file, and checks everything LMDB will rely on: each
page says it is the page it should be and of the kind its parent expects, every node and
every overflow run lies within bounds, leaves sit at the tree's depth, no page is reached
twice, and each tree's page and entry counts match its database record.  What does not hold
is :class:`~kvstore.errors.CorruptData` naming the file and the page.

The walk reads every page (about a second per million keys), so a store that is exactly as
kvstore left it is not walked again: :func:`vouch` records the file's identity, size,
modification time and newest transaction in a stamp file beside it when a walk succeeds and
when a writer closes it, and :func:`vouched` compares them at the next open.  Any change made
outside LMDB moves the modification time, so it is walked.

What it cannot see: damage done by another program while a store is open, and a changed byte
inside a key or value that leaves the structure intact (LMDB has no checksums) -- that reads
back as different data, never as a crash.

The layout is LMDB 0.9's (``mdb.c``), native byte order: a 16-byte page header (page number,
pad, flags, then ``lower``/``upper`` or an overflow page count), an array of 16-bit node
offsets, and nodes of an 8-byte header (``lo``, ``hi``, ``flags``, ``ksize``) plus the key and
the data (or a child page number in a branch, or an overflow page number for big data).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable

from kvstore.errors import CorruptData

_SIZE_T = "Q" if struct.calcsize("N") == 8 else "I"
_PGNO_SIZE = struct.calcsize(_SIZE_T)
_HEADER = struct.Struct("=" + _SIZE_T + "HHHH")  # pgno, pad, flags, lower, upper
_HEADER_SIZE = 16 if _PGNO_SIZE == 8 else 12
_OVERFLOW_PAGES = struct.Struct("=I")  # where lower/upper are, an overflow page's count
_NODE = struct.Struct("=HHHH")  # lo, hi, flags, ksize
_NODE_SIZE = _NODE.size
#: MDB_db: pad, flags, depth, then branch/leaf/overflow page counts, entries and root.
_DB = struct.Struct("=IHH" + _SIZE_T * 5)
_META_DBS = struct.Struct("=II" + _SIZE_T * 2 + _DB.format[1:] * 2 + _SIZE_T * 2)
#: A whole meta page's start: the page header, then MDB_meta (magic, version, address,
#: mapsize, the free-page and main database records, last page number, txnid).
META = struct.Struct(_HEADER.format + _META_DBS.format[1:])

P_BRANCH, P_LEAF, P_OVERFLOW, P_LEAF2, P_SUBP = 0x01, 0x02, 0x04, 0x20, 0x40
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
MDB_DUPSORT = 0x04
P_INVALID = (1 << (8 * _PGNO_SIZE)) - 1
_KIND_FLAGS = P_BRANCH | P_LEAF | P_OVERFLOW | P_LEAF2


class _Walk:
    """One walk over one snapshot's trees; raises CorruptData at the first bad page."""

    def __init__(self, path: str, read: Callable[[int, int], bytes], psize: int, last: int):
        self.path = path
        self.read = read
        self.psize = psize
        self.last = last
        self.seen: set[int] = set()

    def bad(self, pgno: int, why: str) -> CorruptData:
        return CorruptData(f"the LMDB data file {self.path!r} is damaged: page {pgno} {why}")

    def page(self, pgno: int) -> bytes:
        if not 2 <= pgno <= self.last:
            raise self.bad(pgno, f"is outside the file's pages 2..{self.last}")
        if pgno in self.seen:
            raise self.bad(pgno, "is reached twice")
        self.seen.add(pgno)
        data = self.read(pgno * self.psize, self.psize)
        if len(data) != self.psize:
            raise self.bad(pgno, "is cut short")
        number = _HEADER.unpack_from(data)[0]
        if number != pgno:
            raise self.bad(pgno, f"says it is page {number}")
        return data

    def tree(self, record: bytes, name: str) -> None:
        """Walk the database described by the MDB_db ``record``; its counts must match."""
        _pad, flags, depth, branches, leaves, overflows, entries, root = _DB.unpack(record)
        if root == P_INVALID:
            if depth or branches or leaves or overflows or entries:
                raise CorruptData(
                    f"the LMDB data file {self.path!r} is damaged: database {name} is empty"
                    " but its record counts pages or entries"
                )
            return
        counts = [0, 0, 0, 0]  # branch pages, leaf pages, overflow pages, entries
        dupsort = bool(flags & MDB_DUPSORT)
        stack = [(root, 1)]
        while stack:
            pgno, level = stack.pop()
            data = self.page(pgno)
            _n, _pad, pflags, lower, upper = _HEADER.unpack_from(data)
            kind = pflags & _KIND_FLAGS
            want = P_LEAF if level == depth else P_BRANCH
            if kind != want and not (want == P_LEAF and kind == P_LEAF | P_LEAF2):
                raise self.bad(pgno, f"of {name} has flags {pflags:#x} at level {level}/{depth}")
            if not _HEADER_SIZE <= lower <= upper <= self.psize or (lower - _HEADER_SIZE) & 1:
                raise self.bad(pgno, f"of {name} has impossible bounds {lower}..{upper}")
            nkeys = (lower - _HEADER_SIZE) >> 1
            if kind == P_BRANCH:
                counts[0] += 1
                if nkeys < 1:
                    raise self.bad(pgno, f"of {name} is a branch without children")
                for child in self.branch(pgno, data, nkeys, upper):
                    stack.append((child, level + 1))
            else:
                counts[1] += 1
                if kind & P_LEAF2:
                    counts[3] += nkeys  # fixed-size duplicates: no nodes to check
                    continue
                counts[2] += self.leaf(pgno, data, nkeys, upper, name, dupsort)
                counts[3] += nkeys
        # A database of duplicates counts its sub-databases' pages and items in its own record.
        if not dupsort and counts != [branches, leaves, overflows, entries]:
            raise CorruptData(
                f"the LMDB data file {self.path!r} is damaged: database {name} has"
                f" {counts[0]}/{counts[1]}/{counts[2]} branch/leaf/overflow pages and"
                f" {counts[3]} entries, its record says {branches}/{leaves}/{overflows} and"
                f" {entries}"
            )

    def nodes(self, pgno: int, data: bytes, nkeys: int, upper: int) -> list[tuple[int, ...]]:
        """Each node's (offset, lo, hi, flags, ksize), its header within the page."""
        out = []
        psize = self.psize
        for offset in struct.unpack_from(f"={nkeys}H", data, _HEADER_SIZE):
            if offset < upper or offset + _NODE_SIZE > psize:
                raise self.bad(pgno, f"has a node at {offset}, outside {upper}..{psize}")
            out.append((offset, *_NODE.unpack_from(data, offset)))
        return out

    def branch(self, pgno: int, data: bytes, nkeys: int, upper: int) -> list[int]:
        children = []
        for offset, lo, hi, flags, ksize in self.nodes(pgno, data, nkeys, upper):
            if offset + _NODE_SIZE + ksize > self.psize:
                raise self.bad(pgno, f"has a branch key of {ksize} bytes past its end")
            child = lo | hi << 16 | (flags << 32 if _PGNO_SIZE == 8 else 0)
            if not 2 <= child <= self.last:
                raise self.bad(pgno, f"points to page {child}, outside the file's pages")
            children.append(child)
        return children

    def leaf(self, pgno: int, data: bytes, nkeys: int, upper: int, name: str, dupsort: bool) -> int:
        """Check a leaf's nodes (and their overflow runs and sub-databases); overflow pages."""
        overflow = 0
        psize = self.psize
        for offset, lo, hi, flags, ksize in self.nodes(pgno, data, nkeys, upper):
            size = lo | hi << 16
            start = offset + _NODE_SIZE + ksize
            if flags & F_BIGDATA:
                if start + _PGNO_SIZE > psize:
                    raise self.bad(pgno, "has a big-data node past its end")
                first = struct.unpack_from("=" + _SIZE_T, data, start)[0]
                if not 2 <= first <= self.last:
                    raise self.bad(pgno, f"points to page {first}, outside the file's pages")
                head = self.page(first)  # only the run's first page has a header
                pflags = _HEADER.unpack_from(head)[2]
                count = _OVERFLOW_PAGES.unpack_from(head, _HEADER_SIZE - 4)[0]
                if not pflags & P_OVERFLOW or count < 1 or first + count - 1 > self.last:
                    raise self.bad(first, f"is not the overflow run of {name}'s page {pgno}")
                if count * psize - _HEADER_SIZE < size:
                    raise self.bad(first, f"holds fewer than the {size} bytes of its value")
                rest = range(first + 1, first + count)
                if not self.seen.isdisjoint(rest):
                    raise self.bad(first, "starts an overflow run over pages reached before")
                self.seen.update(rest)
                overflow += count
            elif start + size > psize:
                raise self.bad(pgno, f"has a {size}-byte value past its end")
            elif flags & F_SUBDATA:
                if size != _DB.size:
                    raise self.bad(pgno, f"has a {size}-byte database record")
                record = data[start : start + size]
                label = data[offset + _NODE_SIZE : start].decode("utf-8", "replace")
                self.tree(record, repr(label) if not flags & F_DUPDATA else f"{name} dups")
        return overflow


#: The stamp file, beside ``data.mdb``: what the file was when last known sound.
STAMP = "kvstore-checked"


def stamp(data_file: str, txnid: int) -> str:
    """What identifies ``data_file`` as it is now, with its newest transaction ``txnid``."""
    try:
        st = os.stat(data_file)
    except OSError:
        return ""  # never matches a written stamp
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {txnid}\n"


def vouched(directory: str, now: str) -> bool:
    """Whether the stamp in ``directory`` is ``now`` (the file is as when last known sound)."""
    try:
        with open(os.path.join(directory, STAMP), encoding="ascii") as f:
            return bool(now) and f.read() == now
    except (OSError, ValueError):
        return False


def vouch(directory: str, then: str) -> None:
    """Record ``then`` as a sound state of the file (best effort: else the next open walks)."""
    if not then:
        return
    path = os.path.join(directory, STAMP)
    temporary = f"{path}.{os.getpid()}"
    try:
        with open(temporary, "w", encoding="ascii") as f:
            f.write(then)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def check_pages(data_file: str, psize: int, txnid: int) -> bool:
    """Walk the trees of the snapshot ``txnid`` in ``data_file``; ``CorruptData`` if damaged.

    The caller holds a read transaction on ``txnid`` (so no writer reuses its pages while
    they are read).  Returns False when neither meta page is that snapshot's any more (two
    commits raced past it): the caller retries with a newer one.
    """
    fd = os.open(data_file, os.O_RDONLY)
    try:

        def read(offset: int, size: int) -> bytes:
            return os.pread(fd, size, offset)

        for n in (0, 1):
            meta = read(n * psize + _HEADER_SIZE, _META_DBS.size)
            if len(meta) < _META_DBS.size:
                raise CorruptData(f"the LMDB data file {data_file!r} is damaged: meta {n} cut")
            fields = _META_DBS.unpack(meta)
            if fields[-1] != txnid:
                continue
            records = meta[8 + 2 * _PGNO_SIZE : 8 + 2 * _PGNO_SIZE + 2 * _DB.size]
            walk = _Walk(data_file, read, psize, fields[-2])
            walk.tree(records[: _DB.size], "free-pages")
            walk.tree(records[_DB.size :], "main")
            return True
        return False
    finally:
        os.close(fd)
