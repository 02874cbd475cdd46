"""The generic assertion classifier (``notes assert``) on the project's labelled sentences."""

from __future__ import annotations

import pytest

from msc_screen.notes import get_extractor

from .cases import FLAGS, load_cases

CASES = load_cases()


def _predict(text: str, target: str) -> set[str]:
    a = get_extractor().assert_target(text, target).as_dict()
    return {k for k, v in a.items() if v}


def test_the_set_is_large_and_covers_every_flag() -> None:
    assert len(CASES) >= 300
    for flag in FLAGS:
        assert sum(flag in c.expected for c in CASES) >= 15, flag
    assert sum(not c.expected for c in CASES) >= 50  # affirmed, current, patient's own


def test_every_labelled_sentence() -> None:
    wrong = [f"line {c.line}: {sorted(c.expected)} != {sorted(_predict(c.text, c.target))}  "
             f"[{c.target}] {c.text}" for c in CASES if _predict(c.text, c.target) != c.expected]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("text", "target", "flag"), [
    ("No fever but there is cellulitis.", "cellulitis", None),  # "but" ends the scope
    ("No fever; cellulitis of the leg.", "cellulitis", None),  # so does ";"
    ("No increase in the nodule.", "nodule", None),  # pseudo-trigger
    ("He denies chest pain.", "chest pain", "negated"),
    ("HISTORY OF PRESENT ILLNESS: fever.", "fever", None),  # not historical
    ("Return if fever.", "fever", "hypothetical"),
])
def test_scope_rules(text: str, target: str, flag: str | None) -> None:
    assert _predict(text, target) == ({flag} if flag else set())


def test_target_is_found_as_a_whole_word() -> None:
    # "mi" occurs inside "family"; the target is the MI after the heading.
    assert _predict("Family History: MI in brother.", "MI") == {"family", "historical"}


def test_target_case_and_spacing_are_ignored() -> None:
    assert _predict("The patient DENIES   CHEST\nPAIN.", "chest pain") == {"negated"}


def test_locate_tolerates_spacing_punctuation_and_inflection() -> None:
    from msc_screen.notes import locate

    assert locate("Pain in chest-wall.", "chest wall") == (8, 18)
    assert locate("Abdomen not tender.", "tenderness") == (12, 18)
    assert locate("Family: MI.", "mi") == (8, 10)
    assert locate("abc", "xyz") is None
    assert _predict("Abdomen not tender.", "tenderness") == {"negated"}
