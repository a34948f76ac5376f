"""Packing one class into bit rows (primekit._packing): every memory layout, both inputs, same bits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import primekit
from primekit._packing import MatrixBits, pack_pairs
from primekit._tag_major import TagMajorBits


def _reference(matrix: np.ndarray, rows: np.ndarray, correct: np.ndarray, names, min_count: int):
    """T_c by name and their bit rows, packed with numpy (bit i of word w = sample 64 w + i)."""
    sub = matrix[rows]
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    cols = order[sub[:, order].sum(axis=0) >= min_count]

    def words(block: np.ndarray) -> np.ndarray:
        n_words = max(1, -(-block.shape[0] // 64))
        packed = np.packbits(block.T, axis=1, bitorder="little")
        padded = np.zeros((block.shape[1], n_words * 8), np.uint8)
        padded[:, : packed.shape[1]] = packed
        return padded.view("<u8").astype(np.uint64)

    return cols, words(sub[:, cols]), words(sub[~correct][:, cols])


def _pack_one(matrix: np.ndarray, names, rows, correct, min_count: int):
    """One class packed as the search packs it: a tag-major matrix by the sweep of every class
    (here one), any other by the row packer."""
    if matrix.flags.f_contiguous and not matrix.flags.c_contiguous:
        every = np.ones(matrix.shape[0], bool)
        every[rows] = correct
        return TagMajorBits(matrix, names, ["c"], [np.asarray(rows)], every).class_bits(
            0, min_count=min_count
        )
    return MatrixBits(matrix, names).class_bits("c", rows, correct, min_count=min_count)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 200, 700])
@pytest.mark.parametrize("width", [23, 24])  # 24: C rows are read as words of 8 tags
def test_matrix_bits_match_numpy_in_every_layout(layout: str, n: int, width: int) -> None:
    rng = np.random.default_rng(n)
    base = rng.random((2 * n + 7, width)) < 0.4
    matrix = {"C": np.ascontiguousarray(base), "F": np.asfortranarray(base), "strided": base[::2]}[layout]
    names = np.array([f"t{(7 * j) % width:02d}" for j in range(width)], dtype=object)  # not sorted
    rows = np.sort(rng.choice(matrix.shape[0], size=min(n, matrix.shape[0]), replace=False))
    correct = rng.random(len(rows)) < 0.7
    min_count = max(1, len(rows) // 3)
    got = _pack_one(matrix, names, rows, correct, min_count)
    cols, bits, ebits = _reference(np.asarray(matrix), rows, correct, names, min_count)
    assert list(got.names) == list(names[cols])
    assert list(got.names) == sorted(got.names)
    np.testing.assert_array_equal(got.bits, bits)
    np.testing.assert_array_equal(got.ebits, ebits)
    errors = (~correct[:, None] & np.asarray(matrix)[rows][:, cols]).sum(axis=0)
    np.testing.assert_array_equal(got.walk, np.argsort(errors, kind="stable"))
    assert got.n == len(rows) and got.accuracy == pytest.approx(correct.mean())


def test_matrix_bits_reuse_the_scratch_across_classes_of_any_size() -> None:
    """A small class packed after a large one (same scratch) sees none of the large one's bits."""
    rng = np.random.default_rng(9)
    matrix = rng.random((900, 16)) < 0.5
    names = np.array([f"t{j:02d}" for j in range(16)], dtype=object)
    correct = rng.random(900) < 0.6
    packer = MatrixBits(matrix, names)
    for rows in (np.arange(800), np.arange(800, 900), np.arange(800, 805), np.arange(10, 700)):
        got = packer.class_bits("c", rows, correct[rows], min_count=1)
        cols, bits, ebits = _reference(matrix, rows, correct[rows], names, 1)
        np.testing.assert_array_equal(got.bits, bits)
        np.testing.assert_array_equal(got.ebits, ebits)
    all_correct = packer.class_bits("c", np.arange(50), np.ones(50, bool), min_count=1)
    assert not all_correct.ebits.any() and all_correct.ebits.shape[1] == 1


def test_pairs_and_matrix_pack_the_same_class() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.random((150, 12)) < 0.3
    names = np.array([f"tag{j:02d}" for j in range(12)], dtype=object)
    correct = rng.random(150) < 0.8
    rows, tags = np.nonzero(matrix)
    from_pairs = pack_pairs("c", names, rows, tags.astype(np.int32), correct, min_count=20)
    from_matrix = MatrixBits(matrix, names).class_bits("c", np.arange(150), correct, min_count=20)
    assert list(from_pairs.names) == list(from_matrix.names)
    for field in ("bits", "ebits", "walk"):
        np.testing.assert_array_equal(getattr(from_pairs, field), getattr(from_matrix, field))


@pytest.mark.parametrize("grouped", [False, True])
def test_search_is_the_same_whatever_the_frame_layout(grouped: bool) -> None:
    """Row-major and tag-major frames (the latter packed by one sweep), with the classes' samples
    scattered or grouped in runs, give the same modes, also on 2 threads."""
    rng = np.random.default_rng(5)
    n = 600
    values = rng.random((n, 15)) < 0.35
    index = pd.Index([f"s{i}" for i in range(n)], name="id")
    columns = [f"tag{j:02d}" for j in range(15)]
    classes = np.repeat(["a", "b", "c"], [200, 157, 243]) if grouped else rng.choice(["b", "a", "c"], n)
    labels = pd.Series(classes, index=index)
    correct = pd.Series(~(values[:, 0] & values[:, 1]) | (rng.random(n) < 0.2), index=index)
    settings = {"min_size": 15, "min_drop": 0.2}
    frames = [
        pd.DataFrame(np.ascontiguousarray(values), index=index, columns=columns),
        pd.DataFrame(np.asfortranarray(values), index=index, columns=columns),
        pd.DataFrame({c: values[:, j] for j, c in enumerate(columns)}, index=index),  # by column
        pd.DataFrame({c: values[:, j].astype(np.int8) for j, c in enumerate(columns)}, index=index),
    ]
    assert not frames[2].to_numpy().flags.c_contiguous  # tag-major, as from Parquet
    results = [primekit.find_failure_modes(f, labels, correct, **settings) for f in frames]
    results.append(primekit.find_failure_modes(frames[2], labels, correct, n_jobs=2, **settings))
    assert len(results[0]) > 0
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_rows_in_any_order_are_packed_in_that_order(layout: str) -> None:
    """Bit i is the sample rows[i], also when the rows are a shuffled run of consecutive ones."""
    rng = np.random.default_rng(11)
    base = rng.random((300, 16)) < 0.4
    matrix = np.ascontiguousarray(base) if layout == "C" else np.asfortranarray(base)
    names = np.array([f"t{j:02d}" for j in range(16)], dtype=object)
    rows = np.concatenate([[100], 101 + rng.permutation(148), [249]])  # 100..249, middle shuffled
    correct = rng.random(150) < 0.7
    got = _pack_one(matrix, names, rows, correct, 1)
    cols, bits, ebits = _reference(base, rows, correct, names, 1)
    np.testing.assert_array_equal(got.bits, bits)
    np.testing.assert_array_equal(got.ebits, ebits)


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("sizes", [(64, 128, 64), (1, 63, 65, 200, 7), (700, 5, 130)])
def test_tag_major_bits_pack_every_class_as_the_row_packer_does(grouped: bool, sizes) -> None:
    """All classes of a Fortran-ordered matrix in one sweep: the same candidates, bit rows, error
    rows and walk as packing each class on its own; classes grouped in runs or scattered, sizes
    on and off the 64-sample words, a class without errors, and samples of no class."""
    rng = np.random.default_rng(sum(sizes) + grouped)
    n_extra = 37  # samples of no class, interleaved
    n = sum(sizes) + n_extra
    base = rng.random((n, 21)) < 0.3
    names = np.array([f"t{(5 * j) % 21:02d}" for j in range(21)], dtype=object)
    label = np.repeat(np.arange(len(sizes) + 1), (*sizes, n_extra))
    if not grouped:
        label = rng.permutation(label)
    correct = rng.random(n) < 0.75
    correct[label == 1] = True  # one class without errors
    rows = [np.flatnonzero(label == k) for k in range(len(sizes))]
    classes = [f"c{k}" for k in range(len(sizes))]
    packed = TagMajorBits(np.asfortranarray(base), names, classes, rows, correct)
    by_row = MatrixBits(np.ascontiguousarray(base), names)
    for k, r in enumerate(rows):
        got = packed.class_bits(k, min_count=3)
        want = by_row.class_bits(f"c{k}", r, correct[r], min_count=3)
        assert got.label == want.label and got.n == want.n == len(r)
        assert list(got.names) == list(want.names)
        np.testing.assert_array_equal(got.bits, want.bits)
        np.testing.assert_array_equal(got.ebits, want.ebits)
        np.testing.assert_array_equal(got.walk, want.walk)
        assert got.accuracy == pytest.approx(want.accuracy)


@pytest.mark.parametrize("n_errors", [0, 1, 63, 64, 65, 128])
def test_error_rows_stay_inside_their_buffer_for_any_number_of_errors(n_errors: int) -> None:
    """Error counts on and off the 64-bit words (the error rows are drawn from the bit rows with
    a spill-over word): every packer gives the reference's rows, and nothing past them."""
    rng = np.random.default_rng(n_errors)
    n = 200
    base = rng.random((n, 16)) < 0.5
    names = np.array([f"t{j:02d}" for j in range(16)], dtype=object)
    correct = np.ones(n, bool)
    correct[rng.choice(n, n_errors, replace=False)] = False
    rows = np.arange(n)
    cols, bits, ebits = _reference(base, rows, correct, names, 1)
    for matrix in (np.ascontiguousarray(base), np.asfortranarray(base)):
        got = _pack_one(matrix, names, rows, correct, 1)
        np.testing.assert_array_equal(got.bits, bits)
        np.testing.assert_array_equal(got.ebits, ebits)


def test_a_class_without_samples_and_inconsistent_rows_or_correctness() -> None:
    """No sample: no candidate and no stale scratch bits; rows out of range or a correctness
    of another length are refused (the kernels do not check bounds)."""
    rng = np.random.default_rng(1)
    matrix = rng.random((100, 8)) < 0.9
    names = np.array([f"t{j}" for j in range(8)], dtype=object)
    packer = MatrixBits(matrix, names)
    packer.class_bits("full", np.arange(100), np.ones(100, bool), min_count=1)  # fills the scratch
    empty = packer.class_bits("none", np.zeros(0, np.int64), np.zeros(0, bool), min_count=0)
    assert not empty.bits.any() and not empty.ebits.any() and empty.n == 0
    with pytest.raises(ValueError, match="rows: expected sample positions in"):
        packer.class_bits("c", np.array([5, 100]), np.ones(2, bool), min_count=1)
    with pytest.raises(ValueError, match="correct: expected 3 values, got 2"):
        packer.class_bits("c", np.arange(3), np.ones(2, bool), min_count=1)
    with pytest.raises(ValueError, match="correct: expected 100 values"):
        TagMajorBits(np.asfortranarray(matrix), names, ["c"], [np.arange(10)], np.ones(10, bool))
