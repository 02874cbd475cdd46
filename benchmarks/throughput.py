"""Engine throughput on the shared Synthea bundles, from bytes in memory.

Prints MB/s and patients/s for the full screening (decode + records + every rule), the ratio
against ``orjson.loads`` of the same bytes in the same process (target ≥ 1.5: screening reads
only the fields the rules need), and the ratio against a ``fhir.resources`` model-validation
pipeline on a subset (target ≥ 50×). Medians of several rounds; machines here are noisy.

    .venv/bin/python benchmarks/throughput.py [--rounds 5] [--subset 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import statistics
import sys
import time
from pathlib import Path

import orjson

from msc_screen.engine import evaluate
from msc_screen.fhir.reader import read_bytes
from msc_screen.fhir.record import build_records
from msc_screen.knowledge import get_ruleset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea-r4"
AS_OF = dt.date(2019, 6, 30)


def timed(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--subset", type=int, default=20, help="bundles for the fhir.resources run")
    args = ap.parse_args()
    files = sorted(DATA.glob("*.json.gz"))
    if not files:
        print(f"skipped: no Synthea bundles at {DATA}")
        return 0
    blobs = [gzip.decompress(f.read_bytes()) for f in files]
    mb = sum(map(len, blobs)) / 1e6
    rs = get_ruleset()

    def screen_all(bs: list[bytes] = blobs) -> int:
        n = 0
        for b in bs:
            recs, errs = build_records([read_bytes(b, "bench")], rs)
            assert not errs
            for r in recs:
                evaluate(r, rs, AS_OF)
                n += 1
        return n

    def orjson_all(bs: list[bytes] = blobs) -> None:
        for b in bs:
            orjson.loads(b)

    screen_all()  # warm caches
    t_screen = timed(screen_all, args.rounds)
    t_orjson = timed(orjson_all, args.rounds)
    n = len(blobs)
    print(f"bundles: {n}, {mb:.1f} MB uncompressed, {len(rs.rules)} rules, as-of {AS_OF}")
    print(f"msc-screen screen : {mb / t_screen:8.1f} MB/s  {n / t_screen:8.1f} patients/s")
    print(f"orjson.loads only : {mb / t_orjson:8.1f} MB/s")
    print(f"ratio screen/orjson.loads: {t_orjson / t_screen:.2f}  (target >= 1.5)")

    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError:
        print("fhir.resources not installed: model-validation comparison skipped")
        return 0
    sub = blobs[: args.subset]
    sub_mb = sum(map(len, sub)) / 1e6
    failures = 0

    def pydantic_all() -> None:
        nonlocal failures
        for b in sub:
            try:
                Bundle.model_validate_json(b)
            except Exception:  # R4 data validated against R4B models may fail; still timed
                failures += 1

    t_pyd = timed(pydantic_all, max(1, args.rounds // 2))
    t_sub = timed(lambda: screen_all(sub), args.rounds)
    print(f"fhir.resources    : {sub_mb / t_pyd:8.2f} MB/s on {len(sub)} bundles "
          f"({failures} validation failures)")
    print(f"ratio screen/fhir.resources: {t_pyd / t_sub:.1f}  (target >= 50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
