"""``kvstore bench`` from an installed distribution: the suite ships as ``kvstore_benchmarks``
and is found through its entry point, outside any source checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources, installed (no dependencies) into a folder."""
    top = tmp_path_factory.mktemp("installed")
    src = top / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for package in ("kvstore", "benchmarks"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = top / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "-w", str(wheels), str(src)]
    # With the setuptools at hand when it can build wheels itself, else in pip's isolation
    # (which fetches the build-system requirements from the package index).
    done = subprocess.run([*build, "--no-build-isolation"], capture_output=True, timeout=300)
    if done.returncode:
        subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("kvstore_delta-*.whl")
    site = top / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    return site


def _kvstore(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, "-c", "import sys, kvstore.cli; sys.exit(kvstore.cli.main())", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def test_the_wheel_holds_the_suite_beside_the_library(installed: Path) -> None:
    assert (installed / "kvstore_benchmarks" / "rows.py").is_file()
    assert not (installed / "benchmarks").exists()  # no top-level name that collides
    (info,) = installed.glob("kvstore_delta-*.dist-info")
    assert "kvstore_benchmarks.__main__:main" in (info / "entry_points.txt").read_text()


def test_bench_runs_from_an_installed_package_outside_a_checkout(
    installed: Path, tmp_path: Path
) -> None:
    proc = _kvstore(installed, tmp_path, "bench", "--rows", "R1")
    assert proc.returncode == 0, proc.stderr
    assert "R1" in proc.stdout and "view get" in proc.stdout


def test_bench_errors_go_to_stderr(installed: Path, tmp_path: Path) -> None:
    proc = _kvstore(installed, tmp_path, "bench", "--rows", "NOPE")
    assert proc.returncode != 0
    assert "NOPE" in proc.stderr and "NOPE" not in proc.stdout
