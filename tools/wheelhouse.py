# Copyright: MNAAS platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build an offline wheelhouse of the edge nodes' Python libraries for the NODES' Python, on any controller.

    python3 tools/wheelhouse.py [--python 3.9] [--glibc 2.28] [--arch x86_64] [-r requirements-nodes.txt] [-o .build/wheelhouse]

(``make wheelhouse`` runs it.) The edge nodes have an older system Python, no pip and no internet, and this
machine may run another Python, so nothing is resolved for this interpreter:

1. ``pip download --only-binary=:all:`` for CPython ``--python`` (ABIs cp3X, abi3, none) on every manylinux
   platform a glibc of ``--glibc`` or newer accepts: ``manylinux_2_N`` from the given N down to 17, ``manylinux2014``
   and, on x86_64/i686, the older aliases ``manylinux2010`` and ``manylinux1`` (pip matches only the exact tags
   it is given, and a wheel may carry only the alias). The wheels already in the directory are found first (``--find-links``).
2. A library without a wheel for the nodes (published only as source, or with binary wheels for newer Pythons
   only) makes that fail with "No matching distribution found for X". X is then built here from its source with
   ``pip wheel --no-deps --no-binary X`` and no C compiler (``CC=false``, ``CXX=false``: a library whose C
   extension is optional, such as thrift, falls back to pure Python, whatever compilers this machine has). The
   wheel must be pure Python (``py3-none-any``, ``py2.py3-none-any``), which runs on any Python 3, else this fails
   naming it. Then step 1 again, at most 20 rounds.
3. A ``pip`` wheel for the nodes' Python (the nodes have none), the requirements file copied as
   ``requirements-nodes.txt``, and ``wheelhouse.json``: the inputs, the requirement lines, the wheel files with
   size and sha256, and the wheels built here.

A rerun with the same inputs reuses what is there (offline when nothing is missing); other inputs (Python,
glibc, arch, requirement lines) clear the directory's wheels first. On a node, pip runs from its wheel (the
file name is wheelhouse.json's ``pip``):

    python3 -m venv --without-pip VENV
    VENV/bin/python DIR/pip-X-py3-none-any.whl/pip install --no-index --find-links DIR -r DIR/requirements-nodes.txt

On Python 3.9 pip finds its install paths with distutils, which a minimal Debian 11 lacks (it is the separate
package python3-distutils): there pip fails with "No module named 'distutils.cmd'". wheelhouse.json's ``install``
is a command that works with or without it, telling pip to use sysconfig (its default from Python 3.10 on):

    VENV/bin/python -c "PIP_LAUNCHER" DIR/pip-X-py3-none-any.whl install --no-index --find-links DIR -r DIR/requirements-nodes.txt

Exit status: 0 when the wheelhouse is complete, 1 on an error (the message names the library), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

DEFAULT_PYTHON = "3.9"
DEFAULT_GLIBC = "2.28"
DEFAULT_ARCH = "x86_64"
DEFAULT_REQUIREMENTS = "requirements-nodes.txt"
DEFAULT_OUTPUT = ".build/wheelhouse"
MAX_ROUNDS = 20
OLDEST_GLIBC_MINOR = 17  # manylinux2014 = manylinux_2_17, the oldest tag of every architecture
# The legacy manylinux names pip still knows, by the glibc 2.N they stand for, and the architectures pip gives them
# (None: every one; glibc 2.5 and 2.12 only on x86, the other architectures start at 2.17).
LEGACY_ALIASES = ((17, "manylinux2014", None),
                  (12, "manylinux2010", ("x86_64", "i686")),
                  (5, "manylinux1", ("x86_64", "i686")))
PURE_PYTHON_TAGS = ({"py3"}, {"py2", "py3"})
MANIFEST = "wheelhouse.json"
# Runs pip from its wheel (argv[1]) with sysconfig install paths instead of distutils (see the docstring).
PIP_LAUNCHER = ("import runpy, sys, sysconfig; sysconfig._PIP_USE_SYSCONFIG = True; sys.path.insert(0, sys.argv.pop(1)); "
                "sys.argv[0] = 'pip'; runpy.run_module('pip', run_name='__main__', alter_sys=True)")
BUILT_LIST = ".built-here"  # the wheels built here, one a line, kept as they are built (an interrupted run loses none)
REQUIREMENTS_COPY = "requirements-nodes.txt"
# "No matching distribution found for PyHive>=0.7.0", "... for docopt (from hdfs)", "... for x>=1; extra == 'y'"
NOT_FOUND_RE = re.compile(r"No matching distribution found for (?P<req>[^\r\n]+?)(?: \(from [^\r\n]*\))?[ \t\r]*$", re.MULTILINE)
NAME_RE = re.compile(r"\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


class WheelhouseError(Exception):
    """The wheelhouse cannot be built; the message says why and names the library."""


class Target(NamedTuple):
    """The nodes' interpreter and platform."""

    python: str  # "3.9"
    glibc: str   # "2.28": the oldest glibc of the nodes
    arch: str    # "x86_64"

    @property
    def abi(self) -> str:
        """The CPython ABI tag, for example ``cp39``."""
        return "cp" + self.python.replace(".", "")

    def pip_options(self) -> list[str]:
        """The ``pip download`` options that select wheels for the nodes instead of this interpreter."""
        options = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp"]
        for abi in (self.abi, "abi3", "none"):
            options += ["--abi", abi]
        for platform in platform_tags(self.glibc, self.arch):
            options += ["--platform", platform]
        return options


def check_target(python: str, glibc: str, arch: str) -> Target:
    """The target, or ValueError naming the bad value."""
    if not re.fullmatch(r"3\.\d+", python):
        raise ValueError(f"--python must be a CPython 3 version such as 3.9, not {python!r}")
    glibc_minor(glibc)
    if not re.fullmatch(r"[a-z0-9_]+", arch):
        raise ValueError(f"--arch must be a machine name such as x86_64 or aarch64, not {arch!r}")
    return Target(python, glibc, arch)


def glibc_minor(glibc: str) -> int:
    """N of a glibc version 2.N (N >= 17, the oldest manylinux of every architecture), else ValueError."""
    match = re.fullmatch(r"2\.(\d+)", glibc)
    if not match or int(match.group(1)) < OLDEST_GLIBC_MINOR:
        raise ValueError(f"--glibc must be a glibc version 2.N with N >= {OLDEST_GLIBC_MINOR}, such as 2.28, not {glibc!r}")
    return int(match.group(1))


def platform_tags(glibc: str, arch: str) -> list[str]:
    """Every manylinux platform tag a node with this glibc (or newer) and architecture accepts, newest first."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor(glibc), OLDEST_GLIBC_MINOR - 1, -1)]
    return tags + [f"{alias}_{arch}" for _minor, alias, arches in LEGACY_ALIASES if arches is None or arch in arches]


def missing_distribution(output: str) -> str | None:
    """The requirement of pip's "No matching distribution found for X" (``(from parent)`` and marker dropped), or None."""
    match = NOT_FOUND_RE.search(output)
    if not match:
        return None
    requirement = match.group("req").split(";", 1)[0].strip()
    return requirement or None


def project_name(requirement: str) -> str:
    """The normalized project name of a requirement (PEP 503): ``Thrift_SASL>=0.4`` -> ``thrift-sasl``."""
    match = NAME_RE.match(requirement)
    if not match:
        raise WheelhouseError(f"cannot read a project name in the requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group("name")).lower()


def wheel_tags(filename: str) -> tuple[set[str], str, str]:
    """The python tags, ABI tag and platform tag of a wheel file name (PEP 427)."""
    parts = filename[:-len(".whl")].split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6):
        raise WheelhouseError(f"{filename} is not a wheel file name")
    return set(parts[-3].split(".")), parts[-2], parts[-1]


def is_pure(filename: str) -> bool:
    """Whether the wheel is pure Python 3: ``py3-none-any`` or ``py2.py3-none-any``."""
    pythons, abi, platform = wheel_tags(filename)
    return pythons in PURE_PYTHON_TAGS and abi == "none" and platform == "any"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, without comments and blank lines (no pip options)."""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line.startswith("-"):
            raise WheelhouseError(f"{path}:{number}: only requirement lines are supported (the file is copied alone), not {line!r}")
        if line:
            lines.append(line)
    if not lines:
        raise WheelhouseError(f"{path} holds no requirement")
    return lines


def run_pip(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run this interpreter's pip; stdout and stderr together, never raising on its exit status."""
    return subprocess.run([sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                          env=env)


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def build_pure_wheel(requirement: str, wheelhouse: Path) -> str:
    """Build the requirement's wheel here from its source (no dependencies, no C compiler, no cache of earlier
    builds), require it pure Python, move it into the wheelhouse; its file name."""
    # PIP_USE_PEP517: a pip older than 25.3 could build with `setup.py bdist_wheel`, which needs the wheel package;
    # newer ones always build in an isolated PEP 517 environment and ignore it (--use-pep517 would be an error).
    env = dict(os.environ, CC="false", CXX="false", PIP_USE_PEP517="1")
    args = ["wheel", "--no-deps", "--no-cache-dir", "--no-binary", project_name(requirement), "-w"]
    with tempfile.TemporaryDirectory(prefix="wheelhouse-build-") as scratch:
        result = run_pip([*args, scratch, requirement], env=env)
        if result.returncode != 0:
            raise WheelhouseError(f"{requirement}: no wheel for the nodes' Python and platform, and building a pure-Python wheel from its "
                                  f"source failed (C extensions are not compiled here):\n{_tail(result.stdout)}")
        built = sorted(name for name in os.listdir(scratch) if name.endswith(".whl"))
        if len(built) != 1:
            raise WheelhouseError(f"{requirement}: building from source gave {len(built)} wheels, expected one: {built}")
        if not is_pure(built[0]):
            raise WheelhouseError(
                f"{requirement}: no wheel for the nodes' platform, and the wheel built from its source here, {built[0]}, is not pure "
                "Python (py3-none-any): it would not run on the nodes. Pin a version that publishes manylinux wheels for the nodes' "
                "Python, or build this wheel on a machine like the nodes.")
        shutil.move(os.path.join(scratch, built[0]), str(wheelhouse / built[0]))
    return built[0]


def download(target: Target, requirements: Path, wheelhouse: Path, rounds: int = MAX_ROUNDS) -> list[str]:
    """Fill the wheelhouse with the requirements and their dependencies for the target; the wheels built here.

    Offline first when the wheelhouse already has wheels (a rerun); then from the index, building the
    source-only libraries one per round."""
    common = ["download", *target.pip_options(), "--find-links", str(wheelhouse), "-d", str(wheelhouse), "-r", str(requirements)]
    if any(wheelhouse.glob("*.whl")) and run_pip([*common, "--no-index"]).returncode == 0:
        return []
    built: dict[str, str] = {}
    for _round in range(rounds):
        result = run_pip(common)
        if result.returncode == 0:
            return sorted(built.values())
        requirement = missing_distribution(result.stdout)
        if requirement is None:
            raise WheelhouseError(f"pip download failed:\n{_tail(result.stdout)}")
        name = project_name(requirement)
        if name in built:
            raise WheelhouseError(
                f"{requirement}: pip finds no distribution for the nodes even after {built[name]} was built here; "
                f"does it support Python {target.python}?\n{_tail(result.stdout)}")
        sys.stderr.write(f"wheelhouse: no wheel of {requirement} for CPython {target.python} {target.arch}: building it from source\n")
        built[name] = build_pure_wheel(requirement, wheelhouse)
        with (wheelhouse / BUILT_LIST).open("a", encoding="utf-8") as listing:
            listing.write(built[name] + "\n")
    raise WheelhouseError(f"still libraries without a wheel after {rounds} rounds (built so far: {', '.join(sorted(built.values()))})")


def download_pip(target: Target, wheelhouse: Path) -> str:
    """The pip wheel the nodes install with: the one in the wheelhouse, else the newest for the nodes' Python."""
    present = sorted(path.name for path in wheelhouse.glob("pip-*.whl"))
    if not present:
        result = run_pip(["download", *target.pip_options(), "--no-deps", "-d", str(wheelhouse), "pip"])
        present = sorted(path.name for path in wheelhouse.glob("pip-*.whl"))
        if result.returncode != 0 or not present:
            raise WheelhouseError(f"cannot download a pip wheel for Python {target.python}:\n{_tail(result.stdout)}")
    if len(present) > 1:
        raise WheelhouseError(f"more than one pip wheel in {wheelhouse}: {', '.join(present)}; remove all but one")
    return present[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(wheelhouse: Path) -> dict:
    try:
        manifest = json.loads((wheelhouse / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _write_if_changed(path: Path, text: str) -> bool:
    """Write atomically unless the file already holds exactly this text; whether it was written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)
    return True


def build(target: Target, requirements: Path, wheelhouse: Path) -> dict:
    """Build or refresh the wheelhouse; its description (what wheelhouse.json holds)."""
    lines = requirement_lines(requirements)
    inputs = {"python": target.python, "glibc": target.glibc, "arch": target.arch, "requirements": lines}
    wheelhouse.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(wheelhouse)
    if previous and {key: previous.get(key) for key in inputs} != inputs:
        sys.stderr.write(f"wheelhouse: other inputs than the last build in {wheelhouse}: starting its wheels afresh\n")
        for stale in [*wheelhouse.glob("*.whl"), wheelhouse / BUILT_LIST]:
            if stale.exists():
                stale.unlink()
    download(target, requirements, wheelhouse)
    pip_wheel = download_pip(target, wheelhouse)
    _write_if_changed(wheelhouse / REQUIREMENTS_COPY, requirements.read_text(encoding="utf-8"))
    wheels = sorted(path.name for path in wheelhouse.glob("*.whl"))
    try:
        built_here = sorted(set((wheelhouse / BUILT_LIST).read_text(encoding="utf-8").split()) & set(wheels))
    except FileNotFoundError:
        built_here = []
    manifest = dict(
        inputs,
        implementation="cp",
        abis=[target.abi, "abi3", "none"],
        platforms=platform_tags(target.glibc, target.arch),
        requirements_file=REQUIREMENTS_COPY,
        pip=pip_wheel,
        built_here=built_here,
        wheels=[{"file": name, "size": (wheelhouse / name).stat().st_size, "sha256": _sha256(wheelhouse / name)} for name in wheels],
        install=(f'python3 -m venv --without-pip VENV && VENV/bin/python -c "{PIP_LAUNCHER}" DIR/{pip_wheel} install --no-index '
                 f"--find-links DIR -r DIR/{REQUIREMENTS_COPY}"),
    )
    _write_if_changed(wheelhouse / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--python", default=DEFAULT_PYTHON, help=f"the nodes' CPython version (default {DEFAULT_PYTHON})")
    parser.add_argument("--glibc", default=DEFAULT_GLIBC, help=f"the oldest glibc of the nodes (default {DEFAULT_GLIBC})")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help=f"the nodes' machine architecture (default {DEFAULT_ARCH})")
    parser.add_argument("-r", dest="requirements", default=DEFAULT_REQUIREMENTS, type=Path,
                        help=f"the requirements file (default {DEFAULT_REQUIREMENTS})")
    parser.add_argument("-o", dest="output", default=DEFAULT_OUTPUT, type=Path, help=f"the wheelhouse directory (default {DEFAULT_OUTPUT})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    args = _parser().parse_args(argv)
    try:
        target = check_target(args.python, args.glibc, args.arch)
    except ValueError as exc:
        sys.stderr.write(f"wheelhouse: error: {exc}\n")
        return 2
    try:
        manifest = build(target, args.requirements, args.output)
    except (WheelhouseError, OSError) as exc:
        sys.stderr.write(f"wheelhouse: error: {exc}\n")
        return 1
    total = sum(wheel["size"] for wheel in manifest["wheels"])
    sys.stdout.write(f"wheelhouse: {len(manifest['wheels'])} wheels ({total / 1e6:.1f} MB) for CPython {target.python}, glibc >= {target.glibc}, "
                     f"{target.arch} in {args.output} ({len(manifest['built_here'])} built here: {', '.join(manifest['built_here']) or 'none'})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
