"""The ruleset fingerprint (sha256 in every assessment) covers everything that changes findings."""

from __future__ import annotations


def test_note_assertion_rules_are_part_of_the_ruleset_fingerprint(tmp_path):
    """Negation/history triggers and section headings change findings, so every assessment's
    ruleset sha256 must change with them."""
    import shutil

    from msc_screen.knowledge.loader import load_knowledge_base, package_root

    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    before = load_knowledge_base(root).sha256
    for name in ("context_rules.yaml", "sections.yaml"):
        p = root / "notes" / name
        p.write_text(p.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        after = load_knowledge_base(root).sha256
        assert after != before, name
        before = after
