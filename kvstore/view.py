"""Delta views: :class:`DeltaKVStore` and :class:`MutableView`.

A ``MutableView`` sits on any :class:`~kvstore.KVStore` and behaves like a private, writable
copy of it, while never touching it: every mutation is recorded in a :class:`~kvstore.Writes`,
and every read that had to consult the base is recorded in a :class:`~kvstore.Reads`.  The
writes can later be applied to the base (or shipped anywhere else); the reads let a
transaction find out whether anything it looked at was changed underneath it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from _thread import RLock
from abc import abstractmethod
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import compress, islice, repeat
from operator import eq, itemgetter, not_
from threading import get_ident
from typing import Any

from kvstore.counters import (
    MAX_AMOUNT,
    MIN_AMOUNT,
    check_amount,
    decode_counter,
    encode_counter,
    wrap64,
)
from kvstore.errors import KVError, ReadOnlyError, StoreClosed
from kvstore.keys import MAX_KEY_SIZE, check_bounds, check_key, check_value, key_after
from kvstore.mutations import Mutations, Writes
from kvstore.reads import Reads
from kvstore.store import (
    KVPair,
    KVStore,
    RangeIterator,
    checked_mutations,
    collect_pairs,
    collect_tracked,
    kept_pairs,
    make_pair,
    untrack_pairs,
)
from kvstore.validate import check_bool

__all__ = ["DeltaKVStore", "MutableView"]

# PERFORMANCE R5b: map(_new_pair, _KVPAIRS, pairs) builds KVPairs at C speed.
_new_pair = tuple.__new__
_KVPAIRS = repeat(KVPair)
#: Greater than every key (keys are at most MAX_KEY_SIZE bytes): a bisect's end sentinel.
_PAST_EVERY_KEY = b"\xff" * (MAX_KEY_SIZE + 1)


class DeltaKVStore(KVStore):
    """A store that presents a base store plus recorded changes (Permazen's ``DeltaKVStore``).

    It records what it wrote (:attr:`writes`) and, optionally, what it read from its base
    (:attr:`reads`), so the delta can be applied elsewhere and checked for conflicts.
    """

    @property
    @abstractmethod
    def base(self) -> KVStore:
        """The store this view reads through to."""

    @property
    @abstractmethod
    def writes(self) -> Writes:
        """The mutations recorded so far (a live structure)."""

    @property
    @abstractmethod
    def reads(self) -> Reads | None:
        """The key ranges read from the base so far, or ``None`` when not tracking."""

    @property
    @abstractmethod
    def read_only(self) -> bool:
        """Whether mutations are refused."""

    @abstractmethod
    def set_read_only(self) -> None:
        """Refuse every later mutation with :class:`ReadOnlyError`; cannot be undone."""

    @abstractmethod
    def disable_read_tracking(self) -> None:
        """Stop recording reads, permanently, and discard those recorded."""

    @abstractmethod
    def without_read_tracking(
        self, allow_writes: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """A context in which this thread's reads are not recorded.

        Mutations inside it raise :class:`ReadOnlyError` unless ``allow_writes``.
        """


class MutableView(DeltaKVStore):
    """A writable view of ``base`` that records its writes and the reads it made of ``base``.

    ``writes`` and ``reads`` may be given to continue an earlier delta; they are used as they
    are, not copied.  Thread safe: operations from any mix of threads take effect in one total
    order.  Range iterators stay correct while the view is modified during iteration: each
    pair they return reflects the view at the moment it is returned.
    """

    def __init__(
        self,
        base: KVStore,
        *,
        track_reads: bool = True,
        writes: Writes | None = None,
        reads: Reads | None = None,
    ) -> None:
        if not isinstance(base, KVStore):
            raise TypeError(f"base must be a KVStore, not {type(base).__name__}")
        if writes is not None and not isinstance(writes, Writes):
            raise TypeError(f"writes must be a Writes, not {type(writes).__name__}")
        if reads is not None and not isinstance(reads, Reads):
            raise TypeError(f"reads must be a Reads, not {type(reads).__name__}")
        check_bool(track_reads, "track_reads")
        self._init(
            base,
            Writes() if writes is None else writes,
            (Reads() if reads is None else reads) if track_reads else None,
        )

    def _init(self, base: KVStore, writes: Writes, reads: Reads | None) -> None:
        """Set up a view from checked parts (a transaction starts here, PERFORMANCE R6)."""
        self._base = base
        self._base_get = base.get
        self._writes = writes
        # A Writes' structures are never rebound, so the hot paths may hold them (R1).
        self._puts_get = writes.puts.get
        self._removes = writes.removes
        self._adjusts = writes.adjusts
        self._reads: Reads | None = reads
        self._lock = RLock()
        self._read_only = False
        # thread ident -> stack of allow_writes flags, for without_read_tracking()
        self._untracked: dict[int, list[bool]] = {}
        # Open iterators, made on first use: most transactions never scan (PERFORMANCE R6).
        self._iterators: weakref.WeakSet[_ViewIterator] | None = None
        self._open_iterators = 0  # len(_iterators), kept cheap to test on every write (R3)
        self._closed = False

    # -- properties ----------------------------------------------------------------------------
    @property
    def base(self) -> KVStore:
        return self._base

    @property
    def writes(self) -> Writes:
        return self._writes

    @property
    def reads(self) -> Reads | None:
        with self._lock:
            if self._open_iterators and self._iterators is not None:
                for it in list(self._iterators):
                    it._flush_span()
            return self._reads

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- configuration -------------------------------------------------------------------------
    def set_read_only(self) -> None:
        self._read_only = True

    def disable_read_tracking(self) -> None:
        with self._lock:
            self._reads = None

    def without_read_tracking(
        self, allow_writes: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        # Checked here, not on entering: a bad flag fails where it is passed.
        check_bool(allow_writes, "allow_writes")
        return self._untracked_context(allow_writes)

    @contextlib.contextmanager
    def _untracked_context(self, allow_writes: bool) -> Iterator[None]:
        """The context of :meth:`without_read_tracking`, its flag already checked."""
        ident = threading.get_ident()
        with self._lock:
            self._untracked.setdefault(ident, []).append(allow_writes)
        try:
            yield
        finally:
            with self._lock:
                stack = self._untracked[ident]
                stack.pop()
                if not stack:
                    del self._untracked[ident]

    def rebase(self, new_base: KVStore) -> None:
        """Read through to ``new_base`` from now on; reads and writes are kept."""
        if not isinstance(new_base, KVStore):
            raise TypeError(f"new_base must be a KVStore, not {type(new_base).__name__}")
        with self._lock:
            self._base = new_base
            self._base_get = new_base.get
            self._changed()

    def clone(self) -> MutableView:
        """A view of the same base with its own copies of this view's reads and writes."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            reads = self.reads
            view = MutableView(
                self._base,
                track_reads=reads is not None,
                writes=self._writes.clone(),
                reads=reads.clone() if reads is not None else None,
            )
            view._read_only = self._read_only
            return view

    # -- internals -----------------------------------------------------------------------------
    def _closed_error(self) -> KVError:
        """The error for using the view after :meth:`close` (transactions say more)."""
        return StoreClosed("the view is closed")

    def _tracking(self) -> Reads | None:
        """The Reads to record into for the calling thread, or None."""
        reads = self._reads
        if reads is not None and self._untracked and threading.get_ident() in self._untracked:
            return None
        return reads

    def _flush_iterators(self) -> None:
        """Before a mutation: record what open iterators read so far, under the writes in
        force while they read it (their spans leave out what the writes covered then)."""
        if self._iterators is not None:
            for it in list(self._iterators):
                it._flush_span()

    def _changed(self) -> None:
        """After a mutation: open iterators must re-seek before returning anything more."""
        if self._open_iterators and self._iterators is not None:
            for it in list(self._iterators):
                it._cut()

    def _check_writable(self) -> None:
        if self._closed:
            raise self._closed_error()
        if self._read_only:
            raise ReadOnlyError("this view is read-only")
        if self._untracked:
            stack = self._untracked.get(threading.get_ident())
            if stack and not stack[-1]:
                raise ReadOnlyError("mutation inside without_read_tracking(allow_writes=False)")

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        # Lock-free unless the view has removes (PERFORMANCE R1: the lock alone costs ~15%).
        # Each step reads one structure with one GIL-atomic operation (a dict lookup, a list
        # append), so a get takes effect at a single point among concurrent writers; see
        # _record_key for why no recorded read can be lost.
        if type(key) is not bytes or len(key) > MAX_KEY_SIZE:
            key = check_key(key)
        if self._closed:
            raise self._closed_error()
        value: bytes | None = self._puts_get(key)
        if value is not None:
            return value
        removes = self._removes
        if removes._ends or removes._pending:
            with self._lock:  # a KeyRanges query may fold queued keys in: not shareable
                if removes.covers_key(key):
                    return None
        value = self._base_get(key)
        reads = self._reads
        if reads is not None and not (self._untracked and get_ident() in self._untracked):
            pending = reads._pending
            pending.append(key)  # Reads.add_key, inlined
            if reads._pending is not pending:
                self._record_key(reads, key)
        if value is not None and self._adjusts:
            amount = self._adjusts.get(key)
            if amount is not None and len(value) == 8:
                value = encode_counter(wrap64(decode_counter(value) + amount))
        return value

    def _record_key(self, reads: Reads, key: bytes) -> None:
        """Record ``key`` again: a fold replaced the queue while :meth:`get` appended to it.

        A fold swaps the queue for a new list, then merges the old one.  A get that appended
        before the swap is merged with it; one that finds the queue swapped after appending
        (its key may have missed the merge) lands here and adds the key under the lock.  A
        key recorded twice is harmless: adding a range is idempotent.
        """
        with self._lock:
            reads.add_key(key)

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        lo, hi = check_bounds(min_key, max_key)
        check_bool(reverse, "reverse")
        with self._lock:
            if self._closed:
                raise self._closed_error()
            it = _ViewIterator(self, lo, hi, reverse, self._tracking() is not None)
            if self._iterators is None:
                self._iterators = weakref.WeakSet()
            self._iterators.add(it)
            self._open_iterators += 1
            return it

    # -- writes --------------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or len(key) > MAX_KEY_SIZE:
            key = check_key(key)
        if type(value) is not bytes:
            value = check_value(value)
        with self._lock:
            if self._closed or self._read_only or self._untracked:
                self._check_writable()
            if self._open_iterators:
                self._flush_iterators()
            self._writes.record_put(key, value)
            if self._open_iterators:  # calls skipped when none is open (PERFORMANCE R6)
                self._changed()

    def remove(self, key: bytes) -> None:
        key = check_key(key)
        with self._lock:
            self._check_writable()
            if self._open_iterators:
                self._flush_iterators()
            self._writes.record_remove(key)
            self._changed()

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        lo, hi = check_bounds(min_key, max_key)
        with self._lock:
            self._check_writable()
            if self._open_iterators:
                self._flush_iterators()
            if hi is None or lo < hi:
                self._writes.record_remove_range(lo, hi)
                self._changed()

    def adjust_counter(self, key: bytes, amount: int) -> None:
        if type(key) is not bytes or len(key) > MAX_KEY_SIZE:
            key = check_key(key)
        if type(amount) is not int or not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            amount = check_amount(amount)
        with self._lock:
            if self._closed or self._read_only or self._untracked:
                self._check_writable()
            if self._open_iterators:
                self._flush_iterators()
            self._writes.record_adjust(key, amount)
            if self._open_iterators:  # calls skipped when none is open (PERFORMANCE P1g)
                self._changed()

    def apply(self, mutations: Mutations) -> None:
        """Record ``mutations`` as if each were done here (removes, puts, adjusts).

        All or nothing: every item is checked before any is recorded.
        """
        removes, puts, adjusts = checked_mutations(mutations)
        with self._lock:
            self._check_writable()
            if self._open_iterators:
                self._flush_iterators()
            writes = self._writes
            for r in removes:
                if r.max_key is None or r.min_key < r.max_key:
                    writes.record_remove_range(r.min_key, r.max_key)
            for key, value in puts:
                writes.record_put(key, value)
            for key, amount in adjusts:
                writes.record_adjust(key, amount)
            self._changed()

    def close(self) -> None:
        """Close the view and its open iterators (recording what they read).

        Later use raises :class:`~kvstore.StoreClosed`; reads and writes stay readable, and
        the base is left open.  Idempotent.
        """
        with self._lock:
            if self._open_iterators and self._iterators is not None:
                for it in list(self._iterators):
                    it.close()
            self._closed = True

    def __repr__(self) -> str:
        w = self._writes
        return (
            f"<MutableView over {type(self._base).__name__}: {len(w.puts)} puts, "
            f"{len(w.removes)} removed ranges, {len(w.adjusts)} adjusts>"
        )


def _record_span(reads: Reads, lo: bytes, hi: bytes | None, writes: Writes) -> None:
    """Record that a scan walked ``[lo, hi)`` of the base, leaving out what its result cannot
    depend on (SPEC §4): fewer recorded reads are fewer false conflicts.

    Left out: the parts inside ranges the view removed, and the run of keys the view's own
    puts and removes cover at either end of the span (a ``put(k)`` covers ``[k, k + 00)``), so
    ``put(K10); get_range(K10, K20)`` records ``[K10 + 00, K20)``.  Keys the view adjusted are
    always recorded: their values depend on the base.  Puts in the middle of the span stay
    recorded, to keep the reads as few ranges as the scans that made them.
    """
    if hi is not None and lo >= hi:
        return
    removes, puts, adjusts = writes.removes, writes.puts, writes.adjusts
    has_removes = bool(removes._ends or removes._pending)
    if not (has_removes or puts):
        reads.add_range(lo, hi)  # the scans of a view without writes: one range (R5a)
        return
    if adjusts:
        for key in adjusts.irange(lo, hi, inclusive=(True, False)):
            reads.add_key(key)
    # The leading run: puts at the start, and removed ranges that contain it.
    start: bytes | None = lo
    while start is not None and (hi is None or start < hi):
        if start in puts:
            start = key_after(start)
            continue
        r = removes.next_range_at_or_after(start) if has_removes else None
        if r is None or r.min_key > start:
            break
        start = r.max_key
    if start is None or (hi is not None and start >= hi):
        return
    # The trailing run: a put just below the end, and removed ranges that reach the end.
    end = hi
    while end is None or start < end:
        if end is not None and end[-1:] == b"\x00" and end[:-1] in puts:
            end = end[:-1]
            continue
        r = removes.prev_range_before(end) if has_removes else None
        if r is None or not (r.max_key is None or (end is not None and r.max_key >= end)):
            break
        end = r.min_key
    if end is not None and start >= end:
        return
    if not has_removes:
        reads.add_range(start, end)
        return
    # The middle: everything but the removed ranges (canonical: disjoint, not adjacent).
    pos = start
    r = removes.next_range_at_or_after(pos)
    while r is not None and (end is None or r.min_key < end):
        reads.add_range(pos, r.min_key)
        if r.max_key is None:
            return
        pos = r.max_key
        r = removes.next_range_at_or_after(pos)
    reads.add_range(pos, end)


def _no_batch(limit: int, kept: bool = False) -> list[KVPair]:
    return []


def _merge(
    batch: list[KVPair],
    span_lo: bytes,
    span_hi: bytes | None,
    reverse: bool,
    writes: Writes,
    has_removes: bool,
    kept: bool,
) -> list[KVPair]:
    """Fold ``writes`` into ``batch``, the base's pairs of ``[span_lo, span_hi)``.

    Works by position (bisect into the batch's keys), and the puts are placed with C-level
    ``map`` loops, not a Python loop per put: the pairs themselves are copied only at C speed
    (PERFORMANCE R5b).  ``kept``: the consumer keeps the pairs, so new ones are built
    untracked by the GC (see :func:`kvstore.store.collect_pairs`).
    """
    out = batch[::-1] if reverse else list(batch)  # ascending, and ours to edit
    keys = list(map(itemgetter(0), out))
    if has_removes:
        removes = writes.removes
        r = removes.next_range_at_or_after(span_lo)
        while r is not None and (span_hi is None or r.min_key < span_hi):
            i = bisect_left(keys, r.min_key)
            j = len(keys) if r.max_key is None else bisect_left(keys, r.max_key)
            if i < j:
                del out[i:j], keys[i:j]
            if r.max_key is None:
                break
            r = removes.next_range_at_or_after(r.max_key)
    puts, adjusts = writes.puts, writes.adjusts
    put_keys = list(puts.irange(span_lo, span_hi, inclusive=(True, False))) if puts else []
    extra: Iterable[KVPair] = ()
    if put_keys:
        pairs = (collect_pairs if kept else collect_tracked)(
            map(_new_pair, _KVPAIRS, zip(put_keys, map(puts.__getitem__, put_keys), strict=True)),
            len(put_keys),
        )
        where = list(map(bisect_left, repeat(keys), put_keys))
        keys.append(_PAST_EVERY_KEY)  # so keys[i] exists for every i in where
        found = list(map(eq, map(keys.__getitem__, where), put_keys))
        keys.pop()
        if all(found):  # every put overwrites a base pair: R5b
            deque(map(out.__setitem__, where, pairs), 0)
        else:
            deque(map(out.__setitem__, compress(where, found), compress(pairs, found)), 0)
            extra = list(compress(pairs, map(not_, found)))
    if adjusts:  # (before the extra pairs go in: keys still match out)
        for k in adjusts.irange(span_lo, span_hi, inclusive=(True, False)):
            i = bisect_left(keys, k)
            if i < len(keys) and keys[i] == k and k not in puts:
                value = out[i][1]
                if len(value) == 8:
                    total = wrap64(decode_counter(value) + adjusts[k])
                    out[i] = make_pair((k, encode_counter(total)))
                    if kept:
                        untrack_pairs((out[i],))
    if extra:
        out += extra
        out.sort()
    if reverse:
        out.reverse()
    return out


class _ViewIterator(RangeIterator):
    """Merges the base's pairs with the view's writes, chunk by chunk.

    Each chunk is one batch of base pairs with the puts, removes and adjusts that fall in its
    span folded in, built with C-level list and dict operations, and handed out by delegating
    to the chunk's list iterator, so a scan runs at C speed between chunks (PERFORMANCE R5).
    A mutation of the view cuts the chunk short just after the last pair returned (truncating
    the list ends its iterator), and the next chunk re-seeks from there, so each pair returned
    reflects the view at the moment it is returned.  The span of the base walked is recorded
    as a read lazily: when the iterator ends, is closed or collected, or ``reads`` is asked for.
    """

    def __init__(
        self, view: MutableView, lo: bytes, hi: bytes | None, reverse: bool, track: bool
    ) -> None:
        self._view = view
        self._lo = lo
        self._hi = hi
        self._reverse = reverse
        self._track = track
        self._chunk_list: list[KVPair] = []
        self._chunk_it: Any = iter(self._chunk_list)  # a list iterator: has __length_hint__
        self._prev_last: bytes | None = None  # last key returned before the current chunk
        self._removed: bytes | None = None
        self._resync = False
        self._done = False  # reached the end of the range: the whole span is read
        self._closed = False
        self._released = False
        self._base_it: RangeIterator | None = None
        self._take: Callable[[int, bool], list[KVPair]] = _no_batch
        # How far chunks have covered: the next chunk starts here (forward: its inclusive
        # lower bound; reverse: its exclusive upper bound).
        self._edge: bytes | None = lo if not reverse else hi
        self._gen = self._generate()

    def _last_key(self) -> bytes | None:
        """The key of the pair last returned, or None."""
        chunk = self._chunk_list
        consumed = len(chunk) - self._chunk_it.__length_hint__()
        return chunk[consumed - 1][0] if consumed else self._prev_last

    def _cut(self) -> None:
        """The view changed: end the current chunk after the last pair returned."""
        chunk = self._chunk_list
        if chunk:
            del chunk[len(chunk) - self._chunk_it.__length_hint__() :]
        self._resync = True

    # -- read tracking -------------------------------------------------------------------------
    def _flush_span(self) -> None:
        """Record the span of the base walked so far (idempotent; extends as it goes)."""
        if not self._track:
            return
        view = self._view
        reads = view._reads
        if reads is None:
            return
        if self._done:
            _record_span(reads, self._lo, self._hi, view._writes)
            return
        last = self._last_key()
        if last is not None:
            if self._reverse:
                _record_span(reads, last, self._hi, view._writes)
            else:
                _record_span(reads, self._lo, key_after(last), view._writes)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- iteration -----------------------------------------------------------------------------
    def _open_base(self) -> RangeIterator:
        """(Re)open the base iterator just past the last pair returned."""
        if self._base_it is not None:
            self._base_it.close()
        last = self._last_key()
        if self._reverse:
            self._edge = self._hi if last is None else last
            it = self._view._base.get_range(self._lo, self._edge, reverse=True)
        else:
            self._edge = self._lo if last is None else key_after(last)
            it = self._view._base.get_range(self._edge, self._hi)
        self._base_it = it
        take = getattr(it, "next_batch", None)
        if take is None:
            source = iter(it)

            def take(limit: int, kept: bool = False) -> list[KVPair]:
                return list(islice(source, limit))

        self._take = take
        return it

    def _chunk(self, size: int, kept: bool) -> tuple[list[KVPair], bool]:
        """The next chunk of merged pairs, and whether it reaches the end of the range.

        ``kept``: the consumer kept the last chunk's pairs (see :func:`kept_pairs`).
        """
        reverse = self._reverse
        batch = self._take(size, kept)
        done = len(batch) < size
        # The chunk's span [span_lo, span_hi) in key order.
        if reverse:
            span_hi = self._edge
            span_lo = self._lo if done else batch[-1][0]
            self._edge = span_lo
        else:
            span_lo = self._edge  # type: ignore[assignment]
            span_hi = self._hi if done else key_after(batch[-1][0])
            self._edge = span_hi
        writes = self._view._writes
        removes, puts, adjusts = writes.removes, writes.puts, writes.adjusts
        has_removes = bool(removes._ends or removes._pending)
        if not (has_removes or puts or adjusts):
            return batch, done
        return _merge(batch, span_lo, span_hi, reverse, writes, has_removes, kept), done

    def _generate(self) -> Generator[KVPair, None, None]:
        lock = self._view._lock
        size = 16
        with lock:
            self._open_base()
        while True:
            with lock:
                if self._resync:
                    self._resync = False
                    self._open_base()
                    size = 16
                self._prev_last = self._last_key()
                chunk, done = self._chunk(size, kept_pairs(self._chunk_list))
                self._chunk_list = chunk
                self._chunk_it = it = iter(chunk)
            yield from it  # C speed until the chunk ends or a mutation cuts it (R5)
            with lock:
                if self._resync:
                    continue
                if done:
                    self._finish()
                    return
            if size < 2048:
                size *= 2

    def _finish(self) -> None:
        self._done = True
        self._flush_span()
        self._release()

    def _release(self) -> None:
        if self._base_it is not None:
            self._base_it.close()
            self._base_it = None
        if not self._released:
            self._released = True
            view = self._view
            if view._iterators is not None:
                view._iterators.discard(self)
            view._open_iterators -= 1

    def __iter__(self) -> Iterator[KVPair]:
        return self._gen

    def __next__(self) -> KVPair:
        return next(self._gen)

    def next_batch(self, limit: int, kept: bool = False) -> list[KVPair]:
        """Up to ``limit`` more pairs at once (a view over this view merges whole batches).

        ``kept`` is for the base stores' batches; this view judges its own chunks.
        """
        return list(islice(self._gen, limit))

    def remove(self) -> None:
        with self._view._lock:
            key = self._last_key()
            if key is None or key == self._removed:
                raise RuntimeError("remove() needs a pair returned by next() and not yet removed")
            self._removed = key
        self._view.remove(key)

    def close(self) -> None:
        if self._closed:
            return
        with self._view._lock:
            self._closed = True
            self._flush_span()
            self._gen.close()
            self._release()
