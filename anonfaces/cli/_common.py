"""Pieces the sub-commands share: turning library errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from anonfaces.errors import AnonfacesError


class UserError(click.ClickException):
    """A problem with the user's input: message and exit code 2, no traceback."""

    exit_code = 2


def user_errors(func: Callable) -> Callable:
    """Run ``func``; an `AnonfacesError` becomes ``Error: <message>`` and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AnonfacesError as exc:
            raise UserError(str(exc)) from exc
        except KeyboardInterrupt:
            raise UserError("interrupted; completed work is kept (use --resume where offered)") from None

    return wrapper


def parse_params(items: tuple[str, ...]) -> dict:
    """Turn ``("eps=0.4", "min_samples=3")`` into ``{"eps": 0.4, "min_samples": 3}``.

    Values are read as int, float, bool (true/false) or None (none) where they look so;
    anything else stays a string.
    """
    from anonfaces.pipeline.options import parse_value

    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--param {item!r} is not of the form name=value")
        name, value = item.split("=", 1)
        out[name.strip()] = parse_value(value.strip())
    return out


# --- options every command shares, typed and checked the same way ------------------------------------
class KType(click.ParamType):
    """``--k``: one integer >= 2, or with ``many`` a comma-separated list of them (`anonfaces.pipeline.options.check_k`)."""

    def __init__(self, many: bool = False):
        self.many = many
        self.name = "K[,K...]" if many else "K"

    def convert(self, value, param, ctx):
        from anonfaces.errors import BadInputError
        from anonfaces.pipeline.options import check_k, check_ks

        if self.many and isinstance(value, tuple):
            return value
        try:
            return check_ks(value) if self.many else check_k(value)
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)


class JobsType(click.ParamType):
    """``--jobs``: worker processes, an integer >= 1 (-1: every core, as the default)."""

    name = "N"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int) and value >= 1:
            return value
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not an integer", param, ctx)
        if n == -1:
            return None
        if n < 1:
            self.fail(f"{n} must be >= 1 (or -1: every core)", param, ctx)
        return n


def k_option(*, many: bool = False, default=5, help: str = "Every cluster stands for at least k people."):
    return click.option("--k", "k" if not many else "ks", type=KType(many), default=default, show_default=True, help=help)


def jobs_option(help: str = "Worker processes, started once for the whole command. Default: every core."):
    return click.option("--jobs", type=JobsType(), default=None, help=help)


def backend_options():
    """``--backend local|ray`` and ``--address``: where the command's workers run (`anonfaces.utils.parallel.make_pool`)."""

    def decorate(func):
        func = click.option("--address", default=None, metavar="ADDRESS",
                            help="With --backend ray: join this running Ray cluster (auto, host:6379 or ray://host:10001) "
                                 "instead of starting Ray on this machine. Photos and outputs must be on storage every "
                                 "node sees under the same paths.")(func)
        return click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                            help="local: worker processes on this machine. ray: Ray tasks (pip install 'anonfaces[ray]'), "
                                 "per-photo work sharded across the Ray cluster, failed tasks retried.")(func)

    return decorate


def open_pool(jobs, progress: bool, backend: str, address):
    """The command's one worker pool (a context manager) for ``--jobs``, ``--backend`` and ``--address``."""
    from anonfaces.utils.parallel import make_pool

    return make_pool(jobs, progress=progress, backend=backend, address=address)


def progress_option():
    return click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")


def registry_names(registry_of: Callable, *, many: bool = False):
    """A click callback that checks a name (or comma-separated names) against a registry at parse time."""

    def callback(ctx, param, value):
        from anonfaces.errors import AnonfacesError
        from anonfaces.pipeline.options import check_names

        if value is None:
            return value
        try:
            names = check_names(value, registry_of())
        except AnonfacesError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        return names if many else names[0]

    return callback


def command_line() -> str:
    """The command as typed (``anonfaces ...`` or ``python scripts/<x>.py ...``), for run.json."""
    import shlex
    import sys
    from pathlib import Path

    argv = list(sys.argv)
    head = ["anonfaces"] if Path(argv[0]).name == "anonfaces" else ["python", argv[0]]
    return " ".join(shlex.quote(a) for a in [*head, *argv[1:]])
