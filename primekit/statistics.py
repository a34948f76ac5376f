"""How sure is a failure mode? Intervals, p-values, q-values and a shrunk drop, from counts.

A failure mode is a claim about new images of its class (DESIGN.md, "Trust"): *the accuracy on
images carrying every tag of S is at least ``min_drop`` below the class's, and removing any tag
of S raises it by at least b_|S|*, the paper's definition applied to the classifier rather than to
one sample. This module tests that claim for every combination the search evaluated (the frequent
lattice), from its counts alone:

- ``accuracy_low, accuracy_high``: Wilson interval of A_S (statsmodels ``proportion_confint``).
- ``drop_low, drop_high``: interval of the drop ``A_c - A_S``. The class contains S, so the drop is
  ``w (A_R - A_S)`` with R the rest of the class (disjoint from S) and ``w = |R| / |D_c|``: a
  two-sample interval of ``A_R - A_S`` (Agresti-Caffo) scaled by ``w`` counts the class's own noise.
- ``p_drop``: one-sided test of H0 "true drop < min_drop" (the mode's own criterion, its
  *severity*), the Agresti-Caffo test of ``A_R - A_S <= min_drop / w``: its rejections are exactly
  the margins the one-sided interval excludes.
- ``p_necessity``: is every tag needed? S is compared with the images that carry ``S \\ t`` but not
  t (disjoint from S), since ``A_{S\\t} - A_S = w_t (A_P - A_S)`` with P those images and ``w_t =
  |P| / |I_{S\\t}|``; H0 for tag t: "its margin is below b_|S|", the test of ``A_P - A_S <= b /
  w_t``; the largest p over t (NaN for one tag). ``necessity_low``: the lower confidence bound of
  the smallest margin.
- ``p_value``: ``max(p_drop, p_necessity)``. S is a mode only if every part of the claim holds, so
  the null is a union and the intersection-union test rejects it at level alpha when every part does.
- ``q_value``: the false discovery rate of the filter, over **every** combination of the lattice of
  **every** class, pooled (the reader acts on the whole list), by *conditionalized*
  Benjamini-Hochberg (below). Among the modes with ``q <= 0.1``, at most 10% are expected to be
  false, whichever classes they belong to.
- ``expected_drop``: the drop to expect on new data. The observed drop of a selected group is
  biased upward (winner's curse); each group's accuracy is shrunk toward what its tags predict
  without interaction (the class accuracy for one tag) by an empirical-Bayes two-group
  beta-binomial prior fitted per class and per number of tags (:func:`shrunk_accuracy`): a group
  its tags do not explain on many images keeps its own accuracy, a borderline one is pulled back.

Why these nulls. Each part of the claim is tested against its own criterion, the drop against a
and each necessity margin against b_k: the paper's b_k is what makes a tag "needed", and a mode
whose tag adds 0.02 is a false mode however sure that 0.02 is. A null of margin 0 ("the tag
matters at all") was tried and rejected: on the toy world of seed 1 it keeps ``bird: green +
small`` and ``bird: green + right`` (val margins 0.13, p = 0.002 against 0; oracle margins 0.01
and 0.03), exactly the redundant refinements of a real mode (``bird: green``) that the margin is
there to exclude. Over the worlds of seeds 0, 1, 3, 4 at q <= 0.1 it gives precision 0.90 and
recall 0.94 at s = 50 (against 1.00 and 0.78), 0.93 and 0.68 at s = 30 (against 1.00 and 0.49).

Why conditionalized BH. Plain BH over the lattice treats thousands of combinations whose observed
drop is far below a as hypotheses in contention; their p-values are near 1 (an interval null tested
deep inside is conservative), and BH's threshold ``i q / m`` spends the error budget on them. For
such "inflated" nulls Ellis, Pecanka & Goeman (arXiv:1801.00141, "Gaining power in multiple testing
of interval hypotheses via conditionalization") discard every p-value above a threshold lambda fixed
in advance and apply BH to ``p / lambda`` over the rest; this controls the FDR over the whole family
when null p-values are *uniformly conservative* (``P(p <= u lambda | p <= lambda) <= u``), which
one-sided tests in monotone-likelihood-ratio families are (Zhao, Small & Su, JASA 2019), and the
largest of such p-values is too when its parts are independent. We take ``lambda = 1/2``
(:data:`SELECTION_LEVEL`): a combination is in contention when the point estimate of every part of
its claim passes its margin, i.e. (up to the Agresti-Caffo pseudo-counts) when it is a mode of the
paper's definition; a few dozen of a toy world's 1,000-2,000 combinations are. The
theorem assumes independence; nested groups share images (positively), so the FDR is checked by
simulation on a lattice with known truth (tests/test_statistics.py) and on the toy worlds' oracle
(benchmarks/recovery.py).

The filter keeps the paper's modes with ``q <= max_q``: a subset of ``find_failure_modes(max_q=None)``.
A combination in contention that the paper's definition rejects on the raw counts (the
pseudo-counts can move a borderline estimate across a margin) is never shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# scipy.stats and statsmodels take about a second to import, more than a search of Living17: they
# are imported by the functions that use them, so that `import primekit` and a search without
# max_q do not pay for them.

__all__ = [
    "RECOMMENDED_MAX_Q",
    "SELECTION_LEVEL",
    "conditional_q_values",
    "STATISTIC_COLUMNS",
    "difference_pvalue",
    "difference_interval",
    "lattice_statistics",
    "shrunk_accuracy",
    "q_values",
    "drop_calibration",
    "class_counts",
]

#: The threshold of conditionalized BH: a combination is in contention (enters the family of the
#: q-values) when its p-value is at most this, i.e. its point estimates pass the test's margins.
SELECTION_LEVEL = 0.5

#: The filter level the demo and the notebooks use (``find_failure_modes(..., max_q=...)``), chosen
#: on the precision-recall frontier of the toy worlds (``benchmarks/recovery.py``, seeds 0-4,
#: ground-truth tags): the procedure is conservative there (interval nulls tested inside, the
#: intersection-union max), so the realised false share stays far under the level: at 0.3 it is
#: 0.03 (s = 30) and 0 (s = 50), while recall rises from 0.52 to 0.63 (s = 30) and from 0.74 to
#: 0.85 (s = 50) against level 0.1. The q-value's promise is the level, not what was realised.
RECOMMENDED_MAX_Q = 0.3

STATISTIC_COLUMNS = (
    "accuracy_low",
    "accuracy_high",
    "drop_low",
    "drop_high",
    "expected_drop",
    "necessity_low",
    "p_drop",
    "p_necessity",
    "p_value",
    "q_value",
)


def _ac(count: np.ndarray, nobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Agresti-Caffo: one success and one failure added to a sample; its proportion and variance."""
    p = (count + 1.0) / (nobs + 2.0)
    return p, p * (1.0 - p) / (nobs + 2.0)


def difference_pvalue(
    count1: np.ndarray, nobs1: np.ndarray, count2: np.ndarray, nobs2: np.ndarray, value: np.ndarray
) -> np.ndarray:
    """One-sided p-values of H0 ``p1 - p2 <= value`` against ``p1 - p2 > value``, elementwise.

    The Agresti-Caffo test of statsmodels' ``test_proportions_2indep(..., method="agresti-caffo",
    alternative="larger")``, vectorised here because statsmodels takes one ``value`` per call and
    every group of the lattice has its own (``min_drop / w``). A sample of size 0 makes the
    difference undefined: its p-value is 1 (nothing is shown).
    """
    from scipy import stats
    count1, nobs1, count2, nobs2 = (np.asarray(x, dtype=np.float64) for x in (count1, nobs1, count2, nobs2))
    p1, v1 = _ac(count1, nobs1)
    p2, v2 = _ac(count2, nobs2)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty samples are masked below
        z = (p1 - p2 - np.asarray(value, dtype=np.float64)) / np.sqrt(v1 + v2)
    return np.where((nobs1 > 0) & (nobs2 > 0), stats.norm.sf(z), 1.0)


def difference_interval(
    count1: np.ndarray, nobs1: np.ndarray, count2: np.ndarray, nobs2: np.ndarray, *, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Agresti-Caffo interval of ``p1 - p2`` (statsmodels), NaN where a sample is empty."""
    from statsmodels.stats.proportion import confint_proportions_2indep
    count1, nobs1, count2, nobs2 = (np.asarray(x, dtype=np.float64) for x in (count1, nobs1, count2, nobs2))
    with np.errstate(invalid="ignore", divide="ignore"):  # empty samples are masked below
        low, high = confint_proportions_2indep(
            count1, nobs1, count2, nobs2, method="agresti-caffo", compare="diff", alpha=1.0 - confidence
        )
    ok = (nobs1 > 0) & (nobs2 > 0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def q_values(p_values: np.ndarray, *, method: str = "bh") -> np.ndarray:
    """Benjamini-Hochberg (``"bh"``) or Benjamini-Yekutieli (``"by"``) adjusted p-values.

    ``scipy.stats.false_discovery_control``; NaN p-values (untested rows) stay NaN and do not count.
    """
    from scipy import stats
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(np.clip(p[ok], 0.0, 1.0), method=method)
    return out


def conditional_q_values(p_values: np.ndarray, *, selection: float = SELECTION_LEVEL, method: str = "bh") -> np.ndarray:
    """Conditionalized Benjamini-Hochberg (Ellis, Pecanka & Goeman): BH of ``p / selection`` over
    the p-values at most ``selection``; the others are never discoveries (q-value 1).

    ``selection=1`` is plain BH (:func:`q_values`). NaN p-values stay NaN and do not count.
    """
    if not 0.0 < selection <= 1.0:
        raise ValueError(f"selection: must lie in (0, 1], got {selection}")
    p = np.asarray(p_values, dtype=np.float64)
    out = np.where(np.isfinite(p), 1.0, np.nan)
    entered = np.isfinite(p) & (p <= selection)
    out[entered] = q_values(p[entered] / selection, method=method)
    return out


_LOG_KAPPA = (np.log(0.5), np.log(1e5))  # bounds of the prior's concentration
_LOGIT_PI = (-6.906754778648554, 0.0)  # logit of 1e-3 and of 1/2: bounds of the far share


def _near_logpmf(correct: np.ndarray, nobs: np.ndarray, mean: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Beta-binomial log-pmf of the counts under Beta(kappa m, kappa (1 - m)), for each kappa (rows).

    Written out with ``scipy.special.betaln`` (scipy.stats.betabinom has the same formula and a
    per-call overhead 10-50x the work here, where the fit evaluates it thousands of times).
    """
    from scipy import special
    a, b = np.multiply.outer(kappa, mean), np.multiply.outer(kappa, 1.0 - mean)
    log_choose = special.gammaln(nobs + 1.0) - special.gammaln(correct + 1.0) - special.gammaln(nobs - correct + 1.0)
    return log_choose + special.betaln(correct + a, nobs - correct + b) - special.betaln(a, b)


def _two_group_fit(correct: np.ndarray, nobs: np.ndarray, mean: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(kappa, pi)`` of the two-group beta-binomial prior of :func:`shrunk_accuracy`.

    A pseudo-likelihood (nested groups share images). The likelihood of a mixture can have more
    than one mode, so it is maximised on a grid of both parameters (log kappa in steps of 0.5,
    logit pi in steps of 1), then on a grid ten times finer around the best point: the shrunk
    accuracies move by far less than their own uncertainty within the last step. (scipy's
    L-BFGS-B did the same refinement 20x slower here, in its per-call overhead.)
    """
    from scipy import special
    m = np.clip(mean, 1e-4, 1.0 - 1e-4)
    slab = -np.log(nobs + 1.0)  # the beta-binomial of a uniform accuracy: 1 / (n + 1) for every count

    def best(log_kappa: np.ndarray, logit_pi: np.ndarray) -> tuple[float, float]:
        near = _near_logpmf(correct, nobs, m, np.exp(log_kappa))  # (kappas, groups)
        pi = special.expit(logit_pi)[:, None, None]
        total = np.logaddexp(np.log1p(-pi) + near[None], np.log(pi) + slab).sum(axis=-1)  # (pis, kappas)
        j, i = np.unravel_index(np.argmax(total), total.shape)
        return float(log_kappa[i]), float(logit_pi[j])

    coarse_kappa, coarse_pi = np.linspace(*_LOG_KAPPA, 25), np.linspace(*_LOGIT_PI, 8)
    log_kappa, logit_pi = best(coarse_kappa, coarse_pi)
    step_kappa, step_pi = coarse_kappa[1] - coarse_kappa[0], coarse_pi[1] - coarse_pi[0]
    log_kappa, logit_pi = best(
        np.clip(log_kappa + np.linspace(-step_kappa, step_kappa, 21), *_LOG_KAPPA),
        np.clip(logit_pi + np.linspace(-step_pi, step_pi, 21), *_LOGIT_PI),
    )
    return float(np.exp(log_kappa)), float(special.expit(logit_pi))


def shrunk_accuracy(
    correct: np.ndarray, nobs: np.ndarray, prior_mean: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Posterior mean accuracy of every group of one class under an empirical-Bayes two-group prior.

    Most groups are near what their tags predict, a few are not (a real failure mode is a group
    its parents do not explain). The prior says so: with probability ``1 - pi`` a group's accuracy
    is ``Beta(kappa m, kappa (1 - m))`` around its prediction m, with probability ``pi`` it is
    uniform (no prediction). ``kappa`` and ``pi`` maximise the beta-binomial mixture likelihood of
    the class's groups. The posterior mean mixes ``(correct + kappa m) / (nobs + kappa)`` and
    ``(correct + 1) / (nobs + 2)`` by the posterior odds of the two groups, so a group far from
    its prediction on many images keeps its own accuracy while a borderline one is pulled toward
    the prediction: the winner's curse is corrected where it acts.

    Parameters
    ----------
    correct, nobs : int arrays (m,)
        Correct predictions and size of each group.
    prior_mean : float array (m,)
        What the group's accuracy is predicted to be before looking at it (the class accuracy,
        or the no-interaction prediction from its parent tags).

    Returns
    -------
    (array (m,), float, float)
        The posterior means, the fitted ``kappa`` and ``pi``. Fewer than three groups cannot
        fit two parameters: ``kappa = 1`` and ``pi = 0`` (a weak one-group prior).
    """
    from scipy import special
    correct, nobs = np.asarray(correct, np.float64), np.asarray(nobs, np.float64)
    m = np.clip(np.asarray(prior_mean, np.float64), 1e-4, 1.0 - 1e-4)
    kappa, pi = _two_group_fit(correct, nobs, m) if len(nobs) > 2 else (1.0, 0.0)
    near = (correct + kappa * m) / (nobs + kappa)
    if pi == 0.0:
        return near, kappa, pi
    log_near = _near_logpmf(correct, nobs, m, np.array([kappa]))[0]
    far_share = special.expit(np.log(pi) - np.log(nobs + 1.0) - np.log1p(-pi) - log_near)
    return (1.0 - far_share) * near + far_share * (correct + 1.0) / (nobs + 2.0), kappa, pi


def _no_interaction_prior(tags: list[tuple], accuracy: np.ndarray, class_accuracy: float) -> np.ndarray:
    """Accuracy of each group predicted from its single tags, additive on the logit scale.

    ``logit A_S ~ logit A_c + sum_t (logit A_t - logit A_c)``: the tags' effects without any
    interaction. A single tag is predicted by the class accuracy.
    """
    from scipy import special
    eps = 1e-3
    base = special.logit(np.clip(class_accuracy, eps, 1 - eps))
    single = {t[0]: special.logit(np.clip(a, eps, 1 - eps)) - base for t, a in zip(tags, accuracy) if len(t) == 1}
    effect = np.array([0.0 if len(t) == 1 else sum(single.get(u, 0.0) for u in t) for t in tags])
    return special.expit(base + effect)


def _parent_counts(lattice: pd.DataFrame, correct: np.ndarray, max_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """Size and correct count of every leave-one-out subset ``S \\ t`` (columns: position of t).

    Every subset of a frequent combination is frequent, so the parents are rows of the lattice.
    """
    keys = [(c, t) for c, t in zip(lattice["class"], lattice["tags"])]
    index = {k: i for i, k in enumerate(keys)}
    n_parent = np.zeros((len(keys), max_tags), np.int64)
    c_parent = np.zeros((len(keys), max_tags), np.int64)
    sizes = lattice["size"].to_numpy()
    for i, (cls, tags) in enumerate(keys):
        if len(tags) < 2:
            continue
        for j in range(len(tags)):
            p = index[(cls, tags[:j] + tags[j + 1 :])]
            n_parent[i, j], c_parent[i, j] = sizes[p], correct[p]
    return n_parent, c_parent


def lattice_statistics(
    lattice: pd.DataFrame,
    class_counts: pd.DataFrame,
    *,
    min_drop: float,
    necessity: np.ndarray,
    confidence: float = 0.95,
    fdr_method: str = "bh",
) -> pd.DataFrame:
    """The columns of :data:`STATISTIC_COLUMNS` for every row of a tag lattice.

    Parameters
    ----------
    lattice : DataFrame
        ``primekit.tag_lattice`` output (``class, tags, n_tags, size, accuracy, class_accuracy``):
        every combination the search evaluated, the family of the q-values.
    class_counts : DataFrame
        Index = class, columns ``size`` and ``n_correct`` of the whole class.
    min_drop : float
        a: the drop a mode claims.
    necessity : float array (max_tags + 1,)
        ``necessity[k]`` = b_k.
    confidence : float
        Level of the two-sided intervals.
    fdr_method : {"bh", "by"}
        Benjamini-Hochberg, or Benjamini-Yekutieli (any dependence).

    Returns
    -------
    DataFrame
        Same index as ``lattice``, the columns of :data:`STATISTIC_COLUMNS`.
    """
    from statsmodels.stats.proportion import proportion_confint
    n = lattice["size"].to_numpy(np.int64)
    k = np.rint(lattice["accuracy"].to_numpy(np.float64) * n).astype(np.int64)
    n_class = class_counts["size"].reindex(lattice["class"]).to_numpy(np.int64)
    k_class = class_counts["n_correct"].reindex(lattice["class"]).to_numpy(np.int64)
    n_rest, k_rest = n_class - n, k_class - k
    w_rest = n_rest / np.maximum(n_class, 1)
    alpha = 1.0 - confidence

    acc_low, acc_high = proportion_confint(k, n, alpha=alpha, method="wilson")
    diff_low, diff_high = difference_interval(k_rest, n_rest, k, n, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_drop = difference_pvalue(k_rest, n_rest, k, n, np.where(w_rest > 0, min_drop / w_rest, np.inf))

    width = int(lattice["n_tags"].max()) if len(lattice) else 1
    n_par, k_par = _parent_counts(lattice, k, width)
    n_tags = lattice["n_tags"].to_numpy(np.int64)
    used = np.arange(width)[None, :] < n_tags[:, None]
    n_out = np.where(used, n_par - n[:, None], 0)  # images with S \ t but not t
    k_out = np.where(used, k_par - k[:, None], 0)
    w_out = n_out / np.maximum(n_par, 1)
    b = np.asarray(necessity, np.float64)[np.minimum(n_tags, len(necessity) - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t = difference_pvalue(k_out, n_out, k[:, None], n[:, None], np.where(w_out > 0, b[:, None] / w_out, np.inf))
        low_t, _ = difference_interval(k_out, n_out, k[:, None], n[:, None], confidence=confidence)
    several = n_tags > 1
    p_nec = np.where(several, np.where(used, p_t, -np.inf).max(axis=1), np.nan)
    nec_low = np.where(several, np.where(used, np.nan_to_num(low_t, nan=-1.0) * w_out, np.inf).min(axis=1), np.nan)
    p_value = np.fmax(p_drop, p_nec)

    expected = np.empty(len(lattice))
    for rows in lattice.groupby("class", sort=False).indices.values():
        a_c = float(k_class[rows[0]] / n_class[rows[0]])
        prior = _no_interaction_prior(list(lattice["tags"].iloc[rows]), k[rows] / n[rows], a_c)
        # one prior spread per number of tags: a single tag strays from its class by a main
        # effect, a combination from its parents' prediction only by an interaction
        for order in np.unique(n_tags[rows]):
            part = rows[n_tags[rows] == order]
            shrunk, _, _ = shrunk_accuracy(k[part], n[part], prior[n_tags[rows] == order])
            expected[part] = a_c - shrunk
    return pd.DataFrame(
        {
            "accuracy_low": acc_low,
            "accuracy_high": acc_high,
            "drop_low": w_rest * diff_low,
            "drop_high": w_rest * diff_high,
            "expected_drop": expected,
            "necessity_low": nec_low,
            "p_drop": p_drop,
            "p_necessity": p_nec,
            "p_value": p_value,
            "q_value": conditional_q_values(p_value, method=fdr_method),
        },
        index=lattice.index,
    )


def class_counts(labels: np.ndarray, correct: np.ndarray, classes: list) -> pd.DataFrame:
    """``size`` and ``n_correct`` per class (index: ``classes``), from class codes and correctness."""
    size = np.bincount(labels, minlength=len(classes))
    right = np.bincount(labels, weights=correct.astype(np.float64), minlength=len(classes))
    return pd.DataFrame({"size": size, "n_correct": np.rint(right).astype(np.int64)}, index=pd.Index(classes, dtype=object))


def attach(modes: pd.DataFrame, lattice: pd.DataFrame, statistics: pd.DataFrame, *, max_q: float) -> pd.DataFrame:
    """The modes with the statistics of their lattice rows, those with ``q_value <= max_q``."""
    key = pd.MultiIndex.from_arrays([lattice["class"].astype(str), ["\x00".join(t) for t in lattice["tags"]]])
    table = statistics.set_axis(key)
    wanted = pd.MultiIndex.from_arrays([modes["class"].astype(str), ["\x00".join(t) for t in modes["tags"]]])
    joined = pd.concat([modes.reset_index(drop=True), table.reindex(wanted).reset_index(drop=True)], axis=1)
    return joined[joined["q_value"] <= max_q + 1e-12].reset_index(drop=True)


def check_max_q(value: object) -> float | None:
    """``max_q`` is None (the paper's definition) or a level in (0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"max_q: expected a number in (0, 1] or None, got {value!r}")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"max_q: must lie in (0, 1], got {value}")
    return float(value)



def drop_calibration(
    recovered: pd.DataFrame, *, estimates: tuple[str, ...] = ("drop", "expected_drop"), n_bins: int = 4
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How well each estimate of a mode's drop predicts its drop on unseen data.

    Parameters
    ----------
    recovered : DataFrame
        Modes with the columns of ``estimates`` and ``test_drop`` (``primekit.metrics.recover_groups``
        of modes found with ``max_q`` set); rows with a NaN test drop are left out.
    estimates : column names
        The predictions to compare (the observed drop and the shrunk expected drop).
    n_bins : int
        Calibration bins (quantiles of each estimate).

    Returns
    -------
    (DataFrame, DataFrame)
        ``errors``: one row per estimate with ``n, mean_error`` (estimate - test drop: the winner's
        curse is a positive bias), ``mean_absolute_error``, ``mean_squared_error`` and
        ``mse_difference, mse_difference_se`` (its MSE minus the first estimate's, paired over the
        modes, and the standard error of that mean); and ``bins``: ``estimate, bin, predicted,
        observed, n`` (mean estimate vs mean test drop per bin: calibration).

    Notes
    -----
    Rank estimates by the mean *squared* error. The test split's noise e is independent of the
    split the estimates were made on, so ``E[(estimate - test)^2] = E[(estimate - truth)^2] +
    Var(e)``: the squared error against a noisy test drop ranks estimators as their error against
    the truth does, the test's noise adds the same to every one. The absolute error has no such
    decomposition: with test noise as large as the errors compared (groups of 10-60 test
    images), it can rank them the other way.
    """
    missing = [c for c in (*estimates, "test_drop") if c not in recovered.columns]
    if missing:
        raise ValueError(f"recovered: missing column(s) {missing}")
    data = recovered[list(estimates) + ["test_drop"]].dropna()
    errors, bins = [], []
    first = (data[estimates[0]] - data["test_drop"]) ** 2
    for name in estimates:
        diff = data[name] - data["test_drop"]
        paired = diff**2 - first
        errors.append({"estimate": name, "n": len(diff), "mean_error": diff.mean(),
                       "mean_absolute_error": diff.abs().mean(), "mean_squared_error": (diff**2).mean(),
                       "mse_difference": paired.mean(),
                       "mse_difference_se": paired.std() / np.sqrt(len(paired)) if len(paired) > 1 else np.nan})
        if len(data):
            cut = pd.qcut(data[name].rank(method="first"), min(n_bins, len(data)), labels=False)
            grouped = data.groupby(cut)
            bins.append(pd.DataFrame({"estimate": name, "bin": range(grouped.ngroups),
                                      "predicted": grouped[name].mean().to_numpy(),
                                      "observed": grouped["test_drop"].mean().to_numpy(),
                                      "n": grouped.size().to_numpy()}))
    columns = ["estimate", "bin", "predicted", "observed", "n"]
    return pd.DataFrame(errors), (pd.concat(bins, ignore_index=True) if bins else pd.DataFrame(columns=columns))
