"""Helpers shared by the CLI doors: exit codes and error printing without tracebacks."""

from __future__ import annotations

import sys

from rich.console import Console

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(msg: str) -> None:
    from rich.markup import escape

    # escaped: a resource id such as "[/oops]" is data, never Rich markup
    err_console.print(f"[bold red]error:[/] {escape(msg)}", markup=True, highlight=False)


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> None:
    print_error(msg)
    sys.exit(code)
