"""Run persidict's own test suite against ``kvstore.PersiDict`` and classify the outcome.

``python -m tests.compat.persidict_suite [--version 0.309.0]`` (or ``tox -e persidict-suite``)
downloads persidict's source package from the index into a temporary directory (it is never
kept in this repository), runs its suite twice -- as published, then with
:mod:`tests.compat.persidict_shim` standing in for ``LocalDict``/``FileDirDict`` -- and prints,
for the tests that apply to a local dict (parametrized over ``LocalDict``/``FileDirDict``, or
in files that use only those), how many pass on each, and every test that passes on persidict
but not on kvstore.  Needs network access to the package index and the suite's own test
dependencies (moto, numpy, pandas, ... -- installed by the tox environment).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["main"]

_PARAM_LOCAL = re.compile(r"LocalDict|FileDirDict")
_OTHER = re.compile(
    r"S3Dict|Cached|MutableDict|OverlappingMultiDict|WriteOnceDict|EmptyDict|AppendOnlyDict|mock_aws"
)


def _outcomes(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        status = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                status = "fail"
            elif child.tag == "skipped":
                status = "skip"
        out[name] = status
    return out


def _applies(name: str, root: Path) -> bool:
    module, _, test = name.partition("::")
    if "[" in test:
        params = test.split("[", 1)[1]
        if _PARAM_LOCAL.search(params):
            return not _OTHER.search(params)
    try:
        source = (root / (module.replace(".", "/") + ".py")).read_text()
    except OSError:
        return False
    return bool(_PARAM_LOCAL.search(source)) and not _OTHER.search(source)


def _run(suite: Path, junit: Path, shim: bool) -> None:
    env = dict(os.environ)
    args = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", f"--junitxml={junit}"]
    args += ["tests", "--ignore=tests/__live_actions__"]
    if shim:
        repo = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
        args[3:3] = ["-p", "tests.compat.persidict_shim"]
    subprocess.run(args, cwd=suite, env=env, check=False, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.309.0", help="persidict version (default 0.309.0)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="persidict-suite-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"persidict=={args.version}",
                "-d",
                str(work),
            ],
            check=True,
        )
        (sdist,) = work.glob("persidict-*.tar.gz")
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        suite = work / f"persidict-{args.version}"
        _run(suite, work / "base.xml", shim=False)
        _run(suite, work / "kv.xml", shim=True)
        base, kv = _outcomes(work / "base.xml"), _outcomes(work / "kv.xml")
        applicable = [n for n in kv if _applies(n, suite)]
        passing = [n for n in applicable if base.get(n) == "pass"]
        differ = sorted(n for n in passing if kv[n] != "pass")
        print(
            f"persidict {args.version}: {len(base)} tests; {len(applicable)} apply to a local dict"
        )
        print(f"  pass on persidict: {len(passing)}; pass on kvstore: {len(passing) - len(differ)}")
        for name in differ:
            print(f"  differs: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
