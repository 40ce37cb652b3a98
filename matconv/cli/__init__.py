"""The ``matconv`` command (also ``python -m matconv``): thin argument parsing over the library.

One module per command (:mod:`.show`, :mod:`.train`); each registers its parser with
``add_parser(sub)`` and does its work in a ``run`` function that calls the library and prints.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import show, spectrum, train

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, no traceback
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``matconv`` parser with every command registered."""
    from .. import __version__

    parser = _Parser(prog="matconv", description="Every convolution as an explicit matrix.",
                     epilog="Run 'matconv COMMAND --help' for the flags of a command.")
    parser.add_argument("--version", action="version", version=f"matconv {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                title="commands", metavar="COMMAND")
    show.add_parser(sub)
    spectrum.add_parser(sub)
    train.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    """The ``matconv`` command: parse ``argv`` (default ``sys.argv``), run, return the status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # a bare `matconv`: the usage and the commands, as argparse's exit status 2
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`matconv show | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, ImportError) as exc:
        # bad input, files or a missing optional dependency: one line, status 2
        print(f"matconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
