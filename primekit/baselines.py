"""The two baselines of the paper, re-implemented on numpy and scikit-learn.

- **DOMINO** (Eyuboglu et al., ICLR 2022): an error-aware Gaussian mixture over PCA'd CLIP image
  embeddings that also models the class label and the prediction of every image
  (:class:`DominoSlicer`, after domino's ``DominoMixture``/``MixtureSlicer``: diagonal
  covariances, EM, "confusion" initialisation, slices ranked by how far predictions stray from
  labels); slices are described by the phrase whose CLIP text embedding best matches the slice's
  mean shift (:func:`domino_describe`).
- **Distilling failure directions** (Jain et al., ICLR 2023): a linear SVM per class on CLIP
  latents that separates correct from incorrect images, with balanced class weights and its C
  chosen by cross-validation (:class:`FailureDirections`); the hardest subpopulation is the
  images scored most strongly as "incorrect", and captions are ranked by the same SVM applied
  to their text embeddings.

The published packages do not install on current Python; these follow their methods (read from
their papers and sources) without their code. :func:`domino_slices` and
:func:`failure_direction_slices` write slice tables shaped like PRIME's mode table (``class``,
``members``, ``size``, ``accuracy``, ``class_accuracy``, ``drop``, ``description``), which
:func:`primekit.metrics.description_quality` scores alike. :func:`prime_budget` reads how many
modes (and of what size) PRIME found per class, so that the baselines can be asked for the same
(as the paper did).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

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

logger = logging.getLogger(__name__)

SLICE_COLUMNS = (
    "class",
    "slice",
    "members",
    "size",
    "accuracy",
    "class_accuracy",
    "drop",
    "score",
    "description",
    "candidates",
)
_EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------------
# validation helpers


def _check_int(value: Any, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{argument}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument}: must be >= {minimum}, got {value}")
    return int(value)


def _check_real(value: Any, argument: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument}: expected a number, got {value!r}")
    if not low <= float(value) <= high:
        raise ValueError(f"{argument}: must lie in [{low}, {high}], got {value}")
    return float(value)


def _matrix(values: Any, argument: str, *, n: int | None = None) -> np.ndarray:
    if isinstance(values, (pd.DataFrame, pd.Series)):
        values = values.to_numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{argument}: expected a numeric array, got {type(values).__name__}"
        ) from err
    if arr.ndim != 2:
        raise ValueError(f"{argument}: expected shape (n, d), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{argument}: expected {n} rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{argument}: contains NaN or infinite values")
    return arr


def _normalize_rows(arr: np.ndarray, argument: str) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{argument}: contains a zero vector, which cannot be L2-normalized")
    return arr / norms


def _bool_vector(values: Any, argument: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{argument}: expected {n} values, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{argument}: values must be boolean or 0/1")
        arr = arr.astype(bool)
    return arr


def _aligned(
    embeddings: Any, ids: Any, labels: Any, correct: Any
) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    emb = _matrix(embeddings, "embeddings")
    n = emb.shape[0]
    index = ids if isinstance(ids, pd.Index) else pd.Index(list(ids))
    if len(index) != n:
        raise ValueError(f"ids: expected {n} ids (one per row of embeddings), got {len(index)}")
    if index.has_duplicates:
        raise ValueError(f"ids: duplicate sample id {index[index.duplicated()][0]!r}")
    out = []
    for name, values in (("labels", labels), ("correct", correct)):
        if isinstance(values, pd.Series):
            missing = index.difference(values.index)
            if len(missing):
                raise ValueError(f"{name}: no value for {len(missing)} id(s), e.g. {missing[0]!r}")
            values = values.reindex(index).to_numpy()
        arr = np.asarray(values, dtype=object if name == "labels" else None)
        if arr.shape != (n,):
            raise ValueError(f"{name}: expected {n} values aligned with ids, got shape {arr.shape}")
        out.append(arr)
    return emb, index, out[0], _bool_vector(out[1], "correct", n)


def _per_class(value: Any, argument: str, classes: Sequence, minimum: int) -> dict:
    """An int for every class, or a mapping class -> int (classes it lacks are skipped)."""
    if isinstance(value, Mapping):
        return {
            c: _check_int(value[c], f"{argument}[{c!r}]", minimum) for c in classes if c in value
        }
    if isinstance(value, pd.Series):
        return _per_class(value.to_dict(), argument, classes, minimum)
    value = _check_int(value, argument, minimum)
    return dict.fromkeys(classes, value)


def _sorted_unique(values: np.ndarray) -> list:
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _phrases(phrases: Any, phrase_embeddings: Any, dim: int) -> tuple[list[str], np.ndarray]:
    if isinstance(phrases, str) or not isinstance(phrases, (Sequence, np.ndarray, pd.Series)):
        raise TypeError("phrases: expected a sequence of strings")
    phrases = [str(p) for p in phrases]
    emb = _matrix(phrase_embeddings, "phrase_embeddings", n=len(phrases))
    if emb.shape[1] != dim:
        raise ValueError(
            f"phrase_embeddings: dimension {emb.shape[1]} does not match embeddings dimension {dim}"
        )
    if not phrases:
        raise ValueError("phrases: expected at least one candidate phrase")
    return phrases, emb


def phrase_vocabulary(words: Sequence[str], *, template: str = "a photo of {}.") -> list[str]:
    """Candidate phrases for the baselines' descriptions: one per word, in a prompt template
    (domino describes slices with phrases like "a photo of a coyote."). Duplicates are dropped,
    order kept.

    Parameters
    ----------
    words : sequence of str, e.g. a tagger's vocabulary
    template : str with one ``{}``
    """
    if isinstance(words, str):
        raise TypeError("words: expected a sequence of strings, got a single string")
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"template: expected a string with exactly one '{{}}', got {template!r}")
    return list(dict.fromkeys(template.format(str(w)) for w in words))


def prime_budget(modes: pd.DataFrame) -> pd.DataFrame:
    """How many failure modes PRIME found per class, and how large they are.

    Pass ``n_slices=budget["n_modes"]`` to :func:`domino_slices` and
    ``top_k=budget["median_size"]`` to :func:`failure_direction_slices` to ask the baselines for
    as many (and as large) slices as PRIME found, as the paper did (4.3, A.7).

    Returns
    -------
    DataFrame indexed by class with ``n_modes`` and ``median_size`` (ints); classes without a
    mode are absent.
    """
    if not isinstance(modes, pd.DataFrame):
        raise TypeError(f"modes: expected a DataFrame, got {type(modes).__name__}")
    missing = [c for c in ("class", "size") if c not in modes.columns]
    if missing:
        raise ValueError(f"modes: missing column(s) {missing}")
    grouped = modes.groupby("class", sort=True)["size"]
    out = pd.DataFrame(
        {
            "n_modes": grouped.size().astype(np.int64),
            "median_size": grouped.median().round().astype(np.int64),
        }
    )
    return out


# ---------------------------------------------------------------------------------------------
# DOMINO


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
        _check_int(self.n_slices, "n_slices", 1)
        _check_int(self.n_mixture_components, "n_mixture_components", self.n_slices)
        if self.n_pca_components is not None:
            _check_int(self.n_pca_components, "n_pca_components", 1)
        _check_real(self.y_log_likelihood_weight, "y_log_likelihood_weight", 0.0)
        _check_real(self.y_hat_log_likelihood_weight, "y_hat_log_likelihood_weight", 0.0)
        _check_int(self.max_iter, "max_iter", 1)
        _check_real(self.tol, "tol", 0.0)
        _check_real(self.reg_covar, "reg_covar", 0.0)
        _check_real(self.confusion_noise, "confusion_noise", 0.0)
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
        from scipy.special import logsumexp

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
        X = _matrix(embeddings, "embeddings")
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
            from sklearn.decomposition import PCA

            n_comp = min(self.n_pca_components, n, X.shape[1])
            if n_comp < self.n_pca_components:
                logger.info("DominoSlicer: PCA reduced to %d components (data rank)", n_comp)
            self.pca_ = PCA(n_components=n_comp, random_state=self.seed).fit(X)
        else:
            self.pca_ = None
        Z = self._transform(X)
        rng = np.random.default_rng(self.seed)
        from threadpoolctl import threadpool_limits

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
        X = _matrix(embeddings, "embeddings")
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
        _check_int(slice_index, "slice_index", 0)
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
    X = _normalize_rows(_matrix(embeddings, "embeddings"), "embeddings")
    n = X.shape[0]
    members = _bool_vector(members, "members", n)
    reference = _bool_vector(reference, "reference", n)
    phrases, T = _phrases(phrases, phrase_embeddings, X.shape[1])
    T = _normalize_rows(T, "phrase_embeddings")
    if members.any() and reference.any():
        shift = X[members].mean(axis=0) - X[reference].mean(axis=0)
        scores = T @ shift
    else:
        scores = np.full(len(phrases), np.nan)
    out = pd.DataFrame({"phrase": phrases, "score": scores})
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _slice_row(
    cls: Any,
    rank: int,
    member_ids: np.ndarray,
    ok: np.ndarray,
    class_accuracy: float,
    score: float,
    ranked: pd.DataFrame,
    n_candidates: int,
) -> dict:
    n = int(len(member_ids))
    acc = float(ok.mean()) if n else float("nan")
    return {
        "class": cls,
        "slice": rank,
        "members": tuple(member_ids),
        "size": n,
        "accuracy": acc,
        "class_accuracy": class_accuracy,
        "drop": class_accuracy - acc,
        "score": float(score),
        "description": ranked["phrase"].iloc[0]
        if n and np.isfinite(ranked["score"].iloc[0])
        else "",
        "candidates": tuple(ranked["phrase"].iloc[:n_candidates]) if n else (),
    }


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
    emb, index, label_values, ok = _aligned(embeddings, ids, labels, correct)
    phrases, phrase_emb = _phrases(phrases, phrase_embeddings, emb.shape[1])
    classes = _sorted_unique(label_values)
    budget = _per_class(n_slices, "n_slices", classes, 1)
    slice_threshold = _check_real(slice_threshold, "slice_threshold", 0.0, 1.0)
    n_candidates = _check_int(n_candidates, "n_candidates", 1)
    if confidence is not None:
        if isinstance(confidence, pd.Series):
            confidence = confidence.reindex(index).to_numpy()
        conf = _probabilities(confidence, len(index), "confidence")[:, 1]
    else:
        conf = ok.astype(np.float64)
    options = dict(slicer_options)
    records = []
    for cls in classes:
        if cls not in budget:
            continue
        rows = np.flatnonzero(label_values == cls)
        if len(rows) < 2:
            logger.warning("domino_slices: class %r has fewer than 2 images, skipped", cls)
            continue
        k = budget[cls]
        opts = {"n_mixture_components": max(25, k), **options}
        opts["n_mixture_components"] = max(opts["n_mixture_components"], k, 4)
        targets = np.ones(len(rows))
        preds = conf[rows]
        slicer = DominoSlicer(n_slices=k, **opts).fit(emb[rows], targets, preds)
        if use_labels_for_membership:
            probs = slicer.predict_proba(emb[rows], targets, preds)
        else:
            probs = slicer.predict_proba(emb[rows])
        class_accuracy = float(ok[rows].mean())
        whole_class = np.ones(len(rows), bool)
        for rank in range(probs.shape[1]):
            inside = probs[:, rank] > slice_threshold
            ranked = domino_describe(emb[rows], inside, whole_class, phrase_emb, phrases)
            records.append(
                _slice_row(
                    cls,
                    rank,
                    index.to_numpy(dtype=object)[rows[inside]],
                    ok[rows[inside]],
                    class_accuracy,
                    slicer.component_scores_[slicer.slice_indices_[rank]],
                    ranked,
                    n_candidates,
                )
            )
    return pd.DataFrame.from_records(records, columns=list(SLICE_COLUMNS))


# ---------------------------------------------------------------------------------------------
# Distilling failure directions


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
        from sklearn.svm import SVC, LinearSVC

        weight = "balanced" if self.balanced else None
        if self.solver == "liblinear":
            return LinearSVC(
                C=C, loss="hinge", class_weight=weight, random_state=self.seed, max_iter=10_000
            )
        return SVC(kernel="linear", C=C, class_weight=weight)

    def _fit_one(self, cls, x, target, grid, cv, minority):
        """One SVM with the C search (cross-validated balanced accuracy); returns (svm, (score, C))."""
        from sklearn.metrics import balanced_accuracy_score, make_scorer
        from sklearn.model_selection import cross_val_score

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
        X = _normalize_rows(X, "embeddings")  # CLIP features, images and texts alike
        if self.whiten:
            X = (X - self.mean_) / self.std_
        return _normalize_rows(X, "embeddings")

    def fit(
        self, embeddings: np.ndarray, labels: Sequence | np.ndarray, correct: Sequence | np.ndarray
    ) -> FailureDirections:
        """Fit one SVM per class.

        Parameters
        ----------
        embeddings : array (n, d); labels : (n,) labels; correct : (n,) bool.
        Classes whose images are all correct or all wrong get no SVM (logged).
        """
        X = _matrix(embeddings, "embeddings")
        n = X.shape[0]
        labels = np.asarray(labels, dtype=object)
        if labels.shape != (n,):
            raise ValueError(f"labels: expected {n} labels, got shape {labels.shape}")
        ok = _bool_vector(correct, "correct", n)
        if self.C is not None:
            _check_real(self.C, "C", 0.0)
            if self.C == 0:
                raise ValueError("C: must be > 0")
            grid = [float(self.C)]
        else:
            grid = [_check_real(c, "C_grid", 0.0) for c in self.C_grid]
            if not grid or min(grid) <= 0:
                raise ValueError("C_grid: expected positive values")
        cv = _check_int(self.cv, "cv", 2)
        if self.solver not in ("libsvm", "liblinear"):
            raise ValueError(f"solver: expected 'libsvm' or 'liblinear', got {self.solver!r}")
        unit = _normalize_rows(X, "embeddings")
        self.mean_ = unit.mean(axis=0)
        std = unit.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        Z = self._preprocess(X)
        default = 1
        if isinstance(self.n_directions, (Mapping, pd.Series)):
            if not len(self.n_directions):
                raise ValueError("n_directions: the mapping class -> int is empty")
            wanted = {c: _check_int(v, f"n_directions[{c!r}]", 1) for c, v in dict(self.n_directions).items()}
        else:
            wanted = {}
            default = _check_int(self.n_directions, "n_directions", 1)
        self.estimators_, self.best_C_, self.cv_scores_, self.directions_ = {}, {}, {}, {}
        self.all_estimators_, self.all_directions_ = {}, {}
        for cls in _sorted_unique(labels):
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
        X = _matrix(embeddings, "embeddings", n=None)
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
        captions, T = _phrases(captions, caption_embeddings, self.mean_.shape[0])
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
    emb, index, label_values, ok = _aligned(embeddings, ids, labels, correct)
    captions, caption_emb = _phrases(captions, caption_embeddings, emb.shape[1])
    classes = _sorted_unique(label_values)
    budget = _per_class(top_k, "top_k", classes, 1)
    directions = _per_class(n_directions, "n_directions", classes, 1)
    n_candidates = _check_int(n_candidates, "n_candidates", 1)
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
                _slice_row(
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
