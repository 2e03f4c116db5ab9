"""The command line: a thin layer over the package. Each command lives in its own module."""

from __future__ import annotations

import sys

import click

from . import __version__


class UserError(click.ClickException):
    """A problem with the user's input or environment: one clear line, exit status 1."""

    def show(self, file=None) -> None:  # noqa: D102 - one line, no "Error:" decoration noise
        click.echo(f"hdrvideo: error: {self.format_message()}", err=True, file=file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdrvideo")
def main() -> None:
    """Turn SDR video (8-bit BT.709) into HDR10 (PQ) or HLG video (10-bit BT.2020) with ExpandNet."""


def run() -> None:  # pragma: no cover - console entry point used by `python -m hdrvideo`
    sys.exit(main())
