"""Where a batch's time goes: the same run with parts of the work taken away.

A diagnostic, not a target: it tells what a faster engine or a faster reader could win at most.
Each configuration runs ``run_batch`` in a fresh process on the same population:

* ``real``: the batch as it is;
* ``no-eval``: the engine's ``evaluate`` returns one cached assessment (reading, building the
  records, serialising, writing every output and the report still happen);
* ``no-read``: also no decoding or record building: each Bundle file is still read from disk,
  then stands for one empty patient record.

``real`` − ``no-eval`` is what rule evaluation costs, ``no-eval`` − ``no-read`` what decoding the
FHIR JSON and building records cost; ``no-read`` is the floor of files, JSON lines, summaries and
report. ``.venv/bin/python benchmarks/batch_floor.py --pop DIR`` (a population made by
``msc-screen synth --format bundles``, e.g. ``batch_scale.py``'s ``pop20000``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER = r"""
import datetime as dt, itertools, json, resource, sys, time
from pathlib import Path
import msc_screen.batch.work as W
from msc_screen.batch import BatchOptions, run_batch
from msc_screen.fhir.reader import ReadResult, slurp
from msc_screen.model import PatientRecord

mode, inp, out, workers = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
if mode in ("no-eval", "no-read"):
    real, cached = W.evaluate, []

    def evaluate(rec, ruleset, as_of, notes):
        if not cached:
            cached.append(real(rec, ruleset, as_of, notes))
        return cached[0]

    W.evaluate = evaluate
if mode == "no-read":
    ids = itertools.count()

    class Builder:
        errors = []

        def __init__(self):
            self.n = 0

        def add(self, result):
            self.n += 1

        def finish(self):
            return [PatientRecord(id=f"p{next(ids):08d}") for _ in range(self.n)]

    def read_bundle(path):
        data, st = slurp(path)
        return ReadResult(path), [path, st.st_size, st.st_mtime_ns]

    W.RecordBuilder = type("Stub", (), {"for_ruleset": staticmethod(lambda rs: Builder())})
    W._read_bundle = read_bundle
t, cpu = time.perf_counter(), time.process_time()
r = run_batch(BatchOptions([inp], dt.date(2026, 1, 1), out, workers=workers))
wall = time.perf_counter() - t
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "patients": r.stats.total, "cpu": time.process_time() - cpu,
                  "workers_cpu": kids.ru_utime + kids.ru_stime}))
"""

MODES = ("real", "no-eval", "no-read")


def run(mode: str, pop: Path, out: Path, workers: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, mode, str(pop), str(out / mode),
                           str(workers)], capture_output=True, text=True, check=True)
    res: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pop", type=Path, required=True, help="a directory of Bundle files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode (fastest kept)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="msc-batch-floor-"))
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):  # interleaved: the machine's noise falls on every mode alike
        for mode in MODES:
            r = run(mode, args.pop, out, args.workers)
            if mode not in best or r["wall"] < best[mode]["wall"]:
                best[mode] = r
    for mode in MODES:
        r = best[mode]
        cpu = r["cpu"] + r["workers_cpu"]
        print(f"{mode:8} --workers {args.workers}: {r['wall']:5.2f} s  "
              f"{r['patients'] / r['wall']:8,.0f} patients/s  CPU {cpu:5.2f} s "
              f"({cpu / r['patients'] * 1e6:5.0f} µs per patient, all processes)")
    real, no_eval, no_read = (best[m]["cpu"] + best[m]["workers_cpu"] for m in MODES)
    n = best["real"]["patients"]
    print(f"evaluation ≈ {(real - no_eval) / n * 1e6:.0f} µs per patient; decoding and building "
          f"records ≈ {(no_eval - no_read) / n * 1e6:.0f} µs; the rest (files, JSON, summaries, "
          f"report, start-up) ≈ {no_read / n * 1e6:.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
