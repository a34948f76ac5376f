"""The embedded toy world: rendered images with planted failures, its models, and the ground truth.

Quick start::

    from primekit import toyworld as tw
    world = tw.build_world()                      # cached under $PRIMEKIT_HOME/toyworld/<key>/
    samples = tw.predict(world, "val")            # id, label, pred, correct, confidence, split, path
    tags = tw.learned_tags(world, "val")          # long id, tag, score table of the learned tagger
    truth = tw.ground_truth_tags(world, "val")    # ... or the ground truth (optionally noisy)

See ``primekit.demo.run_demo`` for the whole pipeline.
"""

from __future__ import annotations

from .clip import (
    CLIP_CONFIG,
    attribute_prompt,
    clip_dir,
    clip_zero_shot_auroc,
    load_clip,
    train_clip,
)
from .evaluate import (
    evaluate_recovery,
    ground_truth_tags,
    mode_accuracy_on,
    oracle_modes,
    recovery,
    tagger_quality,
)
from .render import ATTRIBUTE_GROUPS, ATTRIBUTES, CLASSES, IMAGE_SIZE, render
from .sampling import HOME_SCENE, PLANTED, sample_attributes
from .train import (
    POSE_TAGS,
    TEXTURE_TAGS,
    ClassifierConfig,
    TaggerConfig,
    learned_tags,
    predict,
    predict_images,
    train_classifier,
    train_tagger,
)
from .world import (
    SPLITS,
    ToyWorld,
    WorldConfig,
    build_world,
    load_world,
    primekit_home,
    render_matching,
)

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_GROUPS",
    "CLASSES",
    "CLIP_CONFIG",
    "HOME_SCENE",
    "IMAGE_SIZE",
    "PLANTED",
    "SPLITS",
    "ClassifierConfig",
    "POSE_TAGS",
    "TEXTURE_TAGS",
    "TaggerConfig",
    "ToyWorld",
    "WorldConfig",
    "attribute_prompt",
    "build_world",
    "clip_dir",
    "clip_zero_shot_auroc",
    "evaluate_recovery",
    "ground_truth_tags",
    "learned_tags",
    "load_clip",
    "load_world",
    "mode_accuracy_on",
    "oracle_modes",
    "predict",
    "predict_images",
    "primekit_home",
    "recovery",
    "render",
    "render_matching",
    "sample_attributes",
    "tagger_quality",
    "train_classifier",
    "train_clip",
    "train_tagger",
]
