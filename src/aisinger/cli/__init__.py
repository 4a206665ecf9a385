"""The ``aisinger`` command: thin sub-apps over the library, one module per command group.

``audio`` (info, separate, features), ``models``, ``dataset``, ``voice`` (train, voice import /
info), ``produce`` (convert, cover, speak, demo), ``label`` (label, detect), ``lab``,
``evaluate`` (eval) and the request service's own sub-app (:mod:`aisinger.service.cli`,
``aisinger serve``).  Options several commands share are defined once in
:mod:`aisinger.cli.options`, with the library's defaults.  Each command parses its options,
calls one public library function and prints where the results went.  Errors the user can fix
are :class:`~aisinger.errors.AisingerError` and are printed as one line (``error: …``) with exit
code 2; nothing else is caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# OpenMP threads that spin while waiting steal the other core from ffmpeg, soxr and the other
# torch pool on a 2-core machine; measured: 2-thread Spleeter went from 0.11-0.17x to 0.039x
# real time with PASSIVE.  Must be set before torch is imported; the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# pyworld 0.3.5 imports the deprecated pkg_resources (we pin setuptools<81 for it); keep the
# user's terminal free of that warning.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import typer  # noqa: E402  (after the environment above)

from aisinger import __version__  # noqa: E402
from aisinger.cli import (audio, dataset, evaluate, lab, label, live, models, produce,  # noqa: E402
                          voice)
from aisinger.errors import EXIT_USER_ERROR, AisingerError  # noqa: E402
from aisinger.service import cli as service_cli  # noqa: E402

__all__ = ["app", "command", "main"]

log = logging.getLogger("aisinger")

app = typer.Typer(
    name="aisinger",
    help="aisinger — AI singing voices on an ordinary CPU: separate songs into stems, extract "
         "features, build consented voice datasets, label AI audio (metadata + watermark) and "
         "detect labels, evaluate quality, build lab audio.  Every command has --help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models.app, name="models")
app.add_typer(audio.app)
app.add_typer(dataset.app, name="dataset")
app.add_typer(voice.commands)
app.add_typer(produce.app)
app.add_typer(live.app)
app.add_typer(label.app)
app.add_typer(voice.app, name="voice")
app.add_typer(lab.app, name="lab")
app.add_typer(evaluate.app)
app.add_typer(service_cli.app, name="serve")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aisinger {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Print debug details."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only warnings and errors; "
                                                            "no progress bars."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    # aisinger's own INFO lines are the progress a user reads; other libraries' INFO chatter
    # (matplotlib's "generated new fontManager" mid-training, …) only with -v
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    log.setLevel(level)
    if quiet:
        os.environ["AISINGER_PROGRESS"] = "0"


def _unwrap(text: str | None) -> str | None:
    """Join the hard line breaks inside each paragraph of a docstring, so that the help
    formatter wraps whole sentences at the terminal's width instead of keeping the source's
    line breaks (which showed as lines broken mid-sentence).  Paragraphs starting with ``\b``
    (click's "keep as is") are kept."""
    if not text:
        return text
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _tidy(cmd) -> None:
    """Help polish applied to every command: flags (options that take no value) show no
    ``<bool>`` type; docstrings are unwrapped (see :func:`_unwrap`)."""
    cmd.help = _unwrap(cmd.help)
    get_help_option = cmd.get_help_option

    def help_option(ctx, _get=get_help_option):
        opt = _get(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = help_option
    for param in cmd.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _tidy(sub)


def command():
    """The click command behind :data:`app`, with :func:`_tidy` applied (what ``aisinger``
    runs)."""
    cmd = typer.main.get_command(app)
    _tidy(cmd)
    return cmd


def main() -> None:
    """Console entry point."""
    try:
        command()(prog_name="aisinger")
    except AisingerError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
