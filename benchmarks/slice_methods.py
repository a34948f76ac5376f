"""PRIME's search against the embedding-based slice finders (DOMINO, failure directions), on the
toy world's val split, in the same run: the time to go from per-image inputs (tags for PRIME, CLIP
embeddings for the others) to described failure groups. Tagging and embedding are not included
(PRIME needs tags, the others image embeddings; both are one pass over the images).

    .venv/bin/python benchmarks/slice_methods.py            # the full toy world (cached after the demo)
    .venv/bin/python benchmarks/slice_methods.py --smoke    # tiny world, for tests

The baselines get PRIME's budget, as in notebook 05 (Fig. 5): as many slices per class as PRIME
found modes, failure directions' slices of PRIME's median mode size.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd


def measure(*, smoke: bool = False, seed: int = 0, repeat: int = 3) -> pd.DataFrame:
    """One row per method: best-of-``repeat`` seconds, groups found, ratio to PRIME."""
    from primekit.baselines import (
        domino_slices,
        failure_direction_slices,
        phrase_vocabulary,
        prime_budget,
    )
    from primekit.study import load_study
    from primekit.sweeps import paper_search

    study = load_study("toyworld", smoke=smoke, seed=seed)
    search = paper_search(smoke, min_size=None, min_drop=None, max_tags=4)
    split = study.val
    embeddings = study.image_embeddings("val")
    modes = study.find_failure_modes("val", **search)  # also compiles / loads the numba kernels
    budget = prime_budget(modes)
    phrases = phrase_vocabulary(list(split.tags.columns))
    phrase_embeddings = study.encode_text(phrases)
    common = (embeddings, split.tags.index, split.labels, split.correct)
    runs = {
        "PRIME (exhaustive search)": lambda: study.find_failure_modes("val", **search),
        "DOMINO": lambda: domino_slices(
            *common, phrases=phrases, phrase_embeddings=phrase_embeddings, n_slices=budget["n_modes"],
            n_mixture_components=25, seed=seed,
        ),
        "failure directions (one per mode)": lambda: failure_direction_slices(
            *common, captions=phrases, caption_embeddings=phrase_embeddings, top_k=budget["median_size"],
            n_directions=budget["n_modes"],
        ),
        "failure directions (published: one per class)": lambda: failure_direction_slices(
            *common, captions=phrases, caption_embeddings=phrase_embeddings, top_k=budget["median_size"],
        ),
    }
    rows = []
    for name, run in runs.items():
        best, out = float("inf"), None
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = run()
            best = min(best, time.perf_counter() - t0)
        rows.append({"method": name, "seconds": best, "groups": len(out)})
    table = pd.DataFrame(rows)
    table["x PRIME"] = table["seconds"] / table["seconds"].iloc[0]
    table.attrs["n_images"] = len(split.labels)
    return table


def markdown(table: pd.DataFrame) -> str:
    lines = ["| method | seconds | × PRIME | groups |", "|---|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.method} | {r.seconds:.3f} | {r[3]:,.0f}× | {r.groups} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny world (tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method (best of)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat: must be >= 1")
    table = measure(smoke=args.smoke, seed=args.seed, repeat=args.repeat)
    print(f"toy world val, {table.attrs['n_images']:,} images (best of {args.repeat})\n")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
