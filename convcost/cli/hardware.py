"""``convcost hardware``: the shipped hardware profiles (or one, or a profile file) and their sources."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import ConvcostError
from ..hardware import get_profile, list_profiles
from ..render.hardware import HARDWARE_RENDERERS
from .app import app, fail
from .display import display, for_output
from .options import OutputOptions, with_option_groups
from .output import emit


@app.command()
@with_option_groups
def hardware(
    name: Optional[str] = typer.Argument(None, metavar="[NAME|FILE.yaml]", show_default=False,
                                         help="One profile by id, or a profile file of your own."),
    target: OutputOptions = OutputOptions(),
) -> None:
    """List the hardware profiles that --hardware takes: peak FLOP/s per precision and memory bandwidth.

    Every number carries its datasheet (--json shows sources and notes). A
    roofline time is a lower bound on latency, for comparing drafts.

    Example: convcost hardware --json | jq '.profiles[] | .id'
    """
    try:
        profiles = list_profiles() if name is None else (get_profile(name),)
        shown = display(to_file=target.to_file)
        emit(target.format, for_output(HARDWARE_RENDERERS[target.format](profiles, shown.view()), shown),
             output=target.output)
    except ConvcostError as error:
        fail(error)
