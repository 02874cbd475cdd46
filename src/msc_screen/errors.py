"""One error family with documented contracts.

Every error a user can cause names *where* (file, line, resource, field) and *why*, and carries
no patient data beyond identifiers, so doors can print it verbatim and exit cleanly.
"""

from __future__ import annotations


class MscScreenError(Exception):
    """Base of every error the project raises on purpose."""


class InputError(MscScreenError):
    """Bad input data: the message names the source and location, never patient content."""

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        resource: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        self.resource = resource
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        where = [self.source]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.resource:
            where.append(self.resource)
        if self.field:
            where.append(f"field {self.field}")
        return f"{': '.join(where)}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "resource": self.resource,
            "field": self.field,
            "reason": self.reason,
        }


class KnowledgeError(MscScreenError):
    """The knowledge base (rules, value sets, policies) is malformed: names file, rule and key."""

    def __init__(self, path: str, reason: str, *, key: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.key = key
        loc = f"{path} [{key}]" if key else path
        super().__init__(f"{loc}: {reason}")


class PolicyError(KnowledgeError):
    """A policy overrides something that does not exist or with a value of the wrong type."""
