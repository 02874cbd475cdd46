"""The two JSON Lines contracts of ``msc-screen notes``, as plain functions over lines.

extract: {"id", "text"} -> {"id", "mentions": [{"rule", "text", "span", "negated", "historical",
         "family", "hypothetical", "uncertain", "section"}]}
assert:  {"id", "text", "target"} -> {"id", "negated", "historical", "family", "hypothetical",
         "uncertain"}

A bad line yields an error message naming the line (never its text: notes are patient data)
and processing continues; the caller turns any error into exit status 2."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..model import Mention
from .extractor import Extractor, locate

Writer = Callable[[bytes], Any]
Reporter = Callable[[str], Any]


def mention_json(m: Mention) -> dict[str, Any]:
    return {"rule": m.rule, "text": m.text, "span": [m.span[0], m.span[1]],
            "negated": m.negated, "historical": m.historical, "family": m.family,
            "hypothetical": m.hypothetical, "uncertain": m.uncertain, "section": m.section}


def _parse(raw: bytes | str, n: int, fields: tuple[str, ...], where: str
           ) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"{where}line {n}: not valid JSON ({exc.args[0].split(':')[0]})"
    if not isinstance(obj, dict):
        return None, f"{where}line {n}: expected a JSON object"
    if "id" not in obj or not isinstance(obj["id"], str | int) or isinstance(obj["id"], bool):
        return None, f"{where}line {n}: 'id' is missing or not a string/number"
    for f in fields:
        if not isinstance(obj.get(f), str):
            return None, (f"{where}line {n} (id {obj['id']}): '{f}' is missing or not a string")
    return obj, None


def _lines(lines: Iterable[bytes | str]) -> Iterable[tuple[int, bytes | str]]:
    for n, raw in enumerate(lines, 1):
        if raw.strip():
            yield n, raw


def extract_lines(lines: Iterable[bytes | str], write: Writer, report: Reporter,
                  extractor: Extractor, source: str = "") -> int:
    """Run ``notes extract`` over JSON lines; returns the number of bad lines."""
    bad = 0
    where = f"{source}: " if source else ""
    for n, raw in _lines(lines):
        obj, err = _parse(raw, n, ("text",), where)
        if obj is None:
            bad += 1
            report(err or "")
            continue
        mentions = [mention_json(m) for m in extractor.extract(obj["text"])]
        write(orjson.dumps({"id": obj["id"], "mentions": mentions}) + b"\n")
    return bad


def assert_lines(lines: Iterable[bytes | str], write: Writer, report: Reporter,
                 extractor: Extractor, source: str = "") -> int:
    """Run ``notes assert`` over JSON lines; returns the number of bad lines. A target that
    does not occur in the text is reported, and its flags are all false."""
    bad = 0
    where = f"{source}: " if source else ""
    for n, raw in _lines(lines):
        obj, err = _parse(raw, n, ("text", "target"), where)
        if obj is None:
            bad += 1
            report(err or "")
            continue
        if locate(obj["text"], obj["target"]) is None:
            bad += 1
            report(f"{where}line {n} (id {obj['id']}): the target does not occur in the text; "
                   "flags are all false")
        a = extractor.assert_target(obj["text"], obj["target"])
        write(orjson.dumps({"id": obj["id"], **a.as_dict()}) + b"\n")
    return bad
