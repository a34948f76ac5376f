"""Distilling failure directions (Jain et al., ICLR 2023), re-implemented on scikit-learn.

A linear SVM per class on CLIP latents separates correct from incorrect images, with balanced
class weights and its C chosen by cross-validation (:class:`FailureDirections`); the hardest
subpopulation is the images scored most strongly as "incorrect", and captions are ranked by the
same SVM applied to their text embeddings. :func:`failure_direction_slices` writes them as a
slice table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, make_scorer
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC, LinearSVC

from .._validation import check_embeddings, check_int, check_real, l2_normalize, sorted_classes
from ._common import (
    SLICE_COLUMNS,
    aligned,
    bool_vector,
    checked_phrases,
    per_class,
    slice_row,
)

__all__ = ["FailureDirections", "failure_direction_slices"]

logger = logging.getLogger(__name__)


class FailureDirections:
    """Per-class linear SVMs separating correct from incorrect images (Jain et al., 2022).

    Latents are L2-normalized (CLIP features), whitened with the mean and standard deviation of
    the fit data and L2-normalized again (the method's preprocessing, applied to caption
    embeddings too); for every class a linear SVM (``SVC``,
    ``kernel="linear"``) predicts "correct" with balanced class weights, its C chosen from
    ``C_grid`` by ``cv``-fold cross-validated balanced accuracy. The decision value measures
    alignment with the class's direction: negative = toward failure.

    Parameters
    ----------
    C_grid : sequence of float, default logspace(-6, 0, 7)
    C : float, optional
        Fixed C (no search).
    cv : int, default 2
        Folds of the C search (stratified, unshuffled).
    balanced : bool, default True
        ``class_weight="balanced"``.
    whiten : bool, default True
    n_directions : int or mapping class -> int, default 1
        Directions per class (a class missing from a mapping gets 1). 1 is the published
        method. With k > 1 (our extension, so that the method can be asked for as many slices
        as PRIME found, as the paper asks of its baselines), direction j is the SVM refit (same
        C search) on the class's correct images and the errors no earlier direction explains,
        e.g. a second error cluster on the other side of the first hyperplane. A direction
        fitted on m errors explains those among the m images it ranks most failure-like.
        Fitting stops early when every error is explained or a new direction explains none
        (that one is not kept).
    solver : {"libsvm", "liblinear"}, default "libsvm"
        "libsvm": ``SVC(kernel="linear")`` as the published code; "liblinear": ``LinearSVC``
        with the hinge loss, the same model up to the (regularized) intercept and much faster
        on large classes.
    seed : int, default 0
        Seed of liblinear's coordinate descent (libsvm is deterministic).

    Attributes
    ----------
    classes_ : list of the classes with a fitted SVM
    estimators_ : dict class -> fitted SVC of the first direction
    best_C_, cv_scores_ : dict class -> float (first direction)
    mean_, std_ : (d,) whitening statistics
    directions_ : dict class -> unit vector (d,) in preprocessed space pointing toward failure
    all_estimators_, all_directions_ : dict class -> list with one entry per direction (the
        first is ``estimators_`` / ``directions_``); a class has fewer than ``n_directions`` when
        every error is already explained, a refit explains none, or it finds no direction (all
        weights zero)
    """

    def __init__(
        self,
        *,
        C_grid: Sequence[float] = tuple(np.logspace(-6, 0, 7)),
        C: float | None = None,
        cv: int = 2,
        n_directions: int = 1,
        balanced: bool = True,
        whiten: bool = True,
        solver: str = "libsvm",
        seed: int = 0,
    ) -> None:
        self.C_grid = C_grid
        self.C = C
        self.cv = cv
        self.n_directions = n_directions
        self.balanced = balanced
        self.whiten = whiten
        self.solver = solver
        self.seed = seed

    def _svm(self, C: float) -> Any:
        weight = "balanced" if self.balanced else None
        if self.solver == "liblinear":
            return LinearSVC(
                C=C, loss="hinge", class_weight=weight, random_state=self.seed, max_iter=10_000
            )
        return SVC(kernel="linear", C=C, class_weight=weight)

    def _fit_one(self, cls, x, target, grid, cv, minority):
        """One SVM with the C search (cross-validated balanced accuracy); returns (svm, (score, C))."""
        scorer = make_scorer(balanced_accuracy_score)
        best = (-np.inf, grid[0])
        if len(grid) > 1 and minority >= cv:
            for c_value in grid:
                score = float(np.mean(cross_val_score(self._svm(c_value), x, target, cv=cv, scoring=scorer)))
                if score > best[0]:
                    best = (score, c_value)
        elif len(grid) > 1:
            logger.warning(
                "FailureDirections: class %r has %d minority images (< cv=%d): C=%g without search",
                cls,
                minority,
                cv,
                grid[-1],
            )
            best = (float("nan"), grid[-1])
        return self._svm(best[1]).fit(x, target), best

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        X = l2_normalize(X, "embeddings")  # CLIP features, images and texts alike
        if self.whiten:
            X = (X - self.mean_) / self.std_
        return l2_normalize(X, "embeddings")

    def fit(
        self, embeddings: np.ndarray, labels: Sequence | np.ndarray, correct: Sequence | np.ndarray
    ) -> FailureDirections:
        """Fit one SVM per class.

        Parameters
        ----------
        embeddings : array (n, d); labels : (n,) labels; correct : (n,) bool.
        Classes whose images are all correct or all wrong get no SVM (logged).
        """
        X = check_embeddings(embeddings, "embeddings")
        n = X.shape[0]
        labels = np.asarray(labels, dtype=object)
        if labels.shape != (n,):
            raise ValueError(f"labels: expected {n} labels, got shape {labels.shape}")
        ok = bool_vector(correct, "correct", n)
        if self.C is not None:
            check_real(self.C, "C", 0.0)
            if self.C == 0:
                raise ValueError("C: must be > 0")
            grid = [float(self.C)]
        else:
            grid = [check_real(c, "C_grid", 0.0) for c in self.C_grid]
            if not grid or min(grid) <= 0:
                raise ValueError("C_grid: expected positive values")
        cv = check_int(self.cv, "cv", 2)
        if self.solver not in ("libsvm", "liblinear"):
            raise ValueError(f"solver: expected 'libsvm' or 'liblinear', got {self.solver!r}")
        unit = l2_normalize(X, "embeddings")
        self.mean_ = unit.mean(axis=0)
        std = unit.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        Z = self._preprocess(X)
        default = 1
        if isinstance(self.n_directions, (Mapping, pd.Series)):
            if not len(self.n_directions):
                raise ValueError("n_directions: the mapping class -> int is empty")
            wanted = {c: check_int(v, f"n_directions[{c!r}]", 1) for c, v in dict(self.n_directions).items()}
        else:
            wanted = {}
            default = check_int(self.n_directions, "n_directions", 1)
        self.estimators_, self.best_C_, self.cv_scores_, self.directions_ = {}, {}, {}, {}
        self.all_estimators_, self.all_directions_ = {}, {}
        for cls in sorted_classes(labels):
            rows = labels == cls
            x, target = Z[rows], ok[rows].astype(int)
            minority = int(min(target.sum(), len(target) - target.sum()))
            if minority == 0:
                logger.warning(
                    "FailureDirections: class %r is all correct or all wrong, skipped", cls
                )
                continue
            fits, units = [], []
            use = np.ones(len(target), bool)  # the images the next direction is fitted on
            for j in range(wanted.get(cls, default)):
                errors = int((target[use] == 0).sum())
                if j and errors == 0:
                    break  # every error is explained by an earlier direction
                clf, best = self._fit_one(cls, x[use], target[use], grid, cv, min(errors, minority))
                w = clf.coef_.ravel()
                norm = float(np.linalg.norm(w))
                if norm <= 1e-12:
                    break
                # the direction explains the errors among the `errors` images it ranks most
                # failure-like (a rank, not the sign: at small C the intercept decides the sign)
                pool = np.flatnonzero(use)
                flagged = pool[np.argsort(clf.decision_function(x[pool]), kind="stable")[:errors]]
                explained = flagged[target[flagged] == 0]
                if j and not len(explained):
                    break  # a refit that explains nothing new is not kept
                if j == 0:
                    self.best_C_[cls], self.cv_scores_[cls] = best[1], best[0]
                fits.append(clf)
                units.append(-w / norm)
                use = use.copy()
                use[explained] = False
            if not fits:
                logger.warning("FailureDirections: class %r has no direction (zero weights)", cls)
                continue
            self.estimators_[cls], self.directions_[cls] = fits[0], units[0]
            self.all_estimators_[cls], self.all_directions_[cls] = fits, units
        self.classes_ = list(self.estimators_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            raise ValueError("FailureDirections: call fit first")

    def _direction(self, cls: Any, direction: int) -> int:
        n = len(self.all_directions_[cls])
        if not isinstance(direction, Integral) or isinstance(direction, bool) or not 0 <= direction < n:
            raise ValueError(f"direction: class {cls!r} has directions 0..{n - 1}, got {direction!r}")
        return int(direction)

    def decision_function(
        self, embeddings: np.ndarray, labels: Sequence, *, direction: int = 0
    ) -> np.ndarray:
        """SVM decision value of every image under its own class's SVM, shape (n,).

        Positive = looks like the correctly classified images; NaN for classes without SVM (or
        without that many directions). ``direction`` picks the j-th direction (0 = the first).
        """
        self._check_fitted()
        X = check_embeddings(embeddings, "embeddings", n=None)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError("embeddings: dimension differs from fit")
        labels = np.asarray(labels, dtype=object)
        if labels.shape != (X.shape[0],):
            raise ValueError(f"labels: expected {X.shape[0]} labels, got shape {labels.shape}")
        if not isinstance(direction, Integral) or isinstance(direction, bool) or direction < 0:
            raise ValueError(f"direction: expected a non-negative integer, got {direction!r}")
        Z = self._preprocess(X)
        out = np.full(X.shape[0], np.nan)
        for cls, fits in self.all_estimators_.items():
            rows = labels == cls
            if rows.any() and direction < len(fits):
                out[rows] = fits[direction].decision_function(Z[rows])
        return out

    def rank_captions(
        self, cls: Any, caption_embeddings: np.ndarray, captions: Sequence[str], *, direction: int = 0
    ) -> pd.DataFrame:
        """Captions ranked by the class's SVM: text embeddings go through the same
        preprocessing and the most negative decision value (most "incorrect") comes first.

        Returns
        -------
        DataFrame ``caption, score`` with score = -decision value, sorted decreasing.
        """
        self._check_fitted()
        if cls not in self.estimators_:
            raise ValueError(f"cls: no SVM was fit for class {cls!r}")
        direction = self._direction(cls, direction)
        captions, T = checked_phrases(captions, caption_embeddings, self.mean_.shape[0])
        T = self._preprocess(T)
        scores = -self.all_estimators_[cls][direction].decision_function(T)
        out = pd.DataFrame({"caption": captions, "score": scores})
        return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def failure_direction_slices(
    embeddings: np.ndarray,
    ids: Sequence | pd.Index,
    labels: pd.Series | Sequence,
    correct: pd.Series | Sequence,
    *,
    captions: Sequence[str],
    caption_embeddings: np.ndarray,
    top_k: int | Mapping[Any, int] | pd.Series = 50,
    n_directions: int | Mapping[Any, int] | pd.Series = 1,
    n_candidates: int = 5,
    **options: Any,
) -> pd.DataFrame:
    """Fit :class:`FailureDirections` and write each class's hardest subpopulations as slices.

    The slice of a direction is the class's ``top_k`` images most aligned with it (lowest SVM
    decision value), leaving out the images of the class's earlier slices; its description is
    the top caption of :meth:`FailureDirections.rank_captions` for that direction. The published
    method finds one direction per class (``n_directions=1``); more are successive SVMs fitted
    on the errors the earlier ones do not explain (see :class:`FailureDirections`), so the
    method can be asked for as many slices per class as PRIME found
    (``n_directions=prime_budget(modes)["n_modes"]``).

    Parameters
    ----------
    embeddings, ids, labels, correct : as for :func:`domino_slices`
    captions, caption_embeddings : candidate captions and their text embeddings (m, d)
    top_k : int, or mapping class -> int (e.g. ``prime_budget(modes)["median_size"]``; classes
        not in the mapping are skipped)
    n_directions : int, or mapping class -> int (classes not in the mapping are skipped)
        Slices (directions) per class.
    n_candidates : int
        Top captions kept in the ``candidates`` column.
    **options : the other options of :class:`FailureDirections`

    Returns
    -------
    DataFrame with the columns of :func:`domino_slices` (``slice`` = the direction's rank);
    ``score`` is the mean failure score (-decision value) of the members.
    """
    emb, index, label_values, ok = aligned(embeddings, ids, labels, correct)
    captions, caption_emb = checked_phrases(captions, caption_embeddings, emb.shape[1])
    classes = sorted_classes(label_values)
    budget = per_class(top_k, "top_k", classes, 1)
    directions = per_class(n_directions, "n_directions", classes, 1)
    n_candidates = check_int(n_candidates, "n_candidates", 1)
    keep = np.isin(label_values, [c for c in classes if c in budget and c in directions])
    if not keep.any():
        logger.warning("failure_direction_slices: no class of the data is in both top_k and n_directions")
        return pd.DataFrame(columns=list(SLICE_COLUMNS))
    model = FailureDirections(n_directions=directions, **options).fit(
        emb[keep], label_values[keep], ok[keep]
    )
    id_values = index.to_numpy(dtype=object)
    records = []
    for cls in model.classes_:
        rows = np.flatnonzero(label_values == cls)
        taken = np.zeros(len(rows), bool)
        for j in range(len(model.all_directions_[cls])):
            decision = model.decision_function(emb[rows], label_values[rows], direction=j)
            order = np.argsort(np.where(taken, np.inf, decision), kind="stable")[: budget[cls]]
            order = order[~taken[order]]
            if not len(order):
                break  # earlier slices took the whole class
            taken[order] = True
            ranked = model.rank_captions(cls, caption_emb, captions, direction=j).rename(
                columns={"caption": "phrase"}
            )
            records.append(
                slice_row(
                    cls,
                    j,
                    id_values[rows[order]],
                    ok[rows[order]],
                    float(ok[rows].mean()),
                    float(-decision[order].mean()),
                    ranked,
                    n_candidates,
                )
            )
    return pd.DataFrame.from_records(records, columns=list(SLICE_COLUMNS))
