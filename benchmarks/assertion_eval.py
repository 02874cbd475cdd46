"""Score ``msc-screen notes assert`` on a labelled negation corpus in the NegEx test-set layout.

The input is a tab-separated file with a header line and the columns of the NegEx annotated
test set (Chapman et al.): line number, Condition (the target phrase), sentence,
negation status (Negated / Affirmed / Possible), temporality (Recent / Historical /
Hypothetical / Not particular), experiencer (Patient / Other). Nothing is shipped or
downloaded: pass the path of a corpus you have.

Each row goes through the ``notes assert`` JSON Lines function exactly as the CLI runs it
(text = sentence, target = Condition), and each flag is scored as a binary task:

    negated      <- negation status "Negated"
    uncertain    <- negation status "Possible"
    historical   <- temporality "Historical"
    hypothetical <- temporality "Hypothetical" or "Not particular"
    family       <- experiencer other than "Patient"

    .venv/bin/python benchmarks/assertion_eval.py CORPUS.tsv [--errors FLAG] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from msc_screen.notes import get_extractor
from msc_screen.notes.jsonl import assert_lines

FLAGS = ("negated", "historical", "hypothetical", "uncertain", "family")


@dataclass(frozen=True)
class Row:
    line: str
    target: str
    text: str
    gold: frozenset[str]


def gold_flags(negation: str, temporality: str, experiencer: str) -> frozenset[str]:
    neg, tmp, exp = negation.strip().lower(), temporality.strip().lower(), experiencer.strip().lower()
    out = set()
    if neg.startswith("negated"):
        out.add("negated")
    elif neg.startswith("possible"):
        out.add("uncertain")
    if tmp.startswith("historical"):
        out.add("historical")
    elif tmp.startswith(("hypothetical", "not particular")):
        out.add("hypothetical")
    if exp and not exp.startswith("patient"):
        out.add("family")
    return frozenset(out)


def read_corpus(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh, 1):
            parts = raw.rstrip("\r\n").split("\t")
            if n == 1 and not parts[0].strip().isdigit():
                continue  # header
            if len(parts) < 6:
                print(f"{path}:{n}: expected 6 tab-separated columns, got {len(parts)}; skipped",
                      file=sys.stderr)
                continue
            rows.append(Row(parts[0], parts[1], parts[2], gold_flags(*parts[3:6])))
    return rows


def predict(rows: Iterable[Row]) -> list[frozenset[str]]:
    rows = list(rows)
    lines = [orjson.dumps({"id": i, "text": r.text, "target": r.target})
             for i, r in enumerate(rows)]
    out: list[bytes] = []
    assert_lines(lines, out.append, lambda _msg: None, get_extractor())
    got: list[frozenset[str]] = [frozenset()] * len(rows)
    for raw in out:
        obj = orjson.loads(raw)
        got[obj["id"]] = frozenset(f for f in FLAGS if obj.get(f))
    return got


def score(rows: list[Row], got: list[frozenset[str]]) -> dict[str, dict[str, float]]:
    res = {}
    for f in FLAGS:
        tp = sum(f in g and f in r.gold for r, g in zip(rows, got, strict=True))
        fp = sum(f in g and f not in r.gold for r, g in zip(rows, got, strict=True))
        fn = sum(f not in g and f in r.gold for r, g in zip(rows, got, strict=True))
        tn = len(rows) - tp - fp - fn
        p = tp / (tp + fp) if tp + fp else 1.0
        rc = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        res[f] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": p, "recall": rc, "f1": f1}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--errors", metavar="FLAG", choices=FLAGS,
                    help="also list the rows where FLAG is wrong")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N rows")
    args = ap.parse_args(argv)
    if not args.corpus.is_file():
        print(f"{args.corpus}: no such file (this script ships no data)", file=sys.stderr)
        return 2
    rows = read_corpus(args.corpus)
    if args.limit:
        rows = rows[:args.limit]
    got = predict(rows)
    res = score(rows, got)
    print(f"{len(rows)} rows from {args.corpus.name}")
    print(f"{'flag':<13}{'gold':>6}{'TP':>6}{'FP':>6}{'FN':>6}{'TN':>7}"
          f"{'precision':>11}{'recall':>8}{'F1':>7}")
    for f, m in res.items():
        print(f"{f:<13}{m['tp'] + m['fn']:>6}{m['tp']:>6}{m['fp']:>6}{m['fn']:>6}{m['tn']:>7}"
              f"{m['precision']:>11.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}")
    if args.errors:
        f = args.errors
        print(f"\nrows where '{f}' is wrong (FP: predicted but not gold; FN: the reverse):")
        for r, g in zip(rows, got, strict=True):
            if (f in g) != (f in r.gold):
                kind = "FP" if f in g else "FN"
                text = " ".join(r.text.split())
                print(f"{kind} {r.line:>5} [{' '.join(r.target.split())}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
