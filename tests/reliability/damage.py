"""Damage: truncate, zero and bit-flip a store's data file; opening and reading must not crash.

Each case copies a reference store, damages ``data.mdb`` one way, and has a child process
open it and read everything (every key of every range).  The only acceptable outcomes are
"intact" (the data read back equals what was written), "corrupt" (``kvstore.CorruptData``)
and "altered" -- LMDB keeps no checksums, so a flipped bit inside a value or key can read
back as a different value; the harness counts those but they are not crashes.  A child that
dies by a signal, or raises anything else, is a crash.

One child checks many cases in a row and prints ``start N`` / ``done N outcome`` around each,
so a crash is pinned on its case and the next child carries on after it.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

from tests.reliability.common import run, signal_name

#: The reference store's content: small and big values, so it has leaf and overflow pages.
N_KEYS = 400


def _content() -> dict[bytes, bytes]:
    pairs = {b"key/%05d" % i: b"value-%d-" % i * (1 + i % 7) for i in range(N_KEYS)}
    pairs.update({b"big/%d" % i: bytes([i]) * 9000 for i in range(4)})
    return pairs


@dataclass(frozen=True)
class Case:
    """One way of damaging the data file: truncate to ``size``, or write ``data`` at ``offset``."""

    name: str
    truncate: int | None = None
    offset: int = 0
    data: bytes = b""
    flip: int | None = None  # xor this byte at ``offset``

    def apply(self, path: str) -> None:
        with open(path, "r+b") as f:
            if self.truncate is not None:
                f.truncate(self.truncate)
            elif self.flip is not None:
                f.seek(self.offset)
                old = f.read(1)
                if old:
                    f.seek(self.offset)
                    f.write(bytes([old[0] ^ self.flip]))
            else:
                f.seek(self.offset)
                f.write(self.data)


def cases(file_size: int, n_random: int, seed: int = 0) -> list[Case]:
    """The fixed truncations and page damages, plus ``n_random`` random zero-ranges and flips."""
    page = 4096
    out = [
        Case(f"truncate {n}", truncate=n)
        for n in sorted(
            {
                0,
                1,
                8,
                page - 1,
                page,
                2 * page,
                3 * page,
                8 << 10,
                12 << 10,
                64 << 10,
                file_size // 2,
                file_size - page,
                file_size - 1,
            }
        )
        if 0 <= n < file_size
    ]
    for p in range(min(file_size // page, 8)):
        out.append(Case(f"zero page {p}", offset=p * page, data=bytes(page)))
        out.append(Case(f"0xff page {p}", offset=p * page, data=b"\xff" * page))
    for p in (0, 1):  # the two meta pages: every field of their headers
        for off in range(0, 160, 4):
            out.append(Case(f"flip meta {p}+{off}", offset=p * page + off, flip=0x80))
            out.append(Case(f"zero meta {p}+{off}", offset=p * page + off, data=bytes(4)))
    rng = random.Random(seed)
    for i in range(n_random):
        offset = rng.randrange(file_size)
        if i % 3 == 0:
            length = rng.choice([1, 16, 512, page, 3 * page])
            out.append(Case(f"zero {offset}+{length}", offset=offset, data=bytes(length)))
        else:
            bit = 1 << rng.randrange(8)
            out.append(Case(f"flip {offset} bit {bit:#x}", offset=offset, flip=bit))
    return out


@dataclass
class DamageResult:
    """Counts of outcomes; ``crashes`` (signal deaths plus foreign exceptions) must stay 0."""

    cases: int = 0
    intact: int = 0
    corrupt: int = 0
    altered: int = 0
    crashes: int = 0
    problems: list[str] = field(default_factory=list)


def run_damage(n_random: int, *, seed: int = 0, directory: str | None = None) -> DamageResult:
    """Build a reference store, then check every case of :func:`cases` in child processes."""
    import kvstore

    result = DamageResult()
    with tempfile.TemporaryDirectory(prefix="kv-damage-", dir=directory) as tmp:
        reference = os.path.join(tmp, "reference")
        with kvstore.open(reference) as db, db.transaction() as tx:
            for k, v in _content().items():
                tx.put(k, v)
        size = os.path.getsize(os.path.join(reference, "data.mdb"))
        todo = cases(size, n_random, seed)
        result.cases = len(todo)
        first = 0
        while first < len(todo):
            code, out, err = run(
                "tests.reliability.damage",
                reference,
                tmp,
                str(size),
                str(n_random),
                str(seed),
                str(first),
                timeout=600,
            )
            started = None
            for line in out.splitlines():
                words = line.split()
                if words[0] == "start":
                    started = int(words[1])
                elif words[0] == "done":
                    started = None
                    index, outcome = int(words[1]), words[2]
                    if outcome == "intact":
                        result.intact += 1
                    elif outcome == "corrupt":
                        result.corrupt += 1
                    elif outcome == "altered":
                        result.altered += 1
                    else:
                        result.crashes += 1
                        result.problems.append(f"{todo[index].name}: {' '.join(words[3:])}")
                    first = index + 1
            if code == 0 and started is None:
                break
            if started is None:  # died between cases: a harness fault, not a case's
                result.problems.append(f"damage child: {signal_name(code)}: {err[-500:]}")
                result.crashes += 1
                break
            result.crashes += 1
            result.problems.append(f"{todo[started].name}: child died, {signal_name(code)}")
            first = started + 1
    return result


def _check_one(path: str, expected: dict[bytes, bytes]) -> str:
    import kvstore

    try:
        with kvstore.open(path, create=False) as db, db.transaction(read_only=True) as tx:
            got = dict(tx.get_range())
            for key in list(got)[:: max(1, len(got) // 50)]:
                tx.get(key)
            list(tx.get_range(reverse=True))
    except kvstore.CorruptData:
        return "corrupt"
    except Exception as e:
        return f"error {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return "intact" if got == expected else "altered"


def _child(argv: list[str]) -> int:
    reference, tmp, size, n_random, seed, first = argv
    todo = cases(int(size), int(n_random), int(seed))
    expected = _content()
    for index in range(int(first), len(todo)):
        path = os.path.join(tmp, "case")
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(reference, path)
        todo[index].apply(os.path.join(path, "data.mdb"))
        print(f"start {index}", flush=True)
        print(f"done {index} {_check_one(path, expected)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
