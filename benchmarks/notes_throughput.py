"""Notes extraction throughput on the shared MTSamples notes.

Runs ``notes extract`` (the JSON Lines function: parse, extract with context, serialise) over
every note and prints characters/s and MB/s per core (process CPU time, so other load on the
machine does not count) and wall-clock; then a 10 MB note and a 1 MB single-line note; and,
when medspaCy is installed, its default pipeline (sentencizer, target matcher with the same
terms, ConText) on the same notes in the same run, with the ratio. Targets: >= 1 MB/s per core,
>= 10x medspaCy, each pathological note < 10 s.

    .venv/bin/python benchmarks/notes_throughput.py [--limit N] [--medspacy-notes 300]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import orjson

from msc_screen.notes import get_extractor, load_vocabularies
from msc_screen.notes.jsonl import extract_lines

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "notes" / "mtsamples.jsonl.gz"


def _timed(fn):  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _medspacy(texts: list[str]) -> tuple[float, float] | None:
    try:
        import medspacy
        from medspacy.ner import TargetRule
    except ImportError:
        return None
    try:  # PyRuSH logs every sentence at DEBUG through loguru: silence it for timing
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    nlp = medspacy.load()
    rules = []
    for v in load_vocabularies().values():
        for t in (*v.terms, *v.misspellings, *v.abbreviations):
            rules.append(TargetRule(t, v.rule.upper()))
    nlp.get_pipe("medspacy_target_matcher").add(rules)
    _, wall, cpu = _timed(lambda: [nlp(t) for t in texts])
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=0, help="only the first N notes")
    ap.add_argument("--medspacy-notes", type=int, default=300,
                    help="notes for the medspaCy comparison (it is slow)")
    args = ap.parse_args()
    if not args.file.is_file():
        print(f"notes file not found: {args.file}", file=sys.stderr)
        return 2
    with gzip.open(args.file) as fh:
        lines = fh.read().splitlines()
    if args.limit:
        lines = lines[: args.limit]
    texts = [orjson.loads(x)["text"] for x in lines]
    chars = sum(map(len, texts))
    x, build_wall, _ = _timed(get_extractor)
    print(f"extractor build: {build_wall * 1000:.0f} ms (once per process)")

    sink: list[int] = []
    errs: list[str] = []
    bad, wall, cpu = _timed(lambda: extract_lines(lines, lambda b: sink.append(len(b)),
                                                   errs.append, x))
    mb = chars / 1e6
    print(f"notes extract: {len(lines)} notes, {mb:.1f} M chars, {bad} bad lines")
    print(f"  per core: {chars / cpu:,.0f} chars/s = {mb / cpu:.2f} MB/s (cpu {cpu:.2f} s)  "
          f"target >= 1 MB/s: {'yes' if mb / cpu >= 1 else 'NO'}")
    print(f"  wall:     {mb / wall:.2f} MB/s ({wall:.2f} s)")

    big = "\n".join(texts)
    while len(big) < 10_000_000:
        big += "\n" + big
    ten = big[:10_000_000]
    one_line = " ".join(big[:1_200_000].split())[:1_000_000]
    for name, note in (("10 MB note", ten), ("1 MB single-line note", one_line)):
        ms, w, c = _timed(lambda note=note: x.extract(note))
        print(f"{name}: {len(ms)} mentions, {w:.2f} s wall, {c:.2f} s cpu  "
              f"(< 10 s: {'yes' if w < 10 else 'NO'})")

    sub = texts[: args.medspacy_notes]
    res = _medspacy(sub)
    if res is None:
        print("medspaCy: skipped (not installed; pip install '.[nlp-compare]')")
        return 0
    sub_chars = sum(map(len, sub))
    _, _, oc = _timed(lambda: [x.extract(t) for t in sub])
    _, mc = res
    print(f"medspaCy default pipeline on {len(sub)} notes: {sub_chars / mc:,.0f} chars/s per "
          f"core; msc-screen: {sub_chars / oc:,.0f} chars/s; ratio {mc / oc:.1f}x "
          f"(target >= 10x: {'yes' if mc / oc >= 10 else 'NO'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
