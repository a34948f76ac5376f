"""The ``primekit`` command line.

Each subcommand lives beside the code it drives and registers itself through a function
``add_subparser(subparsers)`` that adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code). Bad input raises ``ValueError``/``TypeError`` inside ``func``;
``main`` turns it into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# subcommand -> module defining add_subparser(subparsers); imported lazily so that
# `primekit search` does not pay for torch.
COMMANDS: dict[str, str] = {
    "search": "primekit.search_cli",
    "demo": "primekit.demo",
    "tag": "primekit.tagging.cli",
    "embed": "primekit.tagging.cli_embed",
    "predict": "primekit.tagging.cli_predict",
    "report": "primekit.report",
    "study": "primekit.study_cli",
    "toyworld": "primekit.toyworld.pretrained",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as argparse does, but uniform
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; with ``only`` import just that subcommand's module."""
    parser = _Parser(
        prog="primekit",
        description="PRIME: find where an image classifier fails, in human-readable tags.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            continue
        importlib.import_module(module).add_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``primekit`` script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as exc:
        print(f"primekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"primekit {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
