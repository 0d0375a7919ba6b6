"""The `anonfaces` command: one sub-command per stage.

Each stage's command lives in its own module here (`encode.py`, `cluster.py`,
`anonymize.py`, `evaluate.py`) and only parses options and calls the library.
Errors the library raises on purpose (`AnonfacesError`) become a one-line
message and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import logging

import click

# sub-command name -> (module under anonfaces.cli, attribute holding the click command)
_COMMANDS = {
    "encode": ("encode", "command"),
    "convert": ("convert", "command"),
    "cluster": ("cluster", "command"),
    "anonymize": ("anonymize", "command"),
    "evaluate": ("evaluate", "command"),
    "verify": ("verify", "command"),
}


class _LazyGroup(click.Group):
    """Imports a sub-command's module only when it is used (keeps `--help` fast)."""

    def list_commands(self, ctx):
        return [name for name in _COMMANDS if self.get_command(ctx, name) is not None]

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[name]
        try:
            mod = importlib.import_module(f"anonfaces.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"anonfaces.cli.{module}":
                return None
            raise
        return getattr(mod, attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anonfaces")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """k-anonymity face de-identification: encode -> cluster -> anonymize -> evaluate."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
