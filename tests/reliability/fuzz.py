"""Hostile input: fuzz every deserializer; only its documented exceptions may come out.

Targets (:func:`targets`) and what each documents for bad input:

- ``tuple_unpack``: :func:`kvstore.tuple.unpack` -- ``CorruptData``;
- ``writes``, ``reads``, ``key_ranges``: ``Writes/Reads/KeyRanges.deserialize`` (the codec of
  kvstore/codec.py) -- ``CorruptData``;
- ``cli_load``: the ``kvstore load`` line parser (``kvstore.cli._dump_pairs``) -- a bad line
  raises ``kvstore.cli.BadLine`` naming the line.  Input is decoded as stdin is (UTF-8,
  surrogateescape).

For the codec targets an input whose first byte is odd gets a correct CRC32 appended over the
rest, so the fuzzer reaches the body decoder instead of stopping at the checksum.  Each case
must finish within :data:`CASE_SECONDS` and the process must stay under :data:`RSS_LIMIT`.

Seed corpora live in ``tests/reliability/corpus/<target>/`` (``python -m
tests.reliability.fuzz corpus`` rewrites them).  The smoke version runs each target over its
corpus plus random mutations without atheris; ``python -m tests.reliability.fuzz atheris
TARGET RUNS`` runs coverage-guided fuzzing with atheris (extra ``reliability``).
"""

from __future__ import annotations

import io
import os
import random
import re
import resource
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.common import run, signal_name

CORPUS = Path(__file__).parent / "corpus"
#: The longest one case may take.
CASE_SECONDS = 2.0
#: The most memory a fuzzing process may hold (libFuzzer's -rss_limit_mb for atheris).
RSS_LIMIT = 512 << 20


def _crc_fixed(data: bytes) -> bytes:
    """``data[1:]``; when ``data[0]`` is odd, with its last 4 bytes set to the CRC32 of the rest."""
    if not data:
        return data
    if not data[0] & 1:
        return data[1:]
    body = data[1:-4] if len(data) > 5 else data[1:]
    return body + struct.pack(">I", zlib.crc32(body))


def _tuple_unpack(data: bytes) -> None:
    from kvstore.tuple import unpack

    unpack(data)


def _writes(data: bytes) -> None:
    from kvstore.mutations import Writes

    Writes.deserialize(_crc_fixed(data))


def _reads(data: bytes) -> None:
    from kvstore.reads import Reads

    Reads.deserialize(_crc_fixed(data))


def _key_ranges(data: bytes) -> None:
    from kvstore.ranges import KeyRanges

    KeyRanges.deserialize(_crc_fixed(data))


def _cli_load(data: bytes) -> None:
    from kvstore.cli import _dump_pairs

    text = io.StringIO(data.decode("utf-8", "surrogateescape"))
    for _ in _dump_pairs(text):
        pass


@dataclass(frozen=True)
class Target:
    """A deserializer to fuzz and the exceptions its documentation allows."""

    fn: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]


#: The targets' names (importing this module does not import kvstore, so atheris can
#: instrument kvstore as it is imported).
TARGET_NAMES = ["tuple_unpack", "writes", "reads", "key_ranges", "cli_load"]


def targets() -> dict[str, Target]:
    """Every target by name, with the exceptions its documentation allows."""
    from kvstore import CorruptData
    from kvstore.cli import BadLine

    return {
        "tuple_unpack": Target(_tuple_unpack, (CorruptData,)),
        "writes": Target(_writes, (CorruptData,)),
        "reads": Target(_reads, (CorruptData,)),
        "key_ranges": Target(_key_ranges, (CorruptData,)),
        "cli_load": Target(_cli_load, (BadLine,)),
    }


def make_corpus() -> None:
    """(Re)write the seed corpora: valid values of each kind, a few bytes each."""
    import base64
    import json

    from kvstore.backends.memory import MemoryStore
    from kvstore.ranges import KeyRange, KeyRanges
    from kvstore.reads import Reads
    from kvstore.tuple import pack
    from kvstore.view import MutableView

    seeds: dict[str, list[bytes]] = {
        "tuple_unpack": [
            pack(()),
            pack((1, -1, 2**70, "é", b"a\x00b", None, True, 1.5)),
            pack((("nested", (1, (2,))), -(2**64))),
        ],
        "cli_load": [
            b"",
            (json.dumps({"key": base64.b64encode(b"k").decode(), "value": "dg=="}) + "\n").encode(),
            b'{"key": "AA==", "value": ""}\n\n{"key": "/w==", "value": "AAAA"}\n',
        ],
    }
    view = MutableView(MemoryStore())
    view.remove_range(b"c", b"d")
    view.remove_range(b"x", None)
    view.put(b"a", b"1")
    view.put(b"ab", b"2" * 40)
    view.adjust_counter(b"n", -3)
    seeds["writes"] = [MutableView(MemoryStore()).writes.serialize(), view.writes.serialize()]
    r = Reads([KeyRange(b"k", b"k\x00"), KeyRange(b"a", b"b")])
    seeds["reads"] = [Reads().serialize(), r.serialize()]
    kr = KeyRanges([KeyRange(b"a", b"b"), KeyRange(b"c", None)])
    seeds["key_ranges"] = [KeyRanges().serialize(), kr.serialize()]
    for target, blobs in seeds.items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, blob in enumerate(blobs):
            if target not in ("tuple_unpack", "cli_load"):
                blob = b"\x00" + blob  # even first byte: leave the CRC as it is
            (folder / f"seed{i}").write_bytes(blob)


def corpus(target: str) -> list[bytes]:
    """The seed inputs of ``target``."""
    folder = CORPUS / target
    return [p.read_bytes() for p in sorted(folder.iterdir())] if folder.is_dir() else []


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.3 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif choice < 0.5:
            out.insert(
                rng.randint(0, len(out)), rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
            )
        elif choice < 0.65 and out:
            del out[rng.randrange(len(out)) :]
        elif choice < 0.8:
            pos = rng.randint(0, len(out))
            out[pos:pos] = rng.choice([b"\xff" * 10, b"\x80" * 12, b"\x05" * 40, os.urandom(8)])
        elif out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    if rng.random() < 0.5:
        out[:1] = bytes([(out[0] | 1) if out else 1])
    return bytes(out)


@dataclass
class FuzzResult:
    """Executions and failures; ``crashes`` (foreign exceptions, slow cases, signals) must be 0."""

    executions: int = 0
    crashes: int = 0
    slowest: float = 0.0
    rss_growth: int = 0
    mode: str = "random"
    problems: list[str] = field(default_factory=list)


def run_random(target: str, n_random: int, seed: int = 0) -> FuzzResult:
    """Run ``target`` over its corpus and ``n_random`` mutations of it, in this process."""
    t = targets()[target]
    rng = random.Random(seed)
    seeds = corpus(target) or [b""]
    result = FuzzResult()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    inputs = [*seeds, *(_mutate(rng.choice(seeds), rng) for _ in range(n_random))]
    for data in inputs:
        started = time.perf_counter()
        try:
            t.fn(data)
        except t.allowed:
            pass
        except BaseException as e:
            result.crashes += 1
            result.problems.append(f"{target}({data!r}): {type(e).__name__}: {e}"[:400])
        took = time.perf_counter() - started
        result.slowest = max(result.slowest, took)
        if took > CASE_SECONDS:
            result.crashes += 1
            result.problems.append(f"{target}({data[:60]!r}...): took {took:.1f}s")
        result.executions += 1
    result.rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
    if result.rss_growth > RSS_LIMIT:
        result.crashes += 1
        result.problems.append(f"{target}: peak RSS grew {result.rss_growth >> 20} MiB")
    return result


def run_atheris(target: str, runs: int, timeout: float = 900) -> FuzzResult:
    """Coverage-guided fuzzing of ``target`` for ``runs`` executions in a child process."""
    if target not in TARGET_NAMES:
        raise ValueError(f"target: unknown fuzz target {target!r}; known: {TARGET_NAMES}")
    result = FuzzResult(mode="atheris")
    with tempfile.TemporaryDirectory(prefix="kv-fuzz-") as tmp:
        work = os.path.join(tmp, "corpus")
        shutil.copytree(CORPUS / target, work)
        code, _out, err = run(
            "tests.reliability.fuzz",
            "atheris",
            target,
            work,
            f"-runs={runs}",
            f"-rss_limit_mb={RSS_LIMIT >> 20}",
            f"-timeout={int(CASE_SECONDS) + 1}",
            "-max_len=4096",
            timeout=timeout,
        )
    done = re.search(r"Done (\d+) runs", err)
    result.executions = int(done.group(1)) if done else 0
    if code != 0:
        result.crashes += 1
        tail = "\n".join(err.splitlines()[-15:])
        result.problems.append(f"{target}: atheris {signal_name(code)}:\n{tail}")
    return result


def _atheris_main(argv: list[str]) -> int:
    import atheris

    target, corpus_dir, *flags = argv
    with atheris.instrument_imports(include=["kvstore"]):
        import kvstore.cli
        import kvstore.codec
        import kvstore.mutations
        import kvstore.ranges
        import kvstore.reads
        import kvstore.tuple  # noqa: F401
    t = targets()[target]

    def one_input(data: bytes) -> None:
        try:
            t.fn(data)
        except t.allowed:
            pass

    atheris.Setup([sys.argv[0], corpus_dir, *flags], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["corpus"]:
        make_corpus()
    elif sys.argv[1:2] == ["atheris"]:
        sys.exit(_atheris_main(sys.argv[2:]))
    else:
        raise SystemExit("usage: python -m tests.reliability.fuzz corpus | atheris TARGET DIR")
