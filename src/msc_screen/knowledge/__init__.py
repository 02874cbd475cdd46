"""The knowledge base: rules, value sets, citations and policies, shipped as YAML data inside
the package and loaded with precise errors. See ``schema`` for the shape."""

from .compiled import CompiledRule, CompiledRuleset, compile_ruleset
from .loader import KnowledgeBase, load_knowledge_base, load_policy
from .ruleset import get_ruleset

__all__ = [
    "CompiledRule",
    "CompiledRuleset",
    "KnowledgeBase",
    "compile_ruleset",
    "get_ruleset",
    "load_knowledge_base",
    "load_policy",
]
