"""``primekit predict`` (registered in primekit.cli.COMMANDS)."""

from .cli import add_predict_subparser as add_subparser

__all__ = ["add_subparser"]
