# Copyright: MNAAS platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for tools/wheelhouse.py, the offline wheelhouse of the edge nodes' libraries.

pip is faked at the subprocess boundary (``subprocess.run`` as the tool calls it): the fake answers like pip,
writes wheel files where pip would, and records every call.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "wheelhouse.py"
REQUIREMENTS = "paramiko>=2.10  # sftp\n\n# webhdfs\nhdfs>=2.7.0\nPyHive>=0.7.0\n"


def _load_script():
    """Import the script from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mnaas_tools_wheelhouse", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


wh = _load_script()


# ---------------------------------------------------------------------------------------------
# Platform tags and the target


def test_platform_tags_x86_64_glibc_2_28():
    assert wh.platform_tags("2.28", "x86_64") == [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + [
        "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


@pytest.mark.parametrize("glibc, arch, expected", [
    ("2.17", "x86_64", ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]),
    ("2.17", "aarch64", ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]),
    ("2.18", "ppc64le", ["manylinux_2_18_ppc64le", "manylinux_2_17_ppc64le", "manylinux2014_ppc64le"]),
    ("2.17", "riscv64", ["manylinux_2_17_riscv64", "manylinux2014_riscv64"]),  # manylinux2010 and manylinux1 are x86 only
])
def test_platform_tags_small(glibc, arch, expected):
    assert wh.platform_tags(glibc, arch) == expected


def test_platform_tags_count_and_order_glibc_2_34():
    tags = wh.platform_tags("2.34", "aarch64")
    assert tags[0] == "manylinux_2_34_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert len(tags) == 34 - 17 + 1 + 1
    assert len(set(tags)) == len(tags)


@pytest.mark.parametrize("glibc", ["2.16", "2.5", "3.1", "2", "2.", "2.28.1", "two", "", " 2.28"])
def test_platform_tags_bad_glibc(glibc):
    with pytest.raises(ValueError, match="--glibc"):
        wh.platform_tags(glibc, "x86_64")


def test_target_pip_options():
    options = wh.check_target("3.9", "2.28", "x86_64").pip_options()
    assert options[:5] == ["--only-binary=:all:", "--python-version", "3.9", "--implementation", "cp"]
    assert [options[i + 1] for i, opt in enumerate(options) if opt == "--abi"] == ["cp39", "abi3", "none"]
    assert [options[i + 1] for i, opt in enumerate(options) if opt == "--platform"] == wh.platform_tags("2.28", "x86_64")


@pytest.mark.parametrize("python, glibc, arch, word", [
    ("3", "2.28", "x86_64", "--python"),
    ("2.7", "2.28", "x86_64", "--python"),
    ("3.9.2", "2.28", "x86_64", "--python"),
    ("3.9", "2.12", "x86_64", "--glibc"),
    ("3.9", "2.28", "x86-64", "--arch"),
    ("3.9", "2.28", "", "--arch"),
])
def test_check_target_rejects(python, glibc, arch, word):
    with pytest.raises(ValueError, match=word):
        wh.check_target(python, glibc, arch)


def test_target_abi():
    assert wh.Target("3.11", "2.28", "x86_64").abi == "cp311"


# ---------------------------------------------------------------------------------------------
# pip's error, project names, wheel names


@pytest.mark.parametrize("output, expected", [
    ("ERROR: Could not find a version that satisfies the requirement PyHive>=0.7.0 (from versions: 0.7.0.dev0)\n"
     "ERROR: No matching distribution found for PyHive>=0.7.0\n", "PyHive>=0.7.0"),
    ("ERROR: No matching distribution found for docopt (from hdfs)", "docopt"),
    ("ERROR: No matching distribution found for pure-sasl>=0.6.2 (from thrift-sasl)\n", "pure-sasl>=0.6.2"),
    ("ERROR: No matching distribution found for thrift_sasl>=0.1.0; extra == \"hive\"\n", "thrift_sasl>=0.1.0"),
    ("ERROR: No matching distribution found for thrift>=0.10.0\r\n", "thrift>=0.10.0"),
    ("Collecting x\nERROR: Ignored the following versions that require a different python version: 2.33.0 Requires-Python >=3.10\n"
     "ERROR: No matching distribution found for requests>=2.33 (from hdfs)\nsomething after\n", "requests>=2.33"),
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n", None),
    ("WARNING: Retrying (Retry(total=4)) after connection broken\nERROR: Could not find a version (from versions: none)\n", None),
    ("", None),
])
def test_missing_distribution(output, expected):
    assert wh.missing_distribution(output) == expected


@pytest.mark.parametrize("requirement, name", [
    ("PyHive>=0.7.0", "pyhive"),
    ("thrift_sasl>=0.4.3", "thrift-sasl"),
    ("Thrift.SASL", "thrift-sasl"),
    ("google-crc32c>=1.5.0", "google-crc32c"),
    ("pyhive[hive-pure-sasl]>=0.7.0", "pyhive"),
    ("docopt", "docopt"),
])
def test_project_name(requirement, name):
    assert wh.project_name(requirement) == name


def test_project_name_unreadable():
    with pytest.raises(wh.WheelhouseError, match="project name"):
        wh.project_name(">=1.0")


@pytest.mark.parametrize("filename, pure", [
    ("pyhive-0.7.0-py3-none-any.whl", True),
    ("docopt-0.6.2-py2.py3-none-any.whl", True),
    ("thrift-0.25.0-1-py3-none-any.whl", True),  # with a build tag
    ("thrift-0.25.0-cp311-cp311-linux_x86_64.whl", False),
    ("thrift-0.25.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", False),
    ("cryptography-43.0.3-cp39-abi3-manylinux_2_28_x86_64.whl", False),
    ("x-1.0-py3-none-manylinux_2_17_x86_64.whl", False),  # pure code, platform-bound data
    ("x-1.0-py311-none-any.whl", False),  # Python 3.11 only
    ("x-1.0-py2-none-any.whl", False),  # Python 2 only
    ("x-1.0-cp39-none-any.whl", False),
])
def test_is_pure(filename, pure):
    assert wh.is_pure(filename) is pure


@pytest.mark.parametrize("filename", ["thrift-0.25.0.tar.gz", "x-py3-none-any.whl", "a-b-c-d-e-f-g.whl"])
def test_wheel_tags_not_a_wheel(filename):
    with pytest.raises(wh.WheelhouseError, match="not a wheel"):
        wh.wheel_tags(filename)


def test_requirement_lines(tmp_path):
    path = tmp_path / "req.txt"
    path.write_text("# header\n\npkg-a>=1.0   # why\n  pkg_b[x]>=2 ; python_version >= '3'\n#pkg-c\nurl#frag>=1\n", encoding="utf-8")
    assert wh.requirement_lines(path) == ["pkg-a>=1.0", "pkg_b[x]>=2 ; python_version >= '3'", "url#frag>=1"]


@pytest.mark.parametrize("text, message", [
    ("-r other.txt\n", "only requirement lines"),
    ("pkg>=1\n--index-url https://example.invalid/simple\n", r":2: only requirement lines"),
    ("# nothing\n\n", "no requirement"),
])
def test_requirement_lines_rejects(tmp_path, text, message):
    path = tmp_path / "req.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(wh.WheelhouseError, match=message):
        wh.requirement_lines(path)


def test_requirement_lines_of_the_collection():
    lines = wh.requirement_lines(SCRIPT.parents[1] / "requirements-nodes.txt")
    assert lines and all(re.fullmatch(r"[A-Za-z0-9._-]+>=[0-9][0-9.]*", line) for line in lines)


# ---------------------------------------------------------------------------------------------
# The build, with pip faked at the subprocess boundary


class FakePip:
    """Answers ``python -m pip download|wheel`` like pip for a small index.

    ``binary``: the wheels pip download finds for the nodes (written into -d once resolution succeeds);
    ``sources``: requirement text -> the wheel file ``pip wheel`` builds for it (None: the build fails);
    a source is reported missing by pip download until a wheel of its project is in the wheelhouse."""

    def __init__(self, binary=("paramiko-3.0-py3-none-any.whl", "bcrypt-4.0-cp39-abi3-manylinux_2_28_x86_64.whl"),
                 sources=None, download_error=None):
        self.binary = list(binary)
        self.sources = dict(sources or {})
        self.download_error = download_error
        self.calls: list[list[str]] = []
        self.envs: list[dict | None] = []

    @staticmethod
    def _value(args, option):
        return args[args.index(option) + 1]

    def _has_project(self, directory: Path, requirement: str) -> bool:
        name = wh.project_name(requirement).replace("-", "_")
        return any(re.sub(r"[-_.]+", "_", path.name.lower()).startswith(name + "_") for path in directory.glob("*.whl"))

    def __call__(self, cmd, stdout=None, stderr=None, text=None, check=None, env=None):
        assert cmd[:3] == [sys.executable, "-m", "pip"] and check is False and text is True
        args = list(cmd[3:])
        self.calls.append(args)
        self.envs.append(env)
        if args[0] == "wheel":
            return self._wheel(args)
        assert args[0] == "download"
        directory = Path(self._value(args, "-d"))
        if args[-1] == "pip":
            (directory / "pip-24.0-py3-none-any.whl").write_bytes(b"pip")
            return subprocess.CompletedProcess(cmd, 0, "Saved pip-24.0-py3-none-any.whl\n")
        if self.download_error:
            return subprocess.CompletedProcess(cmd, 1, self.download_error)
        for requirement in self.sources:
            if not self._has_project(directory, requirement):
                return subprocess.CompletedProcess(cmd, 1, f"ERROR: No matching distribution found for {requirement}\n")
        if "--no-index" in args and not all((directory / name).exists() for name in self.binary):
            return subprocess.CompletedProcess(cmd, 1, "ERROR: No matching distribution found for paramiko>=2.10\n")
        for name in self.binary:
            if not (directory / name).exists():  # like pip: "File was already downloaded"
                (directory / name).write_bytes(name.encode())
        return subprocess.CompletedProcess(cmd, 0, "Successfully downloaded\n")

    def _wheel(self, args):
        built = self.sources[args[-1]]
        if built is None:
            return subprocess.CompletedProcess(args, 1, f"ERROR: Failed building wheel for {args[-1]}\n")
        (Path(self._value(args, "-w")) / built).write_bytes(built.encode())
        return subprocess.CompletedProcess(args, 0, f"Saved {built}\n")

    def kinds(self):
        """Each call as download / download-offline / download-pip / wheel REQUIREMENT."""
        kinds = []
        for args in self.calls:
            if args[0] == "wheel":
                kinds.append(f"wheel {args[-1]}")
            elif args[-1] == "pip":
                kinds.append("download-pip")
            else:
                kinds.append("download-offline" if "--no-index" in args else "download")
        return kinds


@pytest.fixture
def target():
    return wh.Target("3.9", "2.28", "x86_64")


@pytest.fixture
def requirements(tmp_path):
    path = tmp_path / "requirements-nodes.txt"
    path.write_text(REQUIREMENTS, encoding="utf-8")
    return path


def _fake(monkeypatch, **kwargs) -> FakePip:
    fake = FakePip(**kwargs)
    monkeypatch.setattr(wh.subprocess, "run", fake)
    return fake


def test_download_builds_source_only_libraries(monkeypatch, tmp_path, target, requirements):
    fake = _fake(monkeypatch, sources={"PyHive>=0.7.0": "pyhive-0.7.0-py3-none-any.whl", "docopt": "docopt-0.6.2-py2.py3-none-any.whl"})
    house = tmp_path / "house"
    house.mkdir()
    assert wh.download(target, requirements, house) == ["docopt-0.6.2-py2.py3-none-any.whl", "pyhive-0.7.0-py3-none-any.whl"]
    assert fake.kinds() == ["download", "wheel PyHive>=0.7.0", "download", "wheel docopt", "download"]
    first = fake.calls[0]
    assert first[first.index("-r") + 1] == str(requirements)
    assert first[first.index("--find-links") + 1] == str(house) and first[first.index("-d") + 1] == str(house)
    assert first[1:first.index("--find-links")] == target.pip_options()
    build = fake.calls[1]
    assert build[:5] == ["wheel", "--no-deps", "--no-cache-dir", "--no-binary", "pyhive"]
    assert build[build.index("-w") + 1] != str(house)  # built aside, moved in once found pure
    assert fake.envs[1]["CC"] == "false" and fake.envs[1]["CXX"] == "false" and fake.envs[1]["PIP_USE_PEP517"] == "1"
    assert fake.envs[0] is None
    assert sorted(path.name for path in house.glob("*.whl")) == sorted(fake.binary + ["pyhive-0.7.0-py3-none-any.whl", "docopt-0.6.2-py2.py3-none-any.whl"])
    assert (house / wh.BUILT_LIST).read_text(encoding="utf-8").split() == ["pyhive-0.7.0-py3-none-any.whl", "docopt-0.6.2-py2.py3-none-any.whl"]


def test_download_rejects_a_built_wheel_that_is_not_pure(monkeypatch, tmp_path, target, requirements):
    _fake(monkeypatch, sources={"thrift>=0.10.0": "thrift-0.25.0-cp311-cp311-linux_x86_64.whl"})
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(wh.WheelhouseError) as failure:
        wh.download(target, requirements, house)
    assert str(failure.value).startswith("thrift>=0.10.0: ")
    assert "built from its source here, thrift-0.25.0-cp311-cp311-linux_x86_64.whl, is not pure Python" in str(failure.value)
    assert not list(house.iterdir())


def test_download_reports_a_failed_build(monkeypatch, tmp_path, target, requirements):
    _fake(monkeypatch, sources={"PyHive>=0.7.0": None})
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(wh.WheelhouseError, match=r"(?s)^PyHive>=0.7.0: .*building a pure-Python wheel .* failed.*Failed building wheel"):
        wh.download(target, requirements, house)


def test_download_stops_when_the_built_wheel_is_not_taken(monkeypatch, tmp_path, target, requirements):
    # the wheel built here does not satisfy pip for the nodes (for example it requires a newer Python)
    _fake(monkeypatch, sources={"PyHive>=0.7.0": "other-1.0-py3-none-any.whl"})
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(wh.WheelhouseError, match=r"PyHive>=0.7.0: .* even after other-1.0-py3-none-any.whl was built here; .*Python 3.9"):
        wh.download(target, requirements, house)


def test_download_is_bounded(monkeypatch, tmp_path, target, requirements):
    sources = {f"lib{i}": f"lib{i}-1.0-py3-none-any.whl" for i in range(5)}
    fake = _fake(monkeypatch, sources=sources)
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(wh.WheelhouseError, match="after 3 rounds"):
        wh.download(target, requirements, house, rounds=3)
    assert fake.kinds().count("download") == 3


def test_download_other_pip_failure(monkeypatch, tmp_path, target, requirements):
    _fake(monkeypatch, download_error="ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n")
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(wh.WheelhouseError, match="pip download failed:\nERROR: Could not install packages due to an OSError"):
        wh.download(target, requirements, house)


def test_build_writes_the_wheelhouse_and_a_rerun_reuses_it(monkeypatch, tmp_path, target, requirements):
    fake = _fake(monkeypatch, sources={"PyHive>=0.7.0": "pyhive-0.7.0-py3-none-any.whl"})
    house = tmp_path / "out" / "house"
    manifest = wh.build(target, requirements, house)
    assert fake.kinds() == ["download", "wheel PyHive>=0.7.0", "download", "download-pip"]
    assert (house / "requirements-nodes.txt").read_text(encoding="utf-8") == REQUIREMENTS
    on_disk = json.loads((house / "wheelhouse.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert manifest["python"] == "3.9" and manifest["glibc"] == "2.28" and manifest["arch"] == "x86_64"
    assert manifest["abis"] == ["cp39", "abi3", "none"] and manifest["platforms"] == wh.platform_tags("2.28", "x86_64")
    assert manifest["requirements"] == ["paramiko>=2.10", "hdfs>=2.7.0", "PyHive>=0.7.0"]
    assert manifest["pip"] == "pip-24.0-py3-none-any.whl"
    assert manifest["built_here"] == ["pyhive-0.7.0-py3-none-any.whl"]
    files = [wheel["file"] for wheel in manifest["wheels"]]
    assert files == sorted(fake.binary + ["pyhive-0.7.0-py3-none-any.whl", "pip-24.0-py3-none-any.whl"])
    paramiko = next(wheel for wheel in manifest["wheels"] if wheel["file"].startswith("paramiko"))
    assert paramiko["size"] == len(paramiko["file"]) and re.fullmatch(r"[0-9a-f]{64}", paramiko["sha256"])
    assert "DIR/pip-24.0-py3-none-any.whl install --no-index --find-links DIR -r DIR/requirements-nodes.txt" in manifest["install"]

    before = {path.name: path.stat().st_mtime_ns for path in house.iterdir()}
    fake.calls.clear()
    assert wh.build(target, requirements, house) == manifest
    assert fake.kinds() == ["download-offline"]  # everything is there: no index, no build, no new pip
    assert {path.name: path.stat().st_mtime_ns for path in house.iterdir()} == before


def test_build_with_other_inputs_starts_afresh(monkeypatch, tmp_path, target, requirements):
    fake = _fake(monkeypatch, sources={"PyHive>=0.7.0": "pyhive-0.7.0-py3-none-any.whl"})
    house = tmp_path / "house"
    wh.build(target, requirements, house)
    fake.calls.clear()
    manifest = wh.build(wh.Target("3.9", "2.31", "x86_64"), requirements, house)
    assert fake.kinds() == ["download", "wheel PyHive>=0.7.0", "download", "download-pip"]
    assert manifest["glibc"] == "2.31" and manifest["built_here"] == ["pyhive-0.7.0-py3-none-any.whl"]


def test_build_keeps_what_an_interrupted_run_built(monkeypatch, tmp_path, target, requirements):
    # the first run builds PyHive, then fails on a library whose build fails
    _fake(monkeypatch, sources={"PyHive>=0.7.0": "pyhive-0.7.0-py3-none-any.whl", "broken": None})
    house = tmp_path / "house"
    with pytest.raises(wh.WheelhouseError, match="^broken: "):
        wh.build(target, requirements, house)
    fake = _fake(monkeypatch, sources={"PyHive>=0.7.0": "pyhive-0.7.0-py3-none-any.whl"})
    manifest = wh.build(target, requirements, house)
    assert "wheel PyHive>=0.7.0" not in fake.kinds()
    assert manifest["built_here"] == ["pyhive-0.7.0-py3-none-any.whl"]


def test_build_refuses_two_pip_wheels(monkeypatch, tmp_path, target, requirements):
    _fake(monkeypatch)
    house = tmp_path / "house"
    house.mkdir()
    (house / "pip-23.0-py3-none-any.whl").write_bytes(b"")
    (house / "pip-24.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(wh.WheelhouseError, match="more than one pip wheel"):
        wh.build(target, requirements, house)


def test_main(monkeypatch, tmp_path, requirements, capsys):
    _fake(monkeypatch)
    house = tmp_path / "house"
    assert wh.main(["--python", "3.9", "--glibc", "2.31", "-r", str(requirements), "-o", str(house)]) == 0
    assert "3 wheels" in capsys.readouterr().out
    assert json.loads((house / "wheelhouse.json").read_text(encoding="utf-8"))["glibc"] == "2.31"


@pytest.mark.parametrize("argv, status, message", [
    (["--glibc", "2.5"], 2, "--glibc must be"),
    (["--python", "three"], 2, "--python must be"),
    (["-r", "does-not-exist.txt"], 1, "does-not-exist.txt"),
])
def test_main_errors(monkeypatch, tmp_path, capsys, argv, status, message):
    _fake(monkeypatch)
    assert wh.main([*argv, "-o", str(tmp_path / "house")]) == status
    assert message in capsys.readouterr().err


def test_the_script_runs_standalone():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False,
                            env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0 and "--glibc" in result.stdout
