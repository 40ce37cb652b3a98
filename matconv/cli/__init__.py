"""The ``matconv`` command (also ``python -m matconv``): thin argument parsing over the library.

One module per command (:mod:`.show`, :mod:`.train`); each registers its parser with
``add_parser(sub)`` and does its work in a ``run`` function that calls the library and prints.
"""
from __future__ import annotations

import argparse
import sys

from . import show, spectrum, train

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, no traceback
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``matconv`` parser with every command registered."""
    parser = _Parser(prog="matconv", description="Every convolution as an explicit matrix.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    show.add_parser(sub)
    spectrum.add_parser(sub)
    train.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:  # bad input or files: one line, status 2
        print(f"matconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
