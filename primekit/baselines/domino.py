"""DOMINO (Eyuboglu et al., ICLR 2022), re-implemented on numpy and scikit-learn.

An error-aware Gaussian mixture over PCA'd CLIP image embeddings that also models the class label
and the prediction of every image (:class:`DominoSlicer`, after domino's
``DominoMixture``/``MixtureSlicer``: diagonal covariances, EM, "confusion" initialisation, slices
ranked by how far predictions stray from labels); slices are described by the phrase whose CLIP
text embedding best matches the slice's mean shift (:func:`domino_describe`);
:func:`domino_slices` runs it per class into a slice table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from .._validation import check_embeddings, check_int, check_real, l2_normalize, sorted_classes
from ._common import (
    SLICE_COLUMNS,
    aligned,
    bool_vector,
    checked_phrases,
    per_class,
    slice_row,
)

__all__ = ["DominoSlicer", "domino_describe", "domino_slices"]

logger = logging.getLogger(__name__)

_EPS = np.finfo(np.float64).eps


def _one_hot_targets(targets: Any, n: int, argument: str) -> np.ndarray:
    arr = np.asarray(targets)
    if arr.shape[:1] != (n,):
        raise ValueError(f"{argument}: expected {n} rows, got shape {arr.shape}")
    if arr.ndim == 1:
        if np.issubdtype(arr.dtype, np.integer):
            if arr.min() < 0:
                raise ValueError(f"{argument}: integer labels must be >= 0")
            out = np.zeros((n, int(arr.max()) + 1))
            out[np.arange(n), arr] = 1.0
            if out.shape[1] == 1:  # a single class: still binary (all "class 0")
                out = np.hstack([out, np.zeros((n, 1))])
            return out
        arr = arr.astype(np.float64)
        return np.stack([1.0 - arr, arr], axis=1)  # binary targets / scores for class 1
    if arr.ndim == 2:
        return arr.astype(np.float64)
    raise ValueError(f"{argument}: expected shape (n,) or (n, n_classes), got {arr.shape}")


def _probabilities(values: Any, n: int, argument: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.stack([1.0 - arr, arr], axis=1)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(
            f"{argument}: expected shape (n,) or (n, n_classes) with n={n}, got {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"{argument}: values must be probabilities in [0, 1]")
    return arr


def _responsibilities(log_resp: np.ndarray) -> np.ndarray:
    # flush negligible posteriors to zero: subnormal floats make the M-step's products ~100x slower
    resp = np.exp(np.maximum(log_resp, -700.0))
    resp[resp < 1e-150] = 0.0
    return resp


class DominoSlicer:
    """DOMINO's error-aware mixture model (Eyuboglu et al., 2022), on numpy.

    Generative model: slice S ~ Cat(weights); embedding Z | S ~ N(mu_S, diag(sigma_S^2));
    label Y | S ~ Cat(p_S); prediction Y_hat | S ~ Cat(p_hat_S). EM maximises
    sum_i log sum_s P(s) P(z_i|s) P(y_i|s)^gamma P(y_hat_i|s)^gamma_hat, with soft predictions
    plugged into the categorical likelihood (sum_j y_hat_i(j) p_hat_s(j)). Embeddings are
    reduced by PCA first. The ``n_slices`` returned are the components with the largest
    |max_j (p_hat_s(j) - p_s(j))|, i.e. where predictions stray most from labels (for one class,
    the error rate).

    Parameters
    ----------
    n_slices : int, default 5
        Slices returned (the top-ranked mixture components).
    n_mixture_components : int, default 25
        Components of the mixture (k-bar); at least ``n_slices`` and, with the "confusion"
        initialisation, at least n_classes**2.
    n_pca_components : int or None, default 128
        PCA dimension (clipped to the data's rank); None: no PCA.
    y_log_likelihood_weight, y_hat_log_likelihood_weight : float, default 1
        gamma and gamma_hat.
    max_iter : int, default 100
    tol : float, default 1e-6
        EM stops when the mean log-likelihood changes by less. domino inherits 1e-3 from
        scikit-learn; with the "confusion" initialisation the components of one confusion cell
        start almost identical, and at 1e-3 EM stops after two iterations, before they separate,
        leaving copies of one slice that split its posterior (so none passes a 0.5 threshold).
    reg_covar : float, default 1e-6
        Added to the diagonal covariances.
    init_params : {"confusion", "random"}, default "confusion"
        "confusion": every component starts on one cell (y, y_hat) of the confusion matrix, in
        round robin, with uniform noise of scale ``confusion_noise``.
    confusion_noise : float, default 1e-3
    seed : int or None
        Seed of the initialisation noise and of the PCA solver.

    Attributes
    ----------
    pca_ : sklearn PCA or None
    weights_ : (n_mixture_components,)
    means_, covariances_ : (n_mixture_components, n_features) in PCA space
    y_probs_, y_hat_probs_ : (n_mixture_components, n_classes)
    component_scores_ : (n_mixture_components,) the ranking score of every component
    slice_indices_ : (n_slices,) components returned as slices, best first
    converged_, n_iter_, lower_bound_
    """

    def __init__(
        self,
        n_slices: int = 5,
        *,
        n_mixture_components: int = 25,
        n_pca_components: int | None = 128,
        y_log_likelihood_weight: float = 1.0,
        y_hat_log_likelihood_weight: float = 1.0,
        max_iter: int = 100,
        tol: float = 1e-6,
        reg_covar: float = 1e-6,
        init_params: str = "confusion",
        confusion_noise: float = 1e-3,
        seed: int | None = 0,
    ) -> None:
        self.n_slices = n_slices
        self.n_mixture_components = n_mixture_components
        self.n_pca_components = n_pca_components
        self.y_log_likelihood_weight = y_log_likelihood_weight
        self.y_hat_log_likelihood_weight = y_hat_log_likelihood_weight
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.confusion_noise = confusion_noise
        self.seed = seed

    # -- parameters -----------------------------------------------------------------------

    def _validate_params(self) -> None:
        check_int(self.n_slices, "n_slices", 1)
        check_int(self.n_mixture_components, "n_mixture_components", self.n_slices)
        if self.n_pca_components is not None:
            check_int(self.n_pca_components, "n_pca_components", 1)
        check_real(self.y_log_likelihood_weight, "y_log_likelihood_weight", 0.0)
        check_real(self.y_hat_log_likelihood_weight, "y_hat_log_likelihood_weight", 0.0)
        check_int(self.max_iter, "max_iter", 1)
        check_real(self.tol, "tol", 0.0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_real(self.confusion_noise, "confusion_noise", 0.0)
        if self.init_params not in ("confusion", "random"):
            raise ValueError(
                f"init_params: expected 'confusion' or 'random', got {self.init_params!r}"
            )

    # -- EM pieces ------------------------------------------------------------------------

    def _m_step(self, X: np.ndarray, y: np.ndarray, y_hat: np.ndarray, resp: np.ndarray) -> None:
        nk = resp.sum(axis=0) + 10 * _EPS
        means = resp.T @ X / nk[:, None]
        avg_x2 = resp.T @ (X * X) / nk[:, None]
        covariances = avg_x2 - means**2 + self.reg_covar
        self.weights_ = nk / X.shape[0]
        self.means_ = means
        self.covariances_ = np.maximum(covariances, self.reg_covar if self.reg_covar > 0 else _EPS)
        self.y_probs_ = resp.T @ y / nk[:, None]
        self.y_hat_probs_ = resp.T @ y_hat / nk[:, None]

    def _weighted_log_prob(
        self, X: np.ndarray, y: np.ndarray | None, y_hat: np.ndarray | None
    ) -> np.ndarray:
        precisions = 1.0 / self.covariances_
        log_det = np.log(precisions).sum(axis=1)
        quad = (
            (X * X) @ precisions.T
            - 2.0 * X @ (self.means_ * precisions).T
            + (self.means_**2 * precisions).sum(axis=1)
        )
        log_prob = -0.5 * (X.shape[1] * np.log(2 * np.pi) + quad) + 0.5 * log_det
        log_prob += np.log(self.weights_)
        if y is not None:
            log_prob += self.y_log_likelihood_weight * np.log(y @ self.y_probs_.T + _EPS)
        if y_hat is not None:
            log_prob += self.y_hat_log_likelihood_weight * np.log(
                y_hat @ self.y_hat_probs_.T + _EPS
            )
        return log_prob

    @staticmethod
    def _normalize_log(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        norm = logsumexp(log_prob, axis=1)
        return norm, log_prob - norm[:, None]

    def _initial_resp(
        self, y: np.ndarray, y_hat: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        n = y.shape[0]
        k = self.n_mixture_components
        if self.init_params == "random":
            resp = rng.random((n, k))
            return resp / resp.sum(axis=1, keepdims=True)
        n_classes = y.shape[1]
        if k < n_classes**2:
            raise ValueError(
                f"n_mixture_components: the 'confusion' initialisation needs at least "
                f"n_classes**2 = {n_classes**2} components, got {k}"
            )
        cells = (y[:, :, None] * y_hat[:, None, :]).reshape(n, -1)
        resp = np.tile(cells, (1, -(-k // cells.shape[1])))[:, :k]
        resp = resp / np.maximum(resp.sum(axis=1, keepdims=True), _EPS)
        resp = resp + rng.random((n, k)) * self.confusion_noise
        return resp / resp.sum(axis=1, keepdims=True)

    def _em(
        self, Z: np.ndarray, y: np.ndarray, y_hat: np.ndarray, rng: np.random.Generator
    ) -> None:
        self._m_step(Z, y, y_hat, self._initial_resp(y, y_hat, rng))
        lower_bound = -np.inf
        self.converged_ = False
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            self.n_iter_ = n_iter
            norm, log_resp = self._normalize_log(self._weighted_log_prob(Z, y, y_hat))
            self._m_step(Z, y, y_hat, _responsibilities(log_resp))
            lower_bound = float(norm.mean())
            if abs(lower_bound - previous) < self.tol:
                self.converged_ = True
                break
        self.lower_bound_ = lower_bound

    def _transform(self, embeddings: np.ndarray) -> np.ndarray:
        return self.pca_.transform(embeddings) if self.pca_ is not None else embeddings

    # -- public ---------------------------------------------------------------------------

    def fit(self, embeddings: np.ndarray, targets: Any, pred_probs: Any) -> DominoSlicer:
        """Fit the mixture.

        Parameters
        ----------
        embeddings : array, shape (n, d)
        targets : int labels (n,) in 0..C-1, binary 0/1 floats (n,), or one-hot (n, C)
        pred_probs : predicted probabilities (n, C), or (n,) for class 1 of a binary problem;
            hard one-hot predictions work too.
        """
        self._validate_params()
        X = check_embeddings(embeddings, "embeddings")
        n = X.shape[0]
        if n < 2:
            raise ValueError("embeddings: need at least 2 samples")
        y = _one_hot_targets(targets, n, "targets")
        y_hat = _probabilities(pred_probs, n, "pred_probs")
        if y.shape[1] != y_hat.shape[1]:
            raise ValueError(
                f"pred_probs: {y_hat.shape[1]} columns, but targets have {y.shape[1]} classes"
            )
        if self.n_pca_components is not None:
            n_comp = min(self.n_pca_components, n, X.shape[1])
            if n_comp < self.n_pca_components:
                logger.info("DominoSlicer: PCA reduced to %d components (data rank)", n_comp)
            self.pca_ = PCA(n_components=n_comp, random_state=self.seed).fit(X)
        else:
            self.pca_ = None
        Z = self._transform(X)
        rng = np.random.default_rng(self.seed)
        # EM multiplies thin matrices (n x k); BLAS threads only contend (40x slower on a busy
        # 2-core machine), so run it single-threaded
        with threadpool_limits(limits=1, user_api="blas"):
            self._em(Z, y, y_hat, rng)
        if not self.converged_:
            logger.info("DominoSlicer: EM did not converge in %d iterations", self.max_iter)
        self.component_scores_ = np.abs((self.y_hat_probs_ - self.y_probs_).max(axis=1))
        self.slice_indices_ = np.argsort(-self.component_scores_, kind="stable")[: self.n_slices]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "slice_indices_"):
            raise ValueError("DominoSlicer: call fit before predict_proba/predict/describe")

    def predict_proba(
        self, embeddings: np.ndarray, targets: Any = None, pred_probs: Any = None
    ) -> np.ndarray:
        """Slice membership probabilities, shape (n, n_slices), best-ranked slice first.

        Posterior of the mixture's components restricted to the returned slices (rows need not
        sum to 1). Without ``targets``/``pred_probs`` only the embedding is used, as the
        published ``DominoSlicer.predict_proba`` does; with them, the posterior of the full
        model (embedding, label and prediction) that EM fitted.
        """
        self._check_fitted()
        X = check_embeddings(embeddings, "embeddings")
        if X.shape[1] != (
            self.pca_.n_features_in_ if self.pca_ is not None else self.means_.shape[1]
        ):
            raise ValueError("embeddings: dimension differs from the data the slicer was fit on")
        n = X.shape[0]
        y = None if targets is None else _one_hot_targets(targets, n, "targets")
        y_hat = None if pred_probs is None else _probabilities(pred_probs, n, "pred_probs")
        if y is not None and y.shape[1] != self.y_probs_.shape[1]:
            raise ValueError("targets: number of classes differs from fit")
        if y_hat is not None and y_hat.shape[1] != self.y_hat_probs_.shape[1]:
            raise ValueError("pred_probs: number of classes differs from fit")
        _, log_resp = self._normalize_log(self._weighted_log_prob(self._transform(X), y, y_hat))
        return np.exp(log_resp)[:, self.slice_indices_]

    def predict(
        self, embeddings: np.ndarray, targets: Any = None, pred_probs: Any = None
    ) -> np.ndarray:
        """Hard slice membership, one-hot of shape (n, n_slices) (argmax of predict_proba)."""
        probs = self.predict_proba(embeddings, targets, pred_probs)
        out = np.zeros(probs.shape, dtype=np.int64)
        out[np.arange(len(probs)), probs.argmax(axis=1)] = 1
        return out

    def describe(
        self,
        embeddings: np.ndarray,
        reference: np.ndarray,
        phrase_embeddings: np.ndarray,
        phrases: Sequence[str],
        *,
        slice_index: int = 0,
        slice_threshold: float = 0.5,
        targets: Any = None,
        pred_probs: Any = None,
    ) -> pd.DataFrame:
        """Rank candidate phrases for one slice (domino's ``describe``).

        Parameters
        ----------
        embeddings : array (n, d), the raw (not PCA'd) image embeddings
        reference : boolean mask (n,): the images the slice is contrasted with (domino: the
            images of the slice's majority class)
        phrase_embeddings : array (m, d); phrases : m strings
        slice_index : which slice (0 = best ranked)
        slice_threshold : members are images whose slice probability exceeds this
        targets, pred_probs : passed to :meth:`predict_proba`

        Returns
        -------
        DataFrame ``phrase, score`` sorted by decreasing score (see :func:`domino_describe`).
        """
        check_int(slice_index, "slice_index", 0)
        if slice_index >= len(self.slice_indices_):
            raise ValueError(
                f"slice_index: only {len(self.slice_indices_)} slices, got {slice_index}"
            )
        probs = self.predict_proba(embeddings, targets, pred_probs)[:, slice_index]
        return domino_describe(
            embeddings, probs > slice_threshold, reference, phrase_embeddings, phrases
        )


def domino_describe(
    embeddings: np.ndarray,
    members: np.ndarray,
    reference: np.ndarray,
    phrase_embeddings: np.ndarray,
    phrases: Sequence[str],
) -> pd.DataFrame:
    """Score candidate phrases by CLIP similarity to a slice's mean shift (domino's describe).

    score(phrase) = <f_text(phrase), mean(f(x) for x in slice) - mean(f(x) for x in reference)>,
    with image and phrase embeddings L2-normalized first.

    Parameters
    ----------
    embeddings : array (n, d); members, reference : boolean masks (n,)
    phrase_embeddings : array (m, d); phrases : m strings

    Returns
    -------
    DataFrame ``phrase, score`` sorted by decreasing score (empty slice or reference: NaN scores).
    """
    X = l2_normalize(check_embeddings(embeddings, "embeddings"), "embeddings")
    n = X.shape[0]
    members = bool_vector(members, "members", n)
    reference = bool_vector(reference, "reference", n)
    phrases, T = checked_phrases(phrases, phrase_embeddings, X.shape[1])
    T = l2_normalize(T, "phrase_embeddings")
    if members.any() and reference.any():
        shift = X[members].mean(axis=0) - X[reference].mean(axis=0)
        scores = T @ shift
    else:
        scores = np.full(len(phrases), np.nan)
    out = pd.DataFrame({"phrase": phrases, "score": scores})
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def domino_slices(
    embeddings: np.ndarray,
    ids: Sequence | pd.Index,
    labels: pd.Series | Sequence,
    correct: pd.Series | Sequence,
    *,
    phrases: Sequence[str],
    phrase_embeddings: np.ndarray,
    n_slices: int | Mapping[Any, int] | pd.Series = 5,
    confidence: pd.Series | Sequence | None = None,
    slice_threshold: float = 0.5,
    use_labels_for_membership: bool = True,
    n_candidates: int = 5,
    **slicer_options: Any,
) -> pd.DataFrame:
    """Run DOMINO per class and describe its slices, in a table shaped like PRIME's modes.

    For each class c, a :class:`DominoSlicer` is fit on the images of c with binary targets
    ("is c", always 1) and, as predictions, the probability of predicting c (``confidence``,
    the probability given to the true class, when given; else 1 for correct, 0 for wrong), so
    components are ranked by error rate. Members of a slice are the class's images whose slice
    probability exceeds ``slice_threshold``; its description is the best phrase by
    :func:`domino_describe` against the whole class.

    Parameters
    ----------
    embeddings : array (n, d); ids : n unique sample ids aligned with its rows
    labels, correct : Series indexed by id, or arrays aligned with ``ids``
    phrases, phrase_embeddings : the candidate vocabulary (m strings, array (m, d))
    n_slices : int, or mapping class -> int (e.g. ``prime_budget(modes)["n_modes"]``; classes
        not in the mapping are skipped)
    confidence : optional probability of the true class, aligned like ``correct``
    slice_threshold : float, default 0.5
    use_labels_for_membership : bool, default True
        True: membership from the full posterior P(slice | embedding, label, prediction) that
        EM fits (the model of the DOMINO paper). False: from the embedding alone, as the
        published ``predict_proba`` computes it; then the error-aware components, which share
        their region of embedding space with components of correct images, rarely pass
        ``slice_threshold`` and slices come out nearly empty.
    n_candidates : int
        Top phrases kept in the ``candidates`` column.
    **slicer_options : options of :class:`DominoSlicer` (n_mixture_components, seed, ...)

    Returns
    -------
    DataFrame with columns ``class, slice (rank in class, 0 = worst), members (tuple of ids),
    size, accuracy, class_accuracy, drop, score (model error rate of the component),
    description, candidates``.
    """
    emb, index, label_values, ok = aligned(embeddings, ids, labels, correct)
    phrases, phrase_emb = checked_phrases(phrases, phrase_embeddings, emb.shape[1])
    classes = sorted_classes(label_values)
    budget = per_class(n_slices, "n_slices", classes, 1)
    slice_threshold = check_real(slice_threshold, "slice_threshold", 0.0, 1.0)
    n_candidates = check_int(n_candidates, "n_candidates", 1)
    if confidence is not None:
        if isinstance(confidence, pd.Series):
            confidence = confidence.reindex(index).to_numpy()
        conf = _probabilities(confidence, len(index), "confidence")[:, 1]
    else:
        conf = ok.astype(np.float64)
    id_values = index.to_numpy(dtype=object)
    records = []
    for cls in classes:
        if cls not in budget:
            continue
        rows = np.flatnonzero(label_values == cls)
        if len(rows) < 2:
            logger.warning("domino_slices: class %r has fewer than 2 images, skipped", cls)
            continue
        slicer, probs = _fit_class(
            emb[rows], conf[rows], budget[cls], use_labels_for_membership, slicer_options
        )
        class_accuracy = float(ok[rows].mean())
        whole_class = np.ones(len(rows), bool)
        for rank in range(probs.shape[1]):
            inside = probs[:, rank] > slice_threshold
            ranked = domino_describe(emb[rows], inside, whole_class, phrase_emb, phrases)
            records.append(
                slice_row(
                    cls,
                    rank,
                    id_values[rows[inside]],
                    ok[rows[inside]],
                    class_accuracy,
                    slicer.component_scores_[slicer.slice_indices_[rank]],
                    ranked,
                    n_candidates,
                )
            )
    return pd.DataFrame.from_records(records, columns=list(SLICE_COLUMNS))


def _fit_class(
    emb: np.ndarray,
    preds: np.ndarray,
    k: int,
    use_labels_for_membership: bool,
    slicer_options: Mapping[str, Any],
) -> tuple[DominoSlicer, np.ndarray]:
    """One class's slicer (targets "is c", always 1) and its members' slice probabilities."""
    opts = {"n_mixture_components": max(25, k), **slicer_options}
    opts["n_mixture_components"] = max(opts["n_mixture_components"], k, 4)
    targets = np.ones(len(emb))
    slicer = DominoSlicer(n_slices=k, **opts).fit(emb, targets, preds)
    if use_labels_for_membership:
        return slicer, slicer.predict_proba(emb, targets, preds)
    return slicer, slicer.predict_proba(emb)
