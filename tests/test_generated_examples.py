"""primekit.study.generated_examples: display images of the modes of paper 4.2 (Fig. 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from primekit.study import Split, Study, generated_examples


def make_study(generator=None):
    ids = ["a", "b"]
    samples = pd.DataFrame({"id": ids, "label": ["cat", "dog"], "correct": [True, False]})
    tags = pd.DataFrame({"grass": [True, False]}, index=ids)
    split = Split("val", samples, tags)
    return Study("fake", split, split, threshold=0.5, generator=generator,
                 classifier=(lambda images: pd.DataFrame({"pred": ["cat"] * len(images)})))


def test_one_array_per_mode_with_seed_per_row():
    calls = []

    def generator(cls, tags, n, *, seed=0):
        calls.append((cls, tags, n, seed))
        return np.full((n, 2, 2, 3), seed, np.uint8), pd.DataFrame()

    modes = pd.DataFrame({"class": ["cat", "dog"], "tags": [("grass",), ("night", "snow")]})
    images = generated_examples(make_study(generator), modes, n=3, seed=10)
    assert [im.shape for im in images] == [(3, 2, 2, 3)] * 2
    assert calls == [("cat", ("grass",), 3, 10), ("dog", ("night", "snow"), 3, 11)]
    assert images[1][0, 0, 0, 0] == 11


def test_rejects_a_study_without_generator_and_bad_arguments():
    modes = pd.DataFrame({"class": ["cat"], "tags": [("grass",)]})
    with pytest.raises(ValueError, match="generator"):
        generated_examples(make_study(), modes)
    with pytest.raises(ValueError, match="n:"):
        generated_examples(make_study(lambda *a, **k: None), modes, n=0)
    with pytest.raises(ValueError, match="modes"):
        generated_examples(make_study(lambda *a, **k: None), pd.DataFrame({"class": ["cat"]}))
