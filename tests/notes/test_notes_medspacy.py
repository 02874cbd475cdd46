"""Compare with medspaCy's default ConText on the project's labelled sentences, when medspaCy
is installed (optional dev dependency: the ``nlp-compare`` extra)."""

from __future__ import annotations

import pytest

from msc_screen.notes import get_extractor

from .cases import f1_scores, load_cases

medspacy = pytest.importorskip("medspacy", reason="medspaCy is not installed "
                               "(pip install '.[nlp-compare]' to run the comparison)")


def test_f1_at_least_medspacy_default_context() -> None:
    from medspacy.ner import TargetRule

    cases = load_cases()
    nlp = medspacy.load()  # default pipeline: sentencizer, target matcher, ConText
    matcher = nlp.get_pipe("medspacy_target_matcher")
    matcher.add([TargetRule(t, "TARGET") for t in sorted({c.target for c in cases})])

    def theirs(case):  # type: ignore[no-untyped-def]
        doc = nlp(case.text)
        for ent in doc.ents:
            if ent.text.lower() == case.target.lower():
                return {f for f, attr in (("negated", "is_negated"),
                                          ("historical", "is_historical"),
                                          ("family", "is_family"),
                                          ("hypothetical", "is_hypothetical"),
                                          ("uncertain", "is_uncertain"))
                        if getattr(ent._, attr, False)}
        return set()

    def ours(case):  # type: ignore[no-untyped-def]
        a = get_extractor().assert_target(case.text, case.target).as_dict()
        return {k for k, v in a.items() if v}

    mine, base = f1_scores(cases, ours), f1_scores(cases, theirs)
    for flag in ("negated", "historical"):
        assert mine[flag] >= base[flag], (flag, mine, base)
