"""``msc-screen notes extract|assert``: the notes component's JSON Lines doors."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import typer

from ..errors import KnowledgeError
from .common import EXIT_BAD_INPUT, EXIT_OK, fail, print_error

notes_app = typer.Typer(help="Clinical notes: concept mentions and assertion context (JSON Lines).",
                        no_args_is_help=True)


def _run(path: str, fn_name: str) -> None:
    from ..notes import get_extractor, jsonl

    try:
        extractor = get_extractor()
    except KnowledgeError as exc:
        fail(str(exc), code=1)
    fn: Callable[..., int] = getattr(jsonl, fn_name)
    out = sys.stdout.buffer

    def write(b: bytes) -> None:
        out.write(b)

    if path == "-":
        bad = fn(sys.stdin.buffer, write, print_error, extractor, "<stdin>")
    else:
        p = Path(path)
        try:
            fh: IO[bytes] = (gzip.open(p, "rb") if p.suffix == ".gz"  # type: ignore[assignment]  # noqa: SIM115
                             else p.open("rb"))
        except OSError as exc:
            fail(f"{path}: cannot read ({exc.strerror})")
        try:
            with fh:
                lines: Iterable[bytes] = fh
                bad = fn(lines, write, print_error, extractor, path)
        except BrokenPipeError:
            sys.exit(EXIT_OK)  # the reader went away (| head): nothing more to say
        except (OSError, EOFError) as exc:
            fail(f"{path}: cannot read ({exc})")
    out.flush()
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


@notes_app.command("extract")
def extract_cmd(path: str = typer.Argument("-", help="JSON Lines file of {\"id\", \"text\"} "
                                           "(.gz accepted); '-' for stdin.")) -> None:
    """Find rule-concept mentions, with context flags, in each note."""
    _run(path, "extract_lines")


@notes_app.command("assert")
def assert_cmd(path: str = typer.Argument("-", help="JSON Lines file of {\"id\", \"text\", "
                                          "\"target\"}; '-' for stdin.")) -> None:
    """Classify a target phrase: negated, historical, family, hypothetical, uncertain."""
    _run(path, "assert_lines")


def register(app: typer.Typer) -> None:
    app.add_typer(notes_app, name="notes")
