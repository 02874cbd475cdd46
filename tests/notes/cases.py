"""The labelled assertion test set (assertion_cases.tsv) and F1 scoring, shared by the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CASES_FILE = Path(__file__).with_name("assertion_cases.tsv")
FLAGS = ("negated", "historical", "family", "hypothetical", "uncertain")
SHORT = {"neg": "negated", "hist": "historical", "fam": "family", "hyp": "hypothetical",
         "unc": "uncertain"}


@dataclass(frozen=True)
class Case:
    line: int
    target: str
    text: str
    expected: frozenset[str]


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    out = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        flags, target, text = raw.split("\t")
        want = frozenset() if flags == "-" else frozenset(SHORT[f] for f in flags.split(","))
        assert target.lower() in text.lower(), f"line {n}: target not in text"
        out.append(Case(n, target, text, want))
    return out


def f1_scores(cases: Iterable[Case], predict: Callable[[Case], set[str]]
              ) -> dict[str, float]:
    """F1 of each flag over the cases (positive class: the flag is set)."""
    tp = dict.fromkeys(FLAGS, 0)
    fp = dict.fromkeys(FLAGS, 0)
    fn = dict.fromkeys(FLAGS, 0)
    for c in cases:
        got = predict(c)
        for f in FLAGS:
            if f in got and f in c.expected:
                tp[f] += 1
            elif f in got:
                fp[f] += 1
            elif f in c.expected:
                fn[f] += 1
    return {f: (2 * tp[f] / (2 * tp[f] + fp[f] + fn[f]) if tp[f] + fp[f] + fn[f] else 1.0)
            for f in FLAGS}
