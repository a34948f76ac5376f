"""Specification of FailureModeExplorer, driven headlessly: set widget values, read the state."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from test_report import EVIL_TAG, make_run_dir

from primekit.explore import FailureModeExplorer
from primekit.run_folder import load_run


def brute_force_modes(tags, labels, correct, *, min_size, min_drop, max_tags, necessity):
    """Modes straight from the paper's definition (independent of primekit.search)."""
    found = set()
    for cls in sorted(labels.unique()):
        sub, ok = tags[labels == cls], correct[labels == cls].to_numpy()
        class_acc = ok.mean()

        def acc(subset, sub=sub, ok=ok):
            inside = sub[list(subset)].all(axis=1).to_numpy() if subset else np.ones(len(sub), bool)
            return inside.sum(), ok[inside].mean() if inside.any() else np.nan

        vocab = [t for t in sorted(sub.columns) if sub[t].sum() >= min_size]
        for k in range(1, max_tags + 1):
            for s in itertools.combinations(vocab, k):
                n, a = acc(s)
                if n < min_size or a > class_acc - min_drop + 1e-9:
                    continue
                if k > 1 and any(
                    acc(tuple(x for x in s if x != t))[1] < a + necessity[k] - 1e-9 for t in s
                ):
                    continue
                found.add((cls, s))
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("run") / "demo")


@pytest.fixture()
def explorer(run_dir):
    return FailureModeExplorer.from_run(run_dir, n_images=5)


def mode_keys(modes: pd.DataFrame) -> set:
    return set(zip(modes["class"], modes["tags"], strict=True))


def test_starts_on_the_runs_own_settings_and_modes(explorer):
    run = explorer.run
    assert explorer.min_size_slider.value == 10
    assert explorer.max_tags_slider.value == 3
    assert mode_keys(explorer.modes_) == mode_keys(run.modes)
    # a class with modes is selected, and its first mode is shown
    assert explorer.class_picker.value == explorer.modes_["class"].iloc[0]
    assert explorer.mode_ is not None
    assert explorer.mode_picker.value == explorer.class_modes(explorer.class_picker.value).index[0]


def test_mode_images_are_inside_the_mode_and_others_outside(explorer):
    explorer.class_picker.value = "dog"
    rows = explorer.class_modes("dog")
    row = next(i for i, t in zip(rows.index, rows["tags"], strict=True) if t == ("grass", "water"))
    explorer.mode_picker.value = row
    assert explorer.mode_["tags"] == ("grass", "water")
    tags, labels = explorer.tags, explorer.labels
    for sid in explorer.shown_mode_ids_:
        assert labels[sid] == "dog" and tags.loc[sid, "grass"] and tags.loc[sid, "water"]
    for sid in explorer.shown_other_ids_:
        assert labels[sid] == "dog" and not (tags.loc[sid, "grass"] and tags.loc[sid, "water"])
    assert len(explorer.shown_mode_ids_) == 5 and len(explorer.shown_other_ids_) == 5
    assert len(explorer.mode_ids_) == explorer.mode_["size"]
    assert len(explorer.mode_grid.children) == 5 and len(explorer.other_grid.children) == 5
    # thumbnails are real images, bordered by correctness
    first = explorer.mode_grid.children[0].children[0]
    assert first.value[:8] == b"\x89PNG\r\n\x1a\n"
    colour = "#1e8449" if explorer.correct[explorer.shown_mode_ids_[0]] else "#c0392b"
    assert colour in first.layout.border


def test_subset_accuracies_and_description_follow_the_mode(explorer):
    explorer.class_picker.value = "dog"
    rows = explorer.class_modes("dog")
    explorer.mode_picker.value = next(
        i for i, t in zip(rows.index, rows["tags"], strict=True) if t == ("grass", "water")
    )
    subsets = explorer.subsets_
    assert list(subsets["tags"]) == [(), ("grass",), ("water",), ("grass", "water")]
    full = subsets.iloc[-1]
    assert full["size"] == explorer.mode_["size"]
    assert full["accuracy"] == pytest.approx(explorer.mode_["accuracy"])
    assert subsets.iloc[0]["accuracy"] == pytest.approx(explorer.mode_["class_accuracy"])
    assert explorer.chart.value[:4] == b"\x89PNG"
    assert "a photo of dog grass water" in explorer.info.value
    assert f"<b>{explorer.mode_['size']}</b>" in explorer.info.value


def test_reseed_draws_other_images_of_the_same_groups(explorer):
    explorer.class_picker.value = "cat"
    before = list(explorer.shown_other_ids_)
    members = set(explorer.mode_ids_)
    explorer.reseed_button.click()
    assert explorer.seed_ == 1
    assert explorer.shown_other_ids_ != before
    assert set(explorer.shown_mode_ids_) <= members
    # the same seed gives the same images: not cherry-picked, but reproducible
    assert explorer.pick_images("cat", ("night",), seed=3) == explorer.pick_images(
        "cat", ("night",), seed=3
    )


def test_sliders_rerun_the_search(explorer):
    explorer.min_size_slider.value = 5
    explorer.min_drop_slider.value = 0.2
    explorer.max_tags_slider.value = 2
    expected = brute_force_modes(
        explorer.tags,
        explorer.labels,
        explorer.correct,
        min_size=5,
        min_drop=0.2,
        max_tags=2,
        necessity={2: 0.1, 3: 0.05},
    )
    assert mode_keys(explorer.modes_) == expected
    assert len(expected) > len(explorer.run.modes)  # looser settings, more modes
    assert explorer.modes_["n_tags"].max() <= 2
    # every mode is listed under its class, with counts in the class picker
    for cls in explorer.classes_:
        explorer.class_picker.value = cls
        assert [v for _, v in explorer.mode_picker.options] == list(explorer.class_modes(cls).index)
    label = dict((v, k) for k, v in explorer.class_picker.options)["cat"]
    n = len(explorer.class_modes("cat"))
    assert label == f"cat ({n} mode{'' if n == 1 else 's'})"


def test_a_slider_change_keeps_the_selected_mode_when_it_survives(explorer):
    explorer.class_picker.value = "cat"
    assert explorer.mode_["tags"] == ("night",)
    explorer.min_drop_slider.value = 0.25
    assert explorer.class_picker.value == "cat"
    assert explorer.mode_["tags"] == ("night",)


def test_a_class_without_modes_shows_its_images_and_says_so(explorer):
    explorer.min_drop_slider.value = 1.0  # nothing can drop by 100 points
    assert explorer.modes_.empty
    assert explorer.mode_ is None and explorer.mode_picker.value is None
    assert "No failure mode" in explorer.info.value
    assert explorer.shown_mode_ids_ == [] and len(explorer.shown_other_ids_) == 5
    explorer.min_drop_slider.value = 0.3
    assert explorer.mode_ is not None


def test_markup_in_tags_is_escaped(explorer):
    cls = next(c for c in explorer.classes_ if "onerror" in str(c))
    explorer.class_picker.value = cls
    assert explorer.mode_["tags"] == (EVIL_TAG,)
    assert "<script>" not in explorer.info.value and "&lt;script&gt;" in explorer.info.value
    assert "<img src=x" not in explorer.info.value


def test_works_without_images(run_dir):
    run = load_run(run_dir)
    explorer = FailureModeExplorer(run.tags, run.labels, run.correct, min_size=10)
    assert explorer.mode_ is not None
    assert explorer.mode_grid.children == ()
    assert "no image paths" in explorer.mode_grid_title.value


def test_displays_as_its_widget(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert (
        bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    )
    assert "primekit-explorer" in explorer.widget._dom_classes


def test_bad_arguments_name_themselves(run_dir):
    run = load_run(run_dir)
    with pytest.raises(ValueError, match="n_images"):
        FailureModeExplorer(run.tags, run.labels, run.correct, n_images=0)
    with pytest.raises(ValueError, match="min_drop"):
        FailureModeExplorer(run.tags, run.labels, run.correct, min_drop=2.0)
    with pytest.raises(TypeError, match="images"):
        FailureModeExplorer(run.tags, run.labels, run.correct, images=list(run.images))
    with pytest.raises(ValueError, match="images"):
        FailureModeExplorer(run.tags, run.labels, run.correct, images=run.images.iloc[:3])


def test_select_mode_sets_both_pickers_and_plots_it(explorer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = int(explorer.modes_.index[explorer.modes_["class"] == "dog"][0])
    assert explorer.select_mode(row) is explorer
    assert explorer.class_picker.value == "dog" and explorer.mode_picker.value == row
    assert explorer.mode_["tags"] == ("grass", "water")
    fig, ax = plt.subplots()
    assert explorer.plot_subsets(ax=ax) is ax
    assert ax.get_title() == "a photo of dog grass water" and len(ax.patches) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="row"):
        explorer.select_mode(len(explorer.modes_))
    # without a row: the mode with the most tags, then the largest drop
    explorer.select_mode(0)
    assert explorer.select_mode().mode_["tags"] == ("grass", "water")
    assert explorer.summary()["shown_mode"] == "a photo of dog grass water"
    # no mode at all: nothing to select, the plot says so, the numbers are None
    explorer.min_drop_slider.value = 1.0
    assert explorer.select_mode().mode_ is None
    fig, ax = plt.subplots()
    explorer.plot_subsets(ax=ax)
    assert ax.texts[0].get_text() == "no failure mode at these settings"
    plt.close(fig)
    numbers = explorer.summary()
    assert numbers["n_failure_modes"] == 0 and numbers["shown_mode"] is None
    assert numbers["min_drop"] == 1.0


def test_the_q_value_filter_toggle_and_slider(explorer):
    from primekit import find_failure_modes

    run = explorer.run
    assert not explorer.filter_toggle.value and explorer.max_q_slider.disabled  # the run did not filter
    explorer.max_q_slider.value = 0.05
    explorer.filter_toggle.value = True
    assert not explorer.max_q_slider.disabled
    expected = find_failure_modes(run, min_size=10, min_drop=explorer.min_drop_slider.value, max_tags=3, max_q=0.05)
    assert mode_keys(explorer.modes_) == mode_keys(expected) <= mode_keys(run.modes)
    assert (explorer.modes_["q_value"] <= 0.05).all()
    if explorer.mode_ is not None:  # the card shows how sure the mode is
        assert "q-value" in explorer.info.value and "drop 95% CI" in explorer.info.value
    explorer.filter_toggle.value = False
    assert mode_keys(explorer.modes_) == mode_keys(run.modes)
