"""Plots of the paper's evaluation (Fig. 4, 5, 9/10, Tables 1/2), in the convention of
:mod:`primekit.plots`: each takes ``ax=`` and returns it; none shows or saves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .._validation import check_columns
from ._base import axes_or_new

__all__ = [
    "plot_description_quality",
    "plot_quality_distribution",
    "plot_generalization",
    "plot_tag_combinations",
    "plot_combination_accuracies",
    "plot_generated_accuracy",
]


def plot_description_quality(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Fig. 5: bars of mean similarity, std of similarity and AUROC, one bar per method.

    Parameters
    ----------
    summary : DataFrame from :func:`primekit.metrics.summarize_description_quality` (index =
        method; columns ``mean``, ``std``, ``auroc`` and optionally ``*_sem`` error bars).
    """
    check_columns(summary, "summary", ["mean", "std", "auroc"])
    ax = axes_or_new(ax)
    metrics_ = ["mean", "std", "auroc"]
    labels = ["mean similarity ↑", "std of similarity ↓", "AUROC ↑"]
    width = 0.8 / max(len(summary), 1)
    x = np.arange(len(metrics_))
    for k, (method, row) in enumerate(summary.iterrows()):
        values = [row[m] for m in metrics_]
        errors = [row.get(f"{m}_sem", np.nan) for m in metrics_]
        errors = None if all(pd.isna(e) for e in errors) else np.nan_to_num(errors)
        ax.bar(
            x + (k - (len(summary) - 1) / 2) * width,
            values,
            width,
            yerr=errors,
            label=str(method),
            capsize=3,
        )
    ax.set_xticks(x, labels)
    ax.set_ylabel("value (averaged over modes)")
    ax.legend(frameon=False)
    return ax


def plot_quality_distribution(
    quality: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    column: str = "auroc",
    ax: Axes | None = None,
) -> Axes:
    """Fig. 5 per mode: the spread of one description-quality value over each method's modes.

    Parameters
    ----------
    quality : DataFrame from :func:`primekit.metrics.description_quality`, or a mapping
        method name -> such a DataFrame (the input of ``summarize_description_quality``).
    column : ``"auroc"`` (default; chance level 0.5 is drawn), ``"mean"`` or ``"std"``
    """
    tables = {"all": quality} if isinstance(quality, pd.DataFrame) else dict(quality)
    if not tables:
        raise ValueError("quality: no table given")
    for name, table in tables.items():
        check_columns(table, f"quality[{name!r}]", [column])
    values = [t[column].dropna().to_numpy(float) for t in tables.values()]
    ax = axes_or_new(ax, (6, 3.5))
    # matplotlib's own box plot: seaborn 0.13's passes an argument matplotlib 3.11 deprecates
    ax.boxplot(values, positions=np.arange(len(values)), widths=0.5,
               medianprops={"color": "C1"})
    ax.set_xticks(np.arange(len(values)), [str(n) for n in tables])
    if column == "auroc":
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    labels = {"auroc": "AUROC inside vs outside (same class)", "mean": "mean similarity",
              "std": "std of similarity"}
    ax.set_xlabel("")
    ax.set_ylabel(labels.get(column, column))
    return ax


def plot_generalization(
    recovered: pd.DataFrame,
    *,
    min_test_drop: float | None = 0.25,
    fit: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Fig. 9/10: drop on the data the modes were found on vs drop on unseen data, with y = x.

    Parameters
    ----------
    recovered : DataFrame from :func:`primekit.metrics.recover_groups` (``drop``, ``test_drop``;
        points sized by ``test_size`` when present). Modes with an empty unseen group are left out.
    min_test_drop : draw a horizontal guide at this test drop (None: no guide).
    fit : bool, default True
        Draw the least-squares line of test drop on train drop with its 95% bootstrap band
        (seaborn's ``regplot``, seeded), the trend the paper reads against y = x; drawn when
        there are at least 3 points and both drops vary.
    """
    check_columns(recovered, "recovered", ["drop", "test_drop"])
    ax = axes_or_new(ax)
    shown = recovered[recovered["test_drop"].notna()]
    sizes = None
    if "test_size" in shown.columns and len(shown):
        sizes = 10 + 40 * shown["test_size"] / max(shown["test_size"].max(), 1)
    ax.scatter(shown["drop"], shown["test_drop"], s=sizes, alpha=0.7, edgecolors="none")
    values = pd.concat([shown["drop"], shown["test_drop"]])
    lo = min(0.0, float(values.min())) if len(values) else 0.0
    hi = max(1.0, float(values.max())) if len(values) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="y = x")
    if fit and len(shown) >= 3 and shown["drop"].std() > 0 and shown["test_drop"].std() > 0:
        sns.regplot(x=shown["drop"].to_numpy(float), y=shown["test_drop"].to_numpy(float),
                    scatter=False, ci=95, seed=0, color="C0", label="least-squares fit",
                    line_kws={"linewidth": 1}, ax=ax)
    if min_test_drop is not None:
        ax.axhline(min_test_drop, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("accuracy drop (search data)")
    ax.set_ylabel("accuracy drop (unseen data)")
    ax.legend(frameon=False, loc="upper left")
    return ax


def plot_tag_combinations(
    summaries: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    ax: Axes | None = None,
) -> Axes:
    """Table 2 as bars: average accuracy drop on groups of k, ..., 1 of a mode's tags.

    Parameters
    ----------
    summaries : DataFrame from :func:`primekit.metrics.tag_combination_summary` (index =
        number of tags, column ``drop``), or a mapping data-set name -> such a DataFrame.
    """
    tables = {"": summaries} if isinstance(summaries, pd.DataFrame) else dict(summaries)
    for name, table in tables.items():
        check_columns(table, f"summaries[{name!r}]" if name else "summaries", ["drop"])
    ax = axes_or_new(ax)
    counts = sorted({int(k) for t in tables.values() for k in t.index}, reverse=True)
    width = 0.8 / max(len(counts), 1)
    x = np.arange(len(tables))
    for k, count in enumerate(counts):
        values = [t["drop"].get(count, np.nan) for t in tables.values()]
        ax.bar(
            x + (k - (len(counts) - 1) / 2) * width,
            values,
            width,
            label=f"{count} tag{'s' if count != 1 else ''}",
        )
    ax.set_xticks(x, [str(n) for n in tables])
    ax.set_ylabel("average accuracy drop")
    ax.legend(frameon=False)
    return ax


def plot_combination_accuracies(
    combos: pd.DataFrame,
    *,
    mode: object | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Table 1 as bars: accuracy on the images carrying each subset of one mode's tags.

    The same picture as :func:`plot_subset_accuracies` (Fig. 3), drawn from the table of
    :func:`primekit.metrics.tag_combination_accuracies` (several modes, one chosen by ``mode``).

    Parameters
    ----------
    combos : DataFrame from :func:`primekit.metrics.tag_combination_accuracies`
    mode : the ``mode`` label to draw; default the first mode in ``combos``.
    """
    check_columns(combos, "combos", ["mode", "subset", "subset_size", "accuracy", "class_accuracy"])
    if combos.empty:
        raise ValueError("combos: no rows")
    key = combos["mode"].iloc[0] if mode is None else mode
    rows = combos[combos["mode"] == key]
    if rows.empty:
        raise ValueError(f"mode: {key!r} is not in combos")
    ax = axes_or_new(ax)
    y = np.arange(len(rows))
    colors = [f"C{int(k) - 1}" for k in rows["subset_size"]]
    ax.barh(y, rows["accuracy"], color=colors)
    ax.axvline(
        rows["class_accuracy"].iloc[0],
        color="grey",
        linestyle="--",
        linewidth=1,
        label="class accuracy",
    )
    ax.set_yticks(y, [" + ".join(t) for t in rows["subset"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(f"class {rows['class'].iloc[0]}" if "class" in rows.columns else "")
    ax.legend(frameon=False, loc="lower right")
    return ax


def plot_generated_accuracy(validated: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Fig. 4: accuracy on generated images of failure vs success modes, per class.

    Parameters
    ----------
    validated : DataFrame from :func:`primekit.metrics.generated_validation` with ``class``,
        ``kind`` and ``generated_accuracy``.
    """
    check_columns(validated, "validated", ["class", "kind", "generated_accuracy"])
    ax = axes_or_new(ax)
    table = validated.pivot_table(
        index="class", columns="kind", values="generated_accuracy", aggfunc="mean"
    )
    kinds = [k for k in ("failure", "success") if k in table.columns]
    x = np.arange(len(table))
    width = 0.8 / max(len(kinds), 1)
    colors = {"failure": "tab:red", "success": "tab:green"}
    for k, kind in enumerate(kinds):
        ax.bar(
            x + (k - (len(kinds) - 1) / 2) * width,
            table[kind],
            width,
            label=f"{kind} modes",
            color=colors[kind],
        )
    ax.set_xticks(x, [str(c) for c in table.index], rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy on generated images")
    ax.legend(frameon=False)
    return ax
