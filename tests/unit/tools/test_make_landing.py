# Copyright: MNAAS platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for tools/make_landing.py, the landing directory generator."""
from __future__ import annotations

import datetime as dt
import fnmatch
import gzip
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "make_landing.py"
NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.timezone.utc).timestamp()
DAY = 86400
# The collection's default globs, written out here so that the test does not trust the script's own.
DOMAIN_GLOBS = {
    "traffic": ("*_Traffic_*.csv", "*_Traffic_*.csv.gz"),
    "activations": ("*_Activations_*.csv", "*_Activations_*.csv.gz"),
    "actives": ("*_Actives_*.csv", "*_Actives_*.csv.gz"),
    "tolling": ("*_Tolling_*.csv", "*_Tolling_*.csv.gz"),
}
CUSTOMERS = ("ACME_TELEMATICS", "GLOBEX_FLEET", "INITECH_METERS", "UMBRELLA_IOT")
SUMMARY_KEYS = {
    "root", "seed", "now", "header_lines", "record_counting", "domains", "customer_match", "total_files", "total_records",
    "customers", "in_flight", "ambiguous", "unassigned", "unmatched", "empty", "unterminated", "gzipped", "files",
}


def _load_script():
    """Import the script from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mnaas_tools_make_landing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_landing = _load_script()


@pytest.fixture(scope="module", name="landing")
def fixture_landing(tmp_path_factory):
    """A default-scale landing directory at a fixed `now`."""
    return make_landing.generate(tmp_path_factory.mktemp("landing") / "in", seed=7, now=NOW)


def _uncompressed(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _records(data: bytes) -> int:
    """Count records like `wc -l` plus an unterminated last line, minus the header."""
    lines = sum(1 for _line in io.BytesIO(data))
    return max(lines - 1, 0)


def _domains(name: str) -> list[str]:
    return [domain for domain, globs in DOMAIN_GLOBS.items() if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def _customers(name: str, customers=CUSTOMERS) -> list[str]:
    return [customer for customer in customers if fnmatch.fnmatchcase(name, f"{customer}_*")]


def _without_root(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "root"}


def test_summary_schema_and_scale(landing):
    """Exact keys; 4 customers x 4 domains x 18 files plus 10 special files, all on disk."""
    assert set(landing) == SUMMARY_KEYS
    assert landing["header_lines"] == 1
    assert set(landing["customers"]) == set(CUSTOMERS)
    for domains in landing["customers"].values():
        assert set(domains) == set(DOMAIN_GLOBS)
        assert all(len(files) == 18 for files in domains.values())
    on_disk = sorted(os.listdir(landing["root"]))
    assert on_disk == sorted(landing["files"])
    assert landing["total_files"] == len(on_disk) == 4 * 4 * 18 + 3 + 2 + 3 + 2


def test_record_counts_match_an_independent_count(landing):
    """Records, sizes and mtimes in the summary match the files (gzip decompressed)."""
    root = Path(landing["root"])
    for name, info in landing["files"].items():
        path = root / name
        assert info["records"] == _records(_uncompressed(path)), name
        assert info["size"] == path.stat().st_size, name
        assert info["mtime_ns"] == path.stat().st_mtime_ns, name
    listed = [entry for domains in landing["customers"].values() for files in domains.values() for entry in files]
    assert landing["total_records"] == sum(_records(_uncompressed(root / entry["name"])) for entry in listed)
    assert all(entry["records"] == landing["files"][entry["name"]]["records"] for entry in listed)


@pytest.mark.skipif(shutil.which("wc") is None, reason="needs wc")
def test_record_counts_match_wc(landing):
    """Plain files: `wc -l` plus an unterminated last line, minus the header."""
    root = Path(landing["root"])
    names = [name for name, info in landing["files"].items() if info["kind"] == "regular" and not info["gzip"]]
    output = subprocess.run(["wc", "-l", *names], cwd=root, check=True, capture_output=True, text=True).stdout
    newlines = {parts[1]: int(parts[0]) for parts in (line.split(None, 1) for line in output.splitlines()) if parts[1] != "total"}
    for name in names:
        data = (root / name).read_bytes()
        lines = newlines[name] + (1 if data and not data.endswith(b"\n") else 0)
        assert landing["files"][name]["records"] == max(lines - 1, 0), name


def test_specials_present(landing):
    """In-flight, ambiguous, unassigned, unmatched, empty, unterminated and gzipped files exist."""
    root = Path(landing["root"])
    assert len(landing["in_flight"]) == 3
    assert len(landing["ambiguous"]) == 2
    assert len(landing["unassigned"]) == 3
    assert len(landing["unmatched"]) == 2
    assert "README.txt" in landing["unmatched"]
    assert len(landing["empty"]) == 2
    assert all((root / name).stat().st_size == 0 and landing["files"][name]["records"] == 0 for name in landing["empty"])
    assert len(landing["unterminated"]) == 2
    for name in landing["unterminated"]:
        data = _uncompressed(root / name)
        assert data and not data.endswith(b"\n")
    assert 20 <= len(landing["gzipped"]) <= 40
    for name in landing["gzipped"]:
        assert name.endswith(".csv.gz")
        assert _uncompressed(root / name).startswith(b"msisdn,")


def test_default_globs_classify_every_file(landing):
    """The collection's default globs see each file as its kind says."""
    for name, info in landing["files"].items():
        customers, domains = _customers(name), _domains(name)
        if info["kind"] in ("regular", "in_flight"):
            assert customers == [info["customer"]] and domains == [info["domain"]], name
        elif info["kind"] == "ambiguous":
            assert len(customers) == 1 and len(domains) == 2, name
        elif info["kind"] == "unassigned":
            assert not customers and len(domains) == 1, name
        else:
            assert info["kind"] == "unmatched" and not domains, name


def test_regular_files_are_listed_oldest_first(landing):
    """Per customer and domain: oldest first, sequence 1..N, names sorted the same way."""
    listed = set()
    for customer, domains in landing["customers"].items():
        for domain, files in domains.items():
            mtimes = [entry["mtime_ns"] for entry in files]
            assert mtimes == sorted(mtimes) and len(set(mtimes)) == len(mtimes)
            assert [entry["name"] for entry in files] == sorted(entry["name"] for entry in files)
            assert all(entry["name"].startswith(f"{customer}_{domain.capitalize()}_") for entry in files)
            assert [int(entry["name"].split(".")[0][-4:]) for entry in files] == list(range(1, len(files) + 1))
            listed.update(entry["name"] for entry in files)
    assert listed == {name for name, info in landing["files"].items() if info["kind"] == "regular"}


def test_mtimes_in_flight_recent_others_one_to_three_days_old(tmp_path):
    """In-flight files are written `now`; the rest 1-3 days before, some with sub-second mtimes."""
    before = time.time()
    summary = make_landing.generate(tmp_path / "in", seed=11)
    after = time.time()
    old = []
    for name, info in summary["files"].items():
        mtime = (tmp_path / "in" / name).stat().st_mtime
        if name in summary["in_flight"]:
            assert before - 1 <= mtime <= after + 1, name
        else:
            assert before - 3 * DAY - 1 <= mtime <= after - DAY + 1, name
            old.append(info["mtime_ns"])
    assert any(mtime_ns % 10**9 for mtime_ns in old), "some mtimes have sub-second parts"
    assert any(mtime_ns % 10**9 == 0 for mtime_ns in old), "some mtimes are whole seconds"


def test_deterministic_for_seed_and_now(tmp_path):
    """Same seed and now give the same bytes, mtimes and summary; another seed differs."""
    first = make_landing.generate(tmp_path / "a", seed=5, now=NOW, files_per_domain=4)
    second = make_landing.generate(tmp_path / "b", seed=5, now=NOW, files_per_domain=4)
    other = make_landing.generate(tmp_path / "c", seed=6, now=NOW, files_per_domain=4)
    assert _without_root(first) == _without_root(second)
    for name in first["files"]:
        a_path, b_path = tmp_path / "a" / name, tmp_path / "b" / name
        assert a_path.read_bytes() == b_path.read_bytes(), name
        assert a_path.stat().st_mtime_ns == b_path.stat().st_mtime_ns, name
    assert _without_root(first) != _without_root(other)


def test_size_bytes_is_roughly_honoured(tmp_path):
    """--size-bytes: plain files within 5 %, gzipped files within 25 % of the target."""
    summary = make_landing.generate(tmp_path / "in", seed=3, now=NOW, files_per_domain=4, size_bytes=20000, specials=False)
    assert summary["total_files"] == 4 * 4 * 4
    assert not any(summary[key] for key in ("in_flight", "ambiguous", "unassigned", "unmatched", "empty", "unterminated"))
    assert summary["gzipped"]
    for name, info in summary["files"].items():
        tolerance = 0.25 if info["gzip"] else 0.05
        assert abs(info["size"] - 20000) <= 20000 * tolerance, (name, info["size"])
        assert info["records"] == _records(_uncompressed(tmp_path / "in" / name))


def test_refuses_non_empty_root_unless_forced(tmp_path):
    """A non-empty root is refused; force writes beside the existing files."""
    root = tmp_path / "in"
    root.mkdir()
    (root / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        make_landing.generate(root, now=NOW, files_per_domain=1)
    summary = make_landing.generate(root, now=NOW, files_per_domain=1, force=True)
    assert (root / "keep.txt").exists() and "keep.txt" not in summary["files"]


@pytest.mark.parametrize("customers", [(), ("ACME", "ACME_TELEMATICS"), ("BAD/NAME",), ("X_Traffic",), ("DUP", "DUP")])
def test_rejects_bad_customers(tmp_path, customers):
    """Names the default globs could not tell apart, or unsafe names, are refused before writing."""
    with pytest.raises(ValueError):
        make_landing.generate(tmp_path / "in", customers=customers, now=NOW, files_per_domain=1)
    assert not (tmp_path / "in").exists()


def test_cli_json_matches_generate(tmp_path):
    """The CLI's --json output equals generate() for the same arguments."""
    args = ["--customers", "ALPHA_CO,BETA_CO", "--files-per-domain", "2", "--seed", "3", "--now", "2026-11-24T12:00:00Z"]
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cli"), *args, "--json"], check=True, capture_output=True, text=True)
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["total_files"] == 2 * 4 * 2 + 3 + 2 + 3 + 2
    assert summary["root"] == str(tmp_path / "cli")
    expected = make_landing.generate(tmp_path / "api", customers=["ALPHA_CO", "BETA_CO"], files_per_domain=2, seed=3, now=NOW)
    assert _without_root(summary) == json.loads(json.dumps(_without_root(expected)))


def test_cli_refuses_non_empty_root(tmp_path):
    """The CLI exits non-zero with a message on a non-empty root."""
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "busy")], check=False, capture_output=True, text=True)
    assert result.returncode != 0
    assert "not empty" in result.stderr
