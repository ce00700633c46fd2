# Copyright: MNAAS platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate a realistic MNAAS landing directory of CDR-like CSV files.

Used by ``make demo``, the integration tests (``generate()``) and the benchmarks (``--size-bytes``).
File names follow ``<CUSTOMER>_<Domain>_<YYYYMMDD>_<NNNN>.csv[.gz]`` and match the collection's
default domain globs and ``<CUSTOMER>_*`` customer globs. Besides the regular files it writes the
cases discovery must handle: in-flight (too young), ambiguous (two domains), unassigned (no
customer) and unmatched (no domain) files, plus empty, unterminated and gzipped content.

The returned summary is ground truth: every count is taken from the bytes written.

    python3 tools/make_landing.py ROOT [--customers A,B] [--files-per-domain N] [--seed S]
        [--now EPOCH|ISO] [--size-bytes N] [--gzip-ratio R] [--no-specials] [--force] [--json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import gzip
import json
import os
import random
import re
import sys
import time
from typing import Callable, Iterable, Sequence

DEFAULT_CUSTOMERS = ("ACME_TELEMATICS", "GLOBEX_FLEET", "INITECH_METERS", "UMBRELLA_IOT")
DEFAULT_FILES_PER_DOMAIN = 18
DEFAULT_SEED = 42
DEFAULT_GZIP_RATIO = 0.1

# domain key -> token in the file name; the default globs are built from the token
DOMAIN_TOKENS = {"traffic": "Traffic", "activations": "Activations", "actives": "Actives", "tolling": "Tolling"}
DOMAIN_PATTERNS = {key: [f"*_{token}_*.csv", f"*_{token}_*.csv.gz"] for key, token in DOMAIN_TOKENS.items()}
HEADERS = {
    "traffic": ("msisdn", "imsi", "start_time", "duration_s", "bytes_up", "bytes_down", "cell_id", "apn"),
    "activations": ("msisdn", "iccid", "activation_time", "plan", "status"),
    "actives": ("msisdn", "iccid", "snapshot_date", "plan"),
    "tolling": ("msisdn", "event_time", "charge_eur", "currency", "zone"),
}
HEADER_LINES = 1
RECORD_COUNTING = (
    "records = lines - header_lines (1); a final line without a trailing newline still counts as a line; "
    "an empty (0-byte) file has 0 records; .csv.gz files are counted on their decompressed content"
)

MIN_ROWS, MAX_ROWS = 5, 400
DAY = 86400
YOUNGEST_AGE, OLDEST_AGE = DAY, 3 * DAY  # seconds before `now` for files that are not in flight
SUBSECOND_RATIO = 0.25  # share of old files whose mtime has a fractional second
EMPTY_FILES, UNTERMINATED_FILES = 2, 2
IN_FLIGHT_DOMAINS = ("traffic", "activations", "tolling")
AMBIGUOUS_TOKENS = (("Traffic", "Tolling"), ("Activations", "Actives"))
UNASSIGNED_CANDIDATES = (("HOOLI", "Traffic"), ("STARK_INDUSTRIES", "Activations"), ("ACME", "Tolling"),
                         ("WAYNE_LOGISTICS", "Actives"), ("VANDELAY_IMPORTS", "Traffic"), ("MNAAS_TEST", "Tolling"))
CUSTOMER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

APNS = ("iot.mnaas.net", "m2m.mnaas.net", "fleet.mnaas.net", "internet")
PLANS = ("IOT_10MB", "IOT_100MB", "IOT_1GB", "M2M_POOL_5GB", "FLEET_UNLIMITED")
STATUSES = ("ACTIVE", "ACTIVE", "ACTIVE", "PENDING", "SUSPENDED")
ZONES = ("NL", "EU", "EU", "ROW", "US")

Row = Callable[[random.Random, int, int], Sequence[str]]


class Planned:  # pylint: disable=too-few-public-methods
    """One file to write: what it is, when it was last modified and how its content looks."""

    __slots__ = ("kind", "stem", "customer", "domains", "mtime_ns", "gz", "shape")

    def __init__(self, kind: str, stem: str, customer: str | None, domains: tuple[str, ...], mtime_ns: int) -> None:
        self.kind = kind  # regular | in_flight | ambiguous | unassigned | unmatched
        self.stem = stem
        self.customer = customer
        self.domains = domains
        self.mtime_ns = mtime_ns
        self.gz = False
        self.shape = "normal"  # normal | empty | unterminated

    @property
    def name(self) -> str:
        """File name in the landing directory."""
        return self.stem + (".txt" if self.stem == "README" else ".csv") + (".gz" if self.gz else "")


# --------------------------------------------------------------------------------------------
# Classification with the collection's default globs (also a self-check of the plan)

def classify(name: str, customers: Iterable[str]) -> tuple[list[str], list[str]]:
    """Return (customers, domains) whose default globs match a file name."""
    matched_customers = [c for c in customers if fnmatch.fnmatchcase(name, f"{c}_*")]
    matched_domains = [d for d, globs in DOMAIN_PATTERNS.items() if any(fnmatch.fnmatchcase(name, g) for g in globs)]
    return matched_customers, matched_domains


def _check_classification(entry: Planned, customers: Sequence[str]) -> None:
    """Raise ValueError when the default globs would not see a file as intended."""
    got_customers, got_domains = classify(entry.name, customers)
    expected = {
        "regular": (got_customers == [entry.customer] and got_domains == list(entry.domains)),
        "in_flight": (got_customers == [entry.customer] and got_domains == list(entry.domains)),
        "ambiguous": (got_customers == [entry.customer] and len(got_domains) == 2),
        "unassigned": (not got_customers and len(got_domains) == 1),
        "unmatched": (not got_domains),
    }[entry.kind]
    if not expected:
        raise ValueError(f"customer names make {entry.name!r} ({entry.kind}) match customers {got_customers} and domains {got_domains}")


# --------------------------------------------------------------------------------------------
# Plan: names, mtimes, shapes

def _date(mtime_ns: int) -> str:
    """UTC date of an mtime as YYYYMMDD."""
    return time.strftime("%Y%m%d", time.gmtime(mtime_ns // 10**9))


def _old_mtimes(rng: random.Random, count: int, now: float) -> list[int]:
    """Distinct mtimes (ns) 1-3 days before now; integer seconds except for some."""
    span = range(YOUNGEST_AGE, OLDEST_AGE + 1)
    if count > len(span):
        raise ValueError(f"too many files for distinct mtimes: {count} > {len(span)}")
    base = int(now)
    mtimes = []
    for offset in rng.sample(span, count):
        fraction = rng.randrange(1, 10**9) if rng.random() < SUBSECOND_RATIO else 0
        mtimes.append((base - offset) * 10**9 + fraction)
    return mtimes


def _plan_regular(customers: Sequence[str], files_per_domain: int, mtimes: list[int]) -> list[Planned]:
    """files_per_domain files per customer and domain, sequence 1 the oldest."""
    planned = []
    for customer in customers:
        for domain, token in DOMAIN_TOKENS.items():
            group = sorted(mtimes[:files_per_domain])
            del mtimes[:files_per_domain]
            for seq, mtime_ns in enumerate(group, start=1):
                stem = f"{customer}_{token}_{_date(mtime_ns)}_{seq:04d}"
                planned.append(Planned("regular", stem, customer, (domain,), mtime_ns))
    return planned


def _plan_in_flight(customers: Sequence[str], files_per_domain: int, now: float) -> list[Planned]:
    """Regular-looking files written just now, continuing their group's sequence."""
    now_ns = round(now * 10**9)
    planned = []
    for index, domain in enumerate(IN_FLIGHT_DOMAINS):
        customer = customers[index % len(customers)]
        stem = f"{customer}_{DOMAIN_TOKENS[domain]}_{_date(now_ns)}_{files_per_domain + 1:04d}"
        planned.append(Planned("in_flight", stem, customer, (domain,), now_ns))
    return planned


def _plan_ambiguous(customers: Sequence[str], mtimes: list[int]) -> list[Planned]:
    """Files of one customer whose names match two domain globs."""
    customer = customers[1 % len(customers)]
    planned = []
    for tokens in AMBIGUOUS_TOKENS:
        mtime_ns = mtimes.pop()
        domains = tuple(key for key, token in DOMAIN_TOKENS.items() if token in tokens)
        planned.append(Planned("ambiguous", f"{customer}_{'_'.join(tokens)}_{_date(mtime_ns)}_0001", customer, domains, mtime_ns))
    return planned


def _plan_unassigned(customers: Sequence[str], mtimes: list[int]) -> list[Planned]:
    """Three files matching one domain glob but no customer glob."""
    free = [(prefix, token) for prefix, token in UNASSIGNED_CANDIDATES if not classify(f"{prefix}_{token}_x.csv", customers)[0]]
    planned = []
    for prefix, token in free[:3]:
        mtime_ns = mtimes.pop()
        domain = next(key for key, value in DOMAIN_TOKENS.items() if value == token)
        planned.append(Planned("unassigned", f"{prefix}_{token}_{_date(mtime_ns)}_0001", None, (domain,), mtime_ns))
    return planned


def _plan_unmatched(customers: Sequence[str], mtimes: list[int]) -> list[Planned]:
    """Two files matching no domain glob."""
    readme = Planned("unmatched", "README", None, (), mtimes.pop())
    mtime_ns = mtimes.pop()
    return [readme, Planned("unmatched", f"{customers[0]}_Unknown_{_date(mtime_ns)}_0001", customers[0], (), mtime_ns)]


def _assign_shapes(regular: list[Planned], rng: random.Random, specials: bool, gzip_ratio: float) -> None:
    """Choose the gzipped, empty and unterminated regular files."""
    for entry in rng.sample(regular, min(len(regular), round(gzip_ratio * len(regular)))):
        entry.gz = True
    if not specials:
        return
    plain = [entry for entry in regular if not entry.gz]
    for entry in rng.sample(plain, min(len(plain), EMPTY_FILES)):
        entry.shape = "empty"
    rest = [entry for entry in regular if entry.shape == "normal"]
    for entry in rng.sample(rest, min(len(rest), UNTERMINATED_FILES)):
        entry.shape = "unterminated"


def plan(customers: Sequence[str], files_per_domain: int, seed: int, now: float, *,  # pylint: disable=too-many-arguments
         specials: bool = True, gzip_ratio: float = DEFAULT_GZIP_RATIO) -> list[Planned]:
    """Every file to write, regular files first (customer, domain, oldest first)."""
    rng = random.Random(seed)
    old_specials = 2 + 3 + 2 if specials else 0
    mtimes = _old_mtimes(rng, len(customers) * len(DOMAIN_TOKENS) * files_per_domain + old_specials, now)
    regular = _plan_regular(customers, files_per_domain, mtimes)
    _assign_shapes(regular, rng, specials, gzip_ratio)
    planned = list(regular)
    if specials:
        planned += _plan_in_flight(customers, files_per_domain, now)
        planned += _plan_ambiguous(customers, mtimes) + _plan_unassigned(customers, mtimes) + _plan_unmatched(customers, mtimes)
    for entry in planned:
        _check_classification(entry, customers)
    return planned


# --------------------------------------------------------------------------------------------
# Content

def _msisdn(rng: random.Random) -> str:
    return f"316{rng.randrange(10**8):08d}"


def _iccid(rng: random.Random) -> str:
    return f"8931{rng.randrange(10**15):015d}"


def _iso(rng: random.Random, start: int, end: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rng.randint(start, end)))


def _traffic(rng: random.Random, start: int, end: int) -> Sequence[str]:
    return (_msisdn(rng), f"20404{rng.randrange(10**10):010d}", _iso(rng, start, end), str(rng.randint(1, 3600)),
            str(rng.randint(0, 2_000_000)), str(rng.randint(0, 20_000_000)), str(rng.randint(10000, 65535)), rng.choice(APNS))


def _activations(rng: random.Random, start: int, end: int) -> Sequence[str]:
    return (_msisdn(rng), _iccid(rng), _iso(rng, start, end), rng.choice(PLANS), rng.choice(STATUSES))


def _actives(rng: random.Random, start: int, _end: int) -> Sequence[str]:
    snapshot = time.strftime("%Y-%m-%d", time.gmtime(start))
    return (_msisdn(rng), _iccid(rng), snapshot, rng.choice(PLANS))


def _tolling(rng: random.Random, start: int, end: int) -> Sequence[str]:
    return (_msisdn(rng), _iso(rng, start, end), f"{rng.uniform(0.001, 4.5):.4f}", "EUR", rng.choice(ZONES))


ROWS: dict[str, Row] = {"traffic": _traffic, "activations": _activations, "actives": _actives, "tolling": _tolling}


def _csv(domain: str, rng: random.Random, end: int, size_bytes: int | None, gz: bool) -> bytes:
    """Header plus rows covering the day before end: a random count, or about size_bytes on disk."""
    make_row, start = ROWS[domain], end - DAY
    lines = [",".join(HEADERS[domain]) + "\n"]

    def grow(goal: float) -> None:
        """Append rows until the text reaches goal bytes (at least one row)."""
        total = sum(len(line) for line in lines)
        while total < goal or len(lines) == 1:
            lines.append(",".join(make_row(rng, start, end)) + "\n")
            total += len(lines[-1])

    if size_bytes is None:
        lines.extend(",".join(make_row(rng, start, end)) + "\n" for _row in range(rng.randint(MIN_ROWS, MAX_ROWS)))
    else:
        grow(size_bytes)
        if gz:  # grow the text so that the compressed file is about size_bytes
            sample = "".join(lines).encode("ascii")
            grow(size_bytes * len(sample) / len(gzip.compress(sample, mtime=0)))
    return "".join(lines).encode("ascii")


def content(entry: Planned, seed: int, size_bytes: int | None = None) -> bytes:
    """Uncompressed content of a planned file (deterministic per seed and stem)."""
    if entry.shape == "empty":
        return b""
    rng = random.Random(f"{seed}:{entry.stem}")
    if entry.stem == "README":
        return b"Landing directory of the MNAAS mediation pipeline.\nFiles are picked up by the nightly customer backup.\n"
    if not entry.domains:  # a CSV of an unknown feed
        return b"feed,value\n" + b"".join(f"unknown,{rng.randint(0, 999)}\n".encode("ascii") for _row in range(rng.randint(MIN_ROWS, 20)))
    data = _csv(entry.domains[0], rng, entry.mtime_ns // 10**9, size_bytes, entry.gz)
    return data[:-1] if entry.shape == "unterminated" else data


def count_records(data: bytes, header_lines: int = HEADER_LINES) -> int:
    """Records in uncompressed CSV bytes (see RECORD_COUNTING)."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return max(lines - header_lines, 0)


# --------------------------------------------------------------------------------------------
# Writing and summary

def _write(root: str, entry: Planned, data: bytes) -> int:
    """Write a file (gzipped if planned), set its mtime, return its size on disk."""
    payload = gzip.compress(data, mtime=entry.mtime_ns // 10**9) if entry.gz else data
    path = os.path.join(root, entry.name)
    with open(path, "wb") as handle:
        handle.write(payload)
    os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
    return len(payload)


def _prepare_root(root: str, force: bool) -> None:
    """Create root, or refuse a non-empty one unless forced."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise NotADirectoryError(f"{root} exists and is not a directory")
    os.makedirs(root, exist_ok=True)
    if not force and any(os.scandir(root)):
        raise FileExistsError(f"{root} is not empty (use --force / force=True to write into it anyway)")


def _validate(customers: Sequence[str], files_per_domain: int, size_bytes: int | None, gzip_ratio: float) -> None:
    """Raise ValueError for arguments the generator cannot honour."""
    if not customers:
        raise ValueError("at least one customer is required")
    for customer in customers:
        if not CUSTOMER_RE.match(customer):
            raise ValueError(f"customer name {customer!r} must match {CUSTOMER_RE.pattern}")
    if len(set(customers)) != len(customers):
        raise ValueError(f"duplicate customer names in {list(customers)}")
    if files_per_domain < 0:
        raise ValueError(f"files_per_domain must be >= 0, got {files_per_domain}")
    if size_bytes is not None and size_bytes <= 0:
        raise ValueError(f"size_bytes must be > 0, got {size_bytes}")
    if not 0.0 <= gzip_ratio <= 1.0:
        raise ValueError(f"gzip_ratio must be between 0 and 1, got {gzip_ratio}")


def _file_info(entry: Planned, records: int, size: int) -> dict:
    """Per-file facts for the summary."""
    return {
        "name": entry.name, "kind": entry.kind, "customer": entry.customer,
        "domain": entry.domains[0] if len(entry.domains) == 1 else None, "domains": list(entry.domains),
        "records": records, "size": size, "mtime": entry.mtime_ns / 10**9, "mtime_ns": entry.mtime_ns,
        "gzip": entry.gz, "shape": entry.shape,
    }


def _summary(root: str, customers: Sequence[str], seed: int, now: float, files: list[dict]) -> dict:
    """Assemble the ground-truth summary from the per-file facts."""
    by_customer: dict[str, dict[str, list[dict]]] = {c: {d: [] for d in DOMAIN_TOKENS} for c in customers}
    for info in files:
        if info["kind"] == "regular":
            by_customer[info["customer"]][info["domain"]].append(
                {key: info[key] for key in ("name", "records", "size", "mtime", "mtime_ns", "gzip")})
    for domains in by_customer.values():
        for entries in domains.values():
            entries.sort(key=lambda item: item["mtime_ns"])

    def names(predicate: Callable[[dict], bool]) -> list[str]:
        return sorted(info["name"] for info in files if predicate(info))

    return {
        "root": root, "seed": seed, "now": now, "header_lines": HEADER_LINES, "record_counting": RECORD_COUNTING,
        "domains": {d: list(globs) for d, globs in DOMAIN_PATTERNS.items()},
        "customer_match": {c: f"{c}_*" for c in customers},
        "total_files": len(files),
        "total_records": sum(e["records"] for d in by_customer.values() for es in d.values() for e in es),
        "customers": by_customer,
        "in_flight": names(lambda i: i["kind"] == "in_flight"),
        "ambiguous": names(lambda i: i["kind"] == "ambiguous"),
        "unassigned": names(lambda i: i["kind"] == "unassigned"),
        "unmatched": names(lambda i: i["kind"] == "unmatched"),
        "empty": names(lambda i: i["shape"] == "empty"),
        "unterminated": names(lambda i: i["shape"] == "unterminated"),
        "gzipped": names(lambda i: i["gzip"]),
        "files": {info["name"]: info for info in sorted(files, key=lambda i: i["name"])},
    }


def generate(root: str | os.PathLike, *,  # pylint: disable=too-many-arguments
             customers: Sequence[str] = DEFAULT_CUSTOMERS, files_per_domain: int = DEFAULT_FILES_PER_DOMAIN,
             seed: int = DEFAULT_SEED, now: float | None = None, specials: bool = True, size_bytes: int | None = None,
             gzip_ratio: float = DEFAULT_GZIP_RATIO, force: bool = False) -> dict:
    """Write a landing directory under root and return its ground-truth summary.

    Deterministic for a given (customers, files_per_domain, seed, now, specials, size_bytes, gzip_ratio).
    ``customers[...]`` in the summary lists, per customer and domain and oldest first, the files a
    default-config discovery at ``now`` selects (before the cap); in-flight, ambiguous, unassigned
    and unmatched files are only listed by name under their own keys and in ``files``.
    """
    customers = list(customers)
    _validate(customers, files_per_domain, size_bytes, gzip_ratio)
    now = time.time() if now is None else float(now)
    root = os.path.abspath(os.fspath(root))
    planned = plan(customers, files_per_domain, seed, now, specials=specials, gzip_ratio=gzip_ratio)
    _prepare_root(root, force)
    files = []
    for entry in planned:
        data = content(entry, seed, size_bytes)
        files.append(_file_info(entry, count_records(data), _write(root, entry, data)))
    return _summary(root, customers, seed, now, files)


# --------------------------------------------------------------------------------------------
# CLI

def _parse_now(value: str) -> float:
    """Epoch seconds or an ISO 8601 timestamp (naive means UTC)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not epoch seconds or ISO 8601: {value!r}") from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate a realistic MNAAS landing directory of CDR-like CSV files.")
    parser.add_argument("root", metavar="ROOT", help="landing directory to create (must be empty unless --force)")
    parser.add_argument("--customers", default=",".join(DEFAULT_CUSTOMERS), help="comma-separated customer names (default: %(default)s)")
    parser.add_argument("--files-per-domain", type=int, default=DEFAULT_FILES_PER_DOMAIN, help="regular files per customer and domain (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--now", type=_parse_now, default=None, help="reference time, epoch seconds or ISO 8601 (default: current time)")
    parser.add_argument("--size-bytes", type=int, default=None, help="make each regular file about N bytes on disk (benchmarks; combine with --no-specials)")
    parser.add_argument("--gzip-ratio", type=float, default=DEFAULT_GZIP_RATIO, help="share of regular files written as .csv.gz (default: %(default)s)")
    parser.add_argument("--no-specials", action="store_true", help="only regular files: no in-flight/ambiguous/unassigned/unmatched/empty/unterminated")
    parser.add_argument("--force", action="store_true", help="write into a non-empty ROOT (same names are overwritten, other files kept)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    args = _parser().parse_args(argv)
    customers = [name.strip() for name in args.customers.split(",") if name.strip()]
    try:
        summary = generate(args.root, customers=customers, files_per_domain=args.files_per_domain, seed=args.seed, now=args.now,
                           specials=not args.no_specials, size_bytes=args.size_bytes, gzip_ratio=args.gzip_ratio, force=args.force)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"make_landing: error: {exc}\n")
        return 2 if isinstance(exc, ValueError) else 1
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        regular = sum(len(files) for domains in summary["customers"].values() for files in domains.values())
        sys.stdout.write(
            f"make_landing: {summary['total_files']} files in {summary['root']}: {regular} regular "
            f"({len(summary['gzipped'])} gzipped, {len(summary['empty'])} empty, {len(summary['unterminated'])} unterminated, "
            f"{summary['total_records']} records), {len(summary['in_flight'])} in flight, {len(summary['ambiguous'])} ambiguous, "
            f"{len(summary['unassigned'])} unassigned, {len(summary['unmatched'])} unmatched\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
