"""The toy world's attribute distributions: the natural one and the biased training one.

The natural distribution (val, test, oracle, tagger splits and :func:`render_matching`) is a small
factorised model: class, then scene given class, then the other factors. The training split of the
classifier is drawn from a *biased* version of it (the planted failures):

- spurious correlations: each class sits in its "home" scene 60% of the time in training but 30% in
  nature, and has its favourite colour 50% of the time in training but 40% in nature, so the
  classifier learns background and colour as cues;
- rare conjunctions: some (class, attributes) combinations are never shown in training
  (:data:`PLANTED`), with one, two and three attributes; the search also finds their emergent supersets
  (e.g. a small blue fish in water) and failures nobody planted.

Which subpopulations really fail is emergent (it depends on the trained network); the oracle split
measures it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .render import ATTRIBUTE_GROUPS, ATTRIBUTES, CLASSES, COLOURS, IMAGE_SIZE, SCENES

__all__ = ["HOME_SCENE", "PLANTED", "FAVOURITE_COLOUR", "sample_attributes", "check_tags"]

#: The scene each class is spuriously tied to in the training split.
HOME_SCENE: dict[str, str] = {
    "bird": "sand",
    "car": "road",
    "cup": "indoor",
    "fish": "water",
    "flower": "grass",
    "house": "snow",
}
#: (class, attributes, share kept in training) — conjunctions made rare in the training split.
#: Each was chosen because it changes how the object looks in a way training never shows: another
#: class's favourite colour (the colour is a spurious cue, :data:`FAVOURITE_COLOUR`), a pose, or
#: camouflage against the home scene. Whether and how badly each fails is emergent; the oracle
#: split measures it (and finds failures that were never planted, e.g. small occluded objects).
PLANTED: tuple[tuple[str, tuple[str, ...], float], ...] = (
    # another class's favourite colour
    ("bird", ("green",), 0.0),
    ("cup", ("black",), 0.0),
    ("flower", ("yellow",), 0.0),
    # pose, alone and with size
    ("bird", ("upside down",), 0.0),
    ("house", ("upside down",), 0.0),
    ("car", ("small", "upside down"), 0.0),
    # camouflage: a blue fish in blue water, a small white cup against the light indoor wall
    ("fish", ("blue", "water"), 0.0),
    ("cup", ("indoor", "small", "white"), 0.0),
)
#: Each class's favourite colour (drawn with probability _P_FAVOURITE, else uniformly).
FAVOURITE_COLOUR: dict[str, str] = {
    "bird": "yellow",
    "car": "black",
    "cup": "white",
    "fish": "blue",
    "flower": "green",
    "house": "white",
}
_P_FAVOURITE = {"natural": 0.4, "train": 0.5}
_P_HOME = {"natural": 0.3, "train": 0.6}
_BINARY = {
    "night": 0.12,
    "fog": 0.08,
    "rain": 0.08,
    "upside down": 0.1,
    "tree": 0.2,
    "cloud": 0.2,
    "fence": 0.15,
    "rock": 0.15,
    "blurry": 0.08,
    "occluded": 0.1,
    "low contrast": 0.08,
    "grainy": 0.08,
}
_OUTDOOR_ONLY = ("fog", "rain", "tree", "cloud", "fence", "rock")
_CATEGORICAL = {
    "size": (("small", 0.35), ("large", 0.2)),
    "texture": (("striped", 0.2), ("spotted", 0.2)),
    "position": (("left", 0.25), ("right", 0.25)),
}
_SCALE = {"small": 8.5, "medium": 11.5, "large": 15.0}


def check_tags(tags: Iterable[str], *, argument: str = "tags") -> tuple[str, ...]:
    """Validate attribute names (and that no two come from one exclusive group)."""
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(tags)
    unknown = [t for t in tags if t not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"{argument}: unknown attribute(s) {unknown}; see primekit.toyworld.ATTRIBUTES")
    from .render import EXCLUSIVE_GROUPS

    for group in (*EXCLUSIVE_GROUPS, "position"):
        members = ("left", "right") if group == "position" else ATTRIBUTE_GROUPS[group]
        both = [t for t in tags if t in members]
        if len(both) > 1:
            raise ValueError(f"{argument}: {both} are mutually exclusive")
    return tags


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    r = rng.random((len(probs), 1)) * cum[:, -1:]
    return (r >= cum).sum(axis=1)


def _draw(
    n: int,
    rng: np.random.Generator,
    distribution: str,
    labels: np.ndarray,
    force: Mapping[str, bool],
) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {"label": labels}
    home = np.array([SCENES.index(HOME_SCENE[c]) for c in labels])
    p_home = _P_HOME[distribution]
    probs = np.full((n, len(SCENES)), (1 - p_home) / (len(SCENES) - 1))
    probs[np.arange(n), home] = p_home
    forced_scene = [s for s in SCENES if force.get(s)]
    scene_idx = _categorical(rng, probs)
    if forced_scene:
        scene_idx[:] = SCENES.index(forced_scene[0])
    else:
        banned = [SCENES.index(s) for s in SCENES if force.get(s) is False]
        if banned:
            probs[:, banned] = 0
            scene_idx = _categorical(rng, probs)
    scene = np.asarray(SCENES, dtype=object)[scene_idx]
    if any(force.get(t) for t in _OUTDOOR_ONLY) and not forced_scene:
        # outdoor-only attributes were asked for: redraw indoor scenes among the others
        indoor = scene == "indoor"
        p2 = probs[indoor].copy()
        p2[:, SCENES.index("indoor")] = 0
        scene[indoor] = np.asarray(SCENES, dtype=object)[_categorical(rng, p2)]
    for s in SCENES:
        out[s] = scene == s
    outdoor = scene != "indoor"
    colour = np.asarray(tuple(COLOURS), dtype=object)[rng.integers(0, len(COLOURS), n)]
    favourite = rng.random(n) < _P_FAVOURITE[distribution]
    colour[favourite] = np.asarray([FAVOURITE_COLOUR[c] for c in labels[favourite]], dtype=object)
    forced_colour = [c for c in COLOURS if force.get(c)]
    if forced_colour:
        colour[:] = forced_colour[0]
    else:
        banned = [c for c in COLOURS if force.get(c) is False]
        allowed = [c for c in COLOURS if c not in banned]
        if banned:
            bad = np.isin(colour, banned)
            colour[bad] = np.asarray(allowed, dtype=object)[rng.integers(0, len(allowed), bad.sum())]
    for c in COLOURS:
        out[c] = colour == c
    cats: dict[str, np.ndarray] = {}
    for group, options in _CATEGORICAL.items():
        names = [o for o, _ in options]
        p = np.array([q for _, q in options] + [1 - sum(q for _, q in options)])
        p = np.broadcast_to(p, (n, len(p))).copy()
        for i, name in enumerate(names):
            if force.get(name) is False:
                p[:, i] = 0
        if any(force.get(name) for name in names):
            p[:] = 0
            p[:, [i for i, name in enumerate(names) if force.get(name)][0]] = 1
        elif all(force.get(name) is False for name in names):
            p[:] = 0
            p[:, -1] = 1
        idx = _categorical(rng, p)
        cats[group] = np.asarray([*names, "none"], dtype=object)[idx]
        for name in names:
            out[name] = cats[group] == name
    for name, q in _BINARY.items():
        draw = rng.random(n) < q
        if name in force:
            draw[:] = bool(force[name])
        if name in _OUTDOOR_ONLY:
            draw &= outdoor
        out[name] = draw
    # nuisance parameters (continuous, not tags)
    size = np.where(out["small"], "small", np.where(out["large"], "large", "medium"))
    scale = np.array([_SCALE[s] for s in size], np.float32) * rng.uniform(0.92, 1.08, n).astype(np.float32)
    cx = np.where(out["left"], 17.0, np.where(out["right"], 47.0, 32.0)) + rng.uniform(-3, 3, n)
    horizon = rng.uniform(18, 26, n)
    cy = horizon + rng.uniform(8, 16, n)
    cy = np.clip(cy, scale * 1.3, IMAGE_SIZE - scale * 1.3)
    out.update(
        _cx=cx.astype(np.float32),
        _cy=cy.astype(np.float32),
        _scale=scale,
        _hflip=np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32),
        _jitter=np.clip(rng.normal(0, 1, n), -2, 2).astype(np.float32),
        _noise=rng.integers(0, 16, n).astype(np.int16),
        _ox=rng.integers(0, IMAGE_SIZE, n).astype(np.int16),
        _oy=rng.integers(0, IMAGE_SIZE, n).astype(np.int16),
        _horizon=horizon.astype(np.float32),
    )
    frame = pd.DataFrame(out)
    frame.insert(1, "scene", scene)
    return frame


def _planted_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows that fall in a planted rare conjunction, with their keep probability."""
    keep = np.ones(len(frame))
    for cls, tags, share in PLANTED:
        m = (frame["label"] == cls).to_numpy().copy()
        for t in tags:
            m &= frame[t].to_numpy()
        keep[m] = np.minimum(keep[m], share)
    return keep


def sample_attributes(
    n: int,
    *,
    seed: int = 0,
    distribution: str = "natural",
    cls: str | None = None,
    force: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """Draw ``n`` attribute rows (ready for :func:`render`).

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
        Seed of the draw (same arguments, same rows).
    distribution : {"natural", "train"}
        ``"train"`` is the biased distribution of the classifier's training split (home scenes
        over-represented, :data:`PLANTED` conjunctions removed).
    cls : str, optional
        Draw only this class (default: classes uniformly at random).
    force : mapping attribute -> bool, optional
        Attributes fixed to True/False; the others follow the (conditional) distribution.

    Returns
    -------
    DataFrame, shape (n, ...)
        Columns ``label, scene``, one boolean column per attribute of :data:`ATTRIBUTES`, and the
        nuisance columns (``_cx``, ``_scale``, ...) used by the renderer.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    if distribution not in _P_HOME:
        raise ValueError(f"distribution: expected 'natural' or 'train', got {distribution!r}")
    if cls is not None and cls not in CLASSES:
        raise ValueError(f"cls: unknown class {cls!r}; expected one of {CLASSES}")
    force = dict(force or {})
    check_tags([t for t, v in force.items() if v], argument="force")
    unknown = [t for t in force if t not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"force: unknown attribute(s) {unknown}")
    rng = np.random.default_rng([int(seed), 0 if distribution == "natural" else 1])
    parts: list[pd.DataFrame] = []
    have = 0
    while have < n:
        m = max(int((n - have) * 1.15) + 16, 64)
        labels = (
            np.full(m, cls, dtype=object)
            if cls is not None
            else np.asarray(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), m)]
        )
        frame = _draw(m, rng, distribution, labels, force)
        if distribution == "train":
            frame = frame[rng.random(m) < _planted_mask(frame)]
        parts.append(frame)
        have += len(frame)
    out = pd.concat(parts, ignore_index=True).iloc[:n].reset_index(drop=True)
    return out
