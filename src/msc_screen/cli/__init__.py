"""The ``msc-screen`` command. Each door registers its sub-commands from its own module; none
decides anything itself — they all call the engine."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="msc-screen",
    help="Screen people for contraindications to IV mesenchymal stem/stromal cell therapy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """Screen people for contraindications to IV mesenchymal stem/stromal cell therapy."""


# Each module defines ``register(app)``; modules of doors not built yet are skipped.
_DOORS = ("screen", "rules", "notes", "terminology", "batch", "synth", "serve", "audit", "demo",
          "cds")


def _register() -> None:
    for name in _DOORS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}_cmd":
                continue
            raise
        mod.register(app)


_register()


def main() -> None:
    """Entry point: user errors and internal errors print one clear line, never a traceback
    (set MSC_SCREEN_DEBUG=1 to see one)."""
    import os
    import sys

    from ..errors import MscScreenError
    from .common import EXIT_INTERNAL, print_error

    try:
        app(standalone_mode=True)
    except MscScreenError as exc:
        if os.environ.get("MSC_SCREEN_DEBUG"):
            raise
        print_error(str(exc))
        sys.exit(EXIT_INTERNAL)
    except Exception as exc:
        if os.environ.get("MSC_SCREEN_DEBUG"):
            raise
        print_error(f"internal error ({type(exc).__name__}); rerun with MSC_SCREEN_DEBUG=1 "
                    "for details")
        sys.exit(EXIT_INTERNAL)
