"""Process-wide cache of compiled rulesets, keyed by policy (name or file path)."""

from __future__ import annotations

import threading
from pathlib import Path

from .compiled import CompiledRuleset, compile_ruleset
from .loader import KnowledgeBase, load_knowledge_base, load_policy

_lock = threading.Lock()
_kb: dict[str, KnowledgeBase] = {}
_compiled: dict[tuple[str, str], CompiledRuleset] = {}


def get_knowledge_base(root: Path | None = None) -> KnowledgeBase:
    key = str(root or "")
    with _lock:
        if key not in _kb:
            _kb[key] = load_knowledge_base(root)
        return _kb[key]


def get_ruleset(policy: str | None = None, root: Path | None = None) -> CompiledRuleset:
    """The ruleset compiled under ``policy`` (a name in the knowledge base or a YAML path)."""
    kb = get_knowledge_base(root)
    name = policy or kb.manifest.default_policy
    cache_key = (str(root or ""), name)
    with _lock:
        hit = _compiled.get(cache_key)
    if hit is not None:
        return hit
    pol, sha = load_policy(kb, name)
    compiled = compile_ruleset(kb, pol, sha)
    with _lock:
        _compiled[cache_key] = compiled
    return compiled
