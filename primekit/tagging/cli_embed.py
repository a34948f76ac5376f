"""``primekit embed`` (registered in primekit.cli.COMMANDS)."""

from .cli import add_embed_subparser as add_subparser

__all__ = ["add_subparser"]
