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
_DOORS = ("screen", "rules", "notes", "batch", "synth", "serve", "audit", "demo")


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
    app()
