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
from abc import abstractmethod
from collections.abc import Generator, Iterator
from itertools import islice
from threading import get_ident

from kvstore.counters import check_amount, decode_counter, encode_counter, wrap64
from kvstore.errors import KVError, ReadOnlyError, StoreClosed
from kvstore.keys import MAX_KEY_SIZE, check_bound, check_bounds, check_key, check_value, key_after
from kvstore.mutations import Mutations, Writes
from kvstore.ranges import KeyRange
from kvstore.reads import Reads
from kvstore.store import KVPair, KVStore, RangeIterator, make_pair

__all__ = ["DeltaKVStore", "MutableView"]


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
        self._base = base
        self._base_get = base.get
        self._writes = Writes() if writes is None else writes
        self._reads: Reads | None = (Reads() if reads is None else reads) if track_reads else None
        self._lock = threading.RLock()
        self._read_only = False
        # thread ident -> stack of allow_writes flags, for without_read_tracking()
        self._untracked: dict[int, list[bool]] = {}
        self._iterators: weakref.WeakSet[_ViewIterator] = weakref.WeakSet()
        self._mod = 0  # bumped by every mutation, so open iterators notice and re-seek
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

    @contextlib.contextmanager
    def without_read_tracking(self, allow_writes: bool = False) -> Iterator[None]:
        ident = threading.get_ident()
        with self._lock:
            self._untracked.setdefault(ident, []).append(bool(allow_writes))
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
            self._mod += 1

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
        if type(key) is not bytes or len(key) > MAX_KEY_SIZE:
            key = check_key(key)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            writes = self._writes
            value: bytes | None = writes.puts.get(key)
            if value is not None:
                return value
            removes = writes.removes
            # Emptiness tested without a Python-level call (PERFORMANCE R1).
            if (removes._ends or removes._pending) and removes.covers_key(key):
                return None
            value = self._base_get(key)
            reads = self._reads
            if reads is not None and not (self._untracked and get_ident() in self._untracked):
                reads._pending.append(key)  # Reads.add_key, inlined (PERFORMANCE R1)
            if value is not None and writes.adjusts:
                amount = writes.adjusts.get(key)
                if amount is not None and len(value) == 8:
                    value = encode_counter(wrap64(decode_counter(value) + amount))
            return value

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        lo, hi = check_bounds(min_key, max_key)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            it = _ViewIterator(self, lo, hi, bool(reverse), self._tracking() is not None)
            self._iterators.add(it)
            return it

    def get_at_least(self, min_key: bytes, max_key: bytes | None = None) -> KVPair | None:
        lo = check_key(min_key, "min_key")
        hi = check_bound(max_key, "max_key")
        if hi is not None and hi <= lo:
            return None
        with self.get_range(lo, hi) as it:
            return next(it, None)

    def get_at_most(self, max_key: bytes | None, min_key: bytes | None = None) -> KVPair | None:
        hi = check_bound(max_key, "max_key")
        lo = b"" if min_key is None else check_key(min_key, "min_key")
        if hi is not None and lo >= hi:
            return None
        with self.get_range(lo, hi, reverse=True) as it:
            return next(it, None)

    # -- writes --------------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or len(key) > MAX_KEY_SIZE:
            key = check_key(key)
        if type(value) is not bytes:
            value = check_value(value)
        with self._lock:
            self._check_writable()
            self._writes.record_put(key, value)
            self._mod += 1

    def remove(self, key: bytes) -> None:
        key = check_key(key)
        with self._lock:
            self._check_writable()
            self._writes.record_remove(key)
            self._mod += 1

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        lo, hi = check_bounds(min_key, max_key)
        with self._lock:
            self._check_writable()
            if hi is None or lo < hi:
                self._writes.record_remove_range(lo, hi)
                self._mod += 1

    def adjust_counter(self, key: bytes, amount: int) -> None:
        key = check_key(key)
        amount = check_amount(amount)
        with self._lock:
            self._check_writable()
            self._writes.record_adjust(key, amount)
            self._mod += 1

    def apply(self, mutations: Mutations) -> None:
        """Record ``mutations`` as if each were done here (removes, puts, adjusts), atomically."""
        with self._lock:
            self._check_writable()
            super().apply(mutations)

    def close(self) -> None:
        """Close the view and its open iterators (recording what they read).

        Later use raises :class:`~kvstore.StoreClosed`; reads and writes stay readable, and
        the base is left open.  Idempotent.
        """
        with self._lock:
            for it in list(self._iterators):
                it.close()
            self._closed = True

    def __repr__(self) -> str:
        w = self._writes
        return (
            f"<MutableView over {type(self._base).__name__}: {len(w.puts)} puts, "
            f"{len(w.removes)} removed ranges, {len(w.adjusts)} adjusts>"
        )


class _ViewIterator(RangeIterator):
    """Merges the base's pairs with the view's writes, chunk by chunk.

    Each chunk is one batch of base pairs with the puts, removes and adjusts that fall in its
    span folded in, built mostly with C-level list and dict operations (PERFORMANCE R5).  A
    mutation of the view invalidates the chunk: the iterator re-seeks just past the last pair
    it returned.  The span of the base it walked is recorded as a read, lazily: when it ends,
    is closed, is collected, or the view's ``reads`` is asked for.
    """

    def __init__(
        self, view: MutableView, lo: bytes, hi: bytes | None, reverse: bool, track: bool
    ) -> None:
        self._view = view
        self._lo = lo
        self._hi = hi
        self._reverse = reverse
        self._track = track
        self._last: bytes | None = None  # key last returned
        self._removable: bytes | None = None
        self._done = False  # reached the end of the range: the whole span is read
        self._closed = False
        self._base_it: RangeIterator | None = None
        # How far chunks have covered: the next chunk starts here (forward: its inclusive
        # lower bound; reverse: its exclusive upper bound).
        self._edge: bytes | None = lo if not reverse else hi
        self._gen = self._generate()

    # -- read tracking -------------------------------------------------------------------------
    def _flush_span(self) -> None:
        """Record the span of the base walked so far (idempotent; extends as it goes)."""
        if not self._track:
            return
        reads = self._view._reads
        if reads is None:
            return
        last = self._last
        if self._done:
            reads.add_range(self._lo, self._hi)
        elif last is not None:
            if self._reverse:
                reads.add_range(last, self._hi)
            else:
                reads.add_range(self._lo, key_after(last))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- iteration -----------------------------------------------------------------------------
    def _open_base(self) -> RangeIterator:
        """(Re)open the base iterator just past the last pair returned."""
        if self._base_it is not None:
            self._base_it.close()
        last = self._last
        if self._reverse:
            self._edge = self._hi if last is None else last
            it = self._view._base.get_range(self._lo, self._edge, reverse=True)
        else:
            self._edge = self._lo if last is None else key_after(last)
            it = self._view._base.get_range(self._edge, self._hi)
        self._base_it = it
        return it

    def _chunk(self, base_it: Iterator[KVPair], size: int) -> tuple[list[KVPair], bool]:
        """The next chunk of merged pairs, and whether it reaches the end of the range."""
        view = self._view
        reverse = self._reverse
        batch = list(islice(base_it, size))
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
        writes = view._writes
        removes, puts, adjusts = writes.removes, writes.puts, writes.adjusts
        if removes and removes.intersects(KeyRange._make(span_lo, span_hi)):
            covers = removes.covers_key
            batch = [p for p in batch if not covers(p[0])]
        if not puts and not adjusts:
            return batch, done
        merged = dict(batch)
        n = len(merged)
        if puts:
            for k in puts.irange(span_lo, span_hi, inclusive=(True, False)):
                merged[k] = puts[k]
        if adjusts:
            for k in adjusts.irange(span_lo, span_hi, inclusive=(True, False)):
                value = merged.get(k)
                if value is not None and len(value) == 8 and k not in puts:
                    merged[k] = encode_counter(wrap64(decode_counter(value) + adjusts[k]))
        items = merged.items()
        if len(merged) != n:
            return list(map(make_pair, sorted(items, reverse=reverse))), done
        return list(map(make_pair, items)), done

    def _generate(self) -> Generator[KVPair, None, None]:
        view = self._view
        lock = view._lock
        size = 16
        with lock:
            base_it = self._open_base()
        while True:
            with lock:
                mod = view._mod
                chunk, done = self._chunk(base_it, size)
            for pair in chunk:
                if view._mod != mod:
                    break  # the view changed: re-seek after the last pair returned
                self._last = pair[0]
                self._removable = pair[0]
                yield pair
            else:
                if done:
                    with lock:
                        self._finish()
                    return
                if size < 2048:
                    size *= 2
                continue
            with lock:
                base_it = self._open_base()
            size = 16

    def _finish(self) -> None:
        self._done = True
        self._flush_span()
        self._release()

    def _release(self) -> None:
        if self._base_it is not None:
            self._base_it.close()
            self._base_it = None
        self._view._iterators.discard(self)

    def __iter__(self) -> Iterator[KVPair]:
        return self

    def __next__(self) -> KVPair:
        return next(self._gen)

    def remove(self) -> None:
        key = self._removable
        if key is None:
            raise RuntimeError("remove() needs a pair returned by next() and not yet removed")
        self._view.remove(key)
        self._removable = None

    def close(self) -> None:
        if self._closed:
            return
        with self._view._lock:
            self._closed = True
            self._flush_span()
            self._gen.close()
            self._release()
