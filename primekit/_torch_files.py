"""Reading a user's torch files safely: weights only, unless the caller opts in to a full pickle.

``torch.load`` of a full pickle runs whatever code the file names, so a downloaded checkpoint is an
executable. Every file primekit reads for a user goes through :func:`load_torch_file` (our own
loads) or :func:`weights_only_loads` (third-party loaders such as RAM's that call ``torch.load``
themselves): weights-only by default, a full pickle only with ``trust_pickle=True`` (CLI
``--trust-checkpoint``), and the refusal names that opt-in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["load_torch_file", "weights_only_loads", "pickle_refusal", "is_weights_only_error"]

logger = logging.getLogger(__name__)

_FORCE_SAFE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
_FORCE_UNSAFE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def pickle_refusal(path: str | os.PathLike, *, argument: str, what: str = "file") -> str:
    """The message that refuses a full pickle and names the opt-in."""
    return (
        f"{argument}: {str(path)!r} is not a weights-only {what}: loading it unpickles Python "
        "objects, which runs code from the file. If you trust the file, pass "
        "trust_pickle=True (CLI: --trust-checkpoint); better, save it weights-only "
        "(torch.save(model.state_dict())) or as TorchScript (torch.jit.save)"
    )


def is_weights_only_error(exc: BaseException) -> bool:
    """Whether ``exc`` is torch refusing a pickle under ``weights_only=True``."""
    import pickle

    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or (
        "Weights only load failed" in text
    )


def load_torch_file(
    path: str | os.PathLike,
    *,
    trust_pickle: bool = False,
    map_location: Any = "cpu",
    argument: str = "checkpoint",
) -> Any:
    """``torch.load`` a user's file, weights-only unless ``trust_pickle``.

    Raises ``ValueError`` naming ``argument`` when the file needs a full pickle and
    ``trust_pickle`` is False (the message names the opt-in), or cannot be read at all.
    """
    import torch

    if not isinstance(trust_pickle, bool):
        raise TypeError(f"trust_pickle: expected True or False, got {trust_pickle!r}")
    path = Path(path)
    try:
        with weights_only_loads(trust_pickle=trust_pickle):
            return torch.load(str(path), map_location=map_location, weights_only=not trust_pickle)
    except Exception as exc:
        if not trust_pickle and is_weights_only_error(exc):
            raise ValueError(pickle_refusal(path, argument=argument)) from None
        raise ValueError(
            f"{argument}: cannot load {str(path)!r} ({type(exc).__name__}: {exc})"
        ) from None


@contextlib.contextmanager
def weights_only_loads(*, trust_pickle: bool = False) -> Iterator[None]:
    """Make every ``torch.load`` inside the block weights-only (or, with ``trust_pickle``, allow
    full pickles), whatever the caller's code passes and whatever the environment says.

    For third-party loaders that call ``torch.load`` themselves (RAM's ``load_checkpoint_*``).
    Uses torch's own switches ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` / ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``,
    restored on exit.
    """
    saved = {k: os.environ.get(k) for k in (_FORCE_SAFE, _FORCE_UNSAFE)}
    os.environ.pop(_FORCE_SAFE if trust_pickle else _FORCE_UNSAFE, None)
    os.environ[_FORCE_UNSAFE if trust_pickle else _FORCE_SAFE] = "1"
    if trust_pickle:
        logger.warning("loading a full pickle (trust_pickle=True): only do this with files you trust")
    try:
        with warnings.catch_warnings():
            # torch warns that the switch forces weights_only=False: that is the opt-in, logged above
            warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
