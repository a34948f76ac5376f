"""The two baselines of the paper, re-implemented on numpy and scikit-learn, one module each.

- **DOMINO** (Eyuboglu et al., ICLR 2022), :mod:`.domino`: an error-aware Gaussian mixture over
  PCA'd CLIP image embeddings, labels and predictions (:class:`DominoSlicer`); slices described by
  the phrase whose CLIP text embedding best matches the slice's mean shift
  (:func:`domino_describe`).
- **Distilling failure directions** (Jain et al., ICLR 2023), :mod:`.failure_directions`: a
  linear SVM per class on CLIP latents that separates correct from incorrect images
  (:class:`FailureDirections`); captions ranked by the same SVM.
- Shared, :mod:`._common`: the slice table :data:`SLICE_COLUMNS`, :func:`phrase_vocabulary`,
  :func:`prime_budget` (how many and how large modes PRIME found per class, so that the
  baselines can be asked for the same, as the paper did).

The published packages do not install on current Python; these follow their methods (read from
their papers and sources) without their code. :func:`domino_slices` and
:func:`failure_direction_slices` write slice tables shaped like PRIME's mode table (``class``,
``members``, ``size``, ``accuracy``, ``class_accuracy``, ``drop``, ``description``), which
:func:`primekit.metrics.description_quality` scores alike. A new baseline goes into a module of
its own that writes the same table, and is re-exported here.
"""

from ._common import SLICE_COLUMNS, phrase_vocabulary, prime_budget
from .domino import DominoSlicer, domino_describe, domino_slices
from .failure_directions import FailureDirections, failure_direction_slices

__all__ = [
    "DominoSlicer",
    "domino_describe",
    "domino_slices",
    "FailureDirections",
    "failure_direction_slices",
    "prime_budget",
    "phrase_vocabulary",
    "SLICE_COLUMNS",
]
