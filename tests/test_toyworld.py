"""The toy world: deterministic rendering, images that look like their tags, planted failures,
cached splits on disk, the taggers and the tiny CLIP (smoke sizes throughout)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from primekit import toyworld as tw


@pytest.fixture(scope="module")
def world(primekit_home):
    return tw.build_world(home=primekit_home, smoke=True)


# --------------------------------------------------------------------------- rendering
def test_world_has_enough_classes_and_attributes():
    assert len(tw.CLASSES) >= 6
    assert len(tw.ATTRIBUTES) >= 30
    assert len(set(tw.ATTRIBUTES)) == len(tw.ATTRIBUTES)
    for group in ("scene", "weather", "colour", "size", "texture", "pose", "objects", "degradation"):
        assert tw.ATTRIBUTE_GROUPS[group]


def test_sampling_and_rendering_are_deterministic():
    a = tw.sample_attributes(40, seed=7)
    b = tw.sample_attributes(40, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(tw.sample_attributes(40, seed=8))
    img = tw.render(a)
    assert img.shape == (40, 64, 64, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, tw.render(b))
    # a row renders the same alone as in a batch
    np.testing.assert_array_equal(img[5:6], tw.render(a.iloc[5:6]))


def test_exclusive_groups_hold_one_value():
    a = tw.sample_attributes(500, seed=1)
    assert (a[list(tw.ATTRIBUTE_GROUPS["scene"])].sum(axis=1) == 1).all()
    assert (a[list(tw.ATTRIBUTE_GROUPS["colour"])].sum(axis=1) == 1).all()
    assert (a[["small", "large"]].sum(axis=1) <= 1).all()
    assert not (a["indoor"] & (a["fog"] | a["tree"])).any()


def _mean(images):
    return images.astype(float).mean()


def test_images_look_like_their_tags():
    def imgs(cls, tags, seed=0, **force):
        table = tw.sample_attributes(24, seed=seed, cls=cls, force={**{t: True for t in tags}, **force})
        return tw.render(table)

    base = dict(night=False, fog=False, rain=False, blurry=False, grainy=False, **{"low contrast": False})
    # night is dark, snow is bright, water is blue, grass is green (ground rows)
    assert _mean(imgs("car", ["night"])) < 0.6 * _mean(imgs("car", [], **{k: v for k, v in base.items() if k != "night"}))
    snow = imgs("fish", ["snow"], **base)[:, 56:].astype(float)
    water = imgs("fish", ["water"], **base)[:, 56:].astype(float)
    grass = imgs("fish", ["grass"], **base)[:, 56:].astype(float)
    assert snow.mean() > water.mean() + 60
    assert water[..., 2].mean() > water[..., 0].mean() + 50
    assert grass[..., 1].mean() > grass[..., 2].mean() + 40
    # blur removes, grain adds high-frequency energy
    def hf(x):
        return np.abs(np.diff(x.astype(float), axis=2)).mean()

    plain = imgs("house", [], seed=3, **base)
    assert hf(imgs("house", ["blurry"], seed=3, **{k: v for k, v in base.items() if k != "blurry"})) < 0.8 * hf(plain)
    assert hf(imgs("house", ["grainy"], seed=3, **{k: v for k, v in base.items() if k != "grainy"})) > 1.5 * hf(plain)
    # low contrast shrinks the spread of pixel values
    low = imgs("bird", ["low contrast"], **{k: v for k, v in base.items() if k != "low contrast"})
    assert low.astype(float).std(axis=(1, 2, 3)).mean() < 0.5 * imgs("bird", [], **base).astype(float).std(axis=(1, 2, 3)).mean()
    # a red object has strongly red pixels, a blue one does not
    red = imgs("cup", ["red", "indoor", "large"], **base).astype(int)
    blue = imgs("cup", ["blue", "indoor", "large"], **base).astype(int)
    assert ((red[..., 0] - red[..., 2]) > 120).mean() > 0.05
    assert ((blue[..., 0] - blue[..., 2]) > 120).mean() < 0.01
    # left/right position moves the object
    left = imgs("flower", ["left", "large", "indoor"], **base).astype(float)
    right = imgs("flower", ["right", "large", "indoor"], **base).astype(float)
    assert np.abs(left - right)[:, :, :24].mean() > 4 and np.abs(left - right)[:, :, 40:].mean() > 4


def test_render_matching_forces_tags():
    images, table = tw.render_matching("bird", ["snow", "night", "small"], 16, seed=2)
    assert images.shape == (16, 64, 64, 3)
    assert (table["label"] == "bird").all()
    assert table[["snow", "night", "small"]].all().all()
    assert table["rain"].any() or table["tree"].any() or table["striped"].any()  # others still vary


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"cls": "zebra", "tags": ["snow"]}, "cls"),
        ({"cls": "bird", "tags": ["plaid"]}, "tags"),
        ({"cls": "bird", "tags": ["snow", "water"]}, "tags"),
    ],
)
def test_render_matching_rejects_bad_input(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        tw.render_matching(n=2, **kwargs)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n:"):
        tw.sample_attributes(-1)
    with pytest.raises(ValueError, match="distribution"):
        tw.sample_attributes(3, distribution="weird")
    with pytest.raises(ValueError, match="frame"):
        tw.render(pd.DataFrame({"label": ["bird"]}))
    with pytest.raises(ValueError, match="n_oracle"):
        tw.WorldConfig(n_val=100, n_oracle=500)


# --------------------------------------------------------------------------- planted failures
def test_training_split_is_biased_and_planted_conjunctions_are_absent():
    train = tw.sample_attributes(6000, seed=0, distribution="train")
    nature = tw.sample_attributes(6000, seed=0)
    for cls, tags, share in tw.PLANTED:
        if share == 0:
            m_train = (train["label"] == cls) & train[list(tags)].all(axis=1)
            assert m_train.sum() == 0, (cls, tags)
    home_train = np.mean([r[tw.HOME_SCENE[r["label"]]] for _, r in train.head(2000).iterrows()])
    home_nature = np.mean([r[tw.HOME_SCENE[r["label"]]] for _, r in nature.head(2000).iterrows()])
    assert home_train > home_nature + 0.08
    sizes = {len(tags) for _, tags, _ in tw.PLANTED}
    assert {1, 2, 3} <= sizes


# --------------------------------------------------------------------------- the world on disk
def test_build_world_caches_splits_and_images(world, primekit_home):
    cfg = world.config
    for split in tw.SPLITS:
        assert len(world.samples(split)) == cfg.size(split)
    assert cfg.n_oracle >= 10 * cfg.n_val
    manifest = world.manifest()
    assert list(manifest.columns) == ["id", "path", "label", "split"]
    assert set(manifest["split"]) == {"val", "test"}
    from PIL import Image

    row = manifest.iloc[3]
    png = np.asarray(Image.open(row["path"]).convert("RGB"))
    np.testing.assert_array_equal(png, world.images(row["split"], [row["id"]])[0])
    # reopening reuses the folder; other settings get another folder
    again = tw.build_world(home=primekit_home, smoke=True)
    assert again.root == world.root
    assert tw.load_world(world.root).config == cfg
    other = dataclasses.replace(cfg, seed=cfg.seed + 1)
    assert other.key != cfg.key
    assert world.root.parent == Path(primekit_home) / "toyworld"


def test_attributes_and_mode_images(world):
    attrs = world.attributes("val")
    assert list(attrs.columns) == list(tw.ATTRIBUTES) and attrs.dtypes.eq(bool).all()
    cls, tag = "fish", "water"
    ids = world.mode_ids("val", cls, [tag])
    assert ids and all(attrs.loc[i, tag] for i in ids)
    assert world.mode_images("val", cls, [tag], n=3).shape == (min(3, len(ids)), 64, 64, 3)
    caption = world.captions("val", ids[:1])[0]
    assert caption.startswith("fish: ") and "water" in caption


# --------------------------------------------------------------------------- models and taggers
@pytest.fixture(scope="module")
def smoke_predictions(world):
    cfg = tw.ClassifierConfig(epochs=2)
    return cfg, tw.predict(world, "val", config=cfg)


def test_classifier_predictions_follow_the_samples_contract(world, smoke_predictions):
    cfg, val = smoke_predictions
    assert list(val.columns) == ["id", "label", "pred", "correct", "confidence", "split", "path"]
    assert len(val) == world.config.n_val
    assert (val["correct"] == (val["label"] == val["pred"])).all()
    assert val["correct"].mean() > 1.5 / len(tw.CLASSES)  # far above chance even after 2 epochs
    assert val["path"].map(lambda p: Path(p).is_file()).all()
    # cached: the second call reads the file
    pd.testing.assert_frame_equal(val, tw.predict(world, "val", config=cfg))


def test_failures_are_found_on_the_smoke_world(world, smoke_predictions):
    from primekit import find_failure_modes

    _, val = smoke_predictions
    v = val.set_index("id")
    modes = find_failure_modes(world.attributes("val"), v["label"], v["correct"], min_size=10)
    assert len(modes) >= 1


def test_ground_truth_tagger_with_noise(world):
    clean = tw.ground_truth_tags(world, "val")
    assert list(clean.columns) == ["id", "tag", "score"] and (clean["score"] == 1).all()
    assert len(clean) == int(world.attributes("val").to_numpy().sum())
    assert len(tw.ground_truth_tags(world, "val", drop_rate=1.0)) == 0
    noisy = tw.ground_truth_tags(world, "val", drop_rate=0.2, add_rate=0.01, seed=1)
    assert 0.7 * len(clean) < len(noisy) < 1.05 * len(clean)
    pd.testing.assert_frame_equal(noisy, tw.ground_truth_tags(world, "val", drop_rate=0.2, add_rate=0.01, seed=1))
    with pytest.raises(ValueError, match="drop_rate"):
        tw.ground_truth_tags(world, "val", drop_rate=2)


#: A cheap tagger for the smoke world's tests (the default trains its three networks 8/6/8 epochs).
SMOKE_TAGGER = {"epochs": 6, "texture_epochs": 3, "pose_epochs": 3, "seed": 1}


def test_learned_tagger_writes_the_tag_table(world):
    from primekit.tags import tags_to_matrix

    cfg = tw.TaggerConfig(**SMOKE_TAGGER)
    tags = tw.learned_tags(world, "val", config=cfg)
    assert list(tags.columns) == ["id", "tag", "score"]
    assert tags["score"].between(0, 1).all() and set(tags["tag"]) <= set(tw.ATTRIBUTES)
    truth = world.attributes("val")
    quality = tw.tagger_quality(tags_to_matrix(tags, ids=truth.index), truth)
    assert list(quality.columns) == ["precision", "recall", "f1", "support"]
    assert quality["support"].sum() > 0 and quality["recall"].fillna(0).between(0, 1).all()
    assert tags["score"].std() > 0.01  # a trained network, not a constant


def test_learned_tagger_is_an_appearance_a_texture_and_a_pose_network(world):
    import torch

    cfg = tw.TaggerConfig(**SMOKE_TAGGER)
    model = tw.train_tagger(world, config=cfg)
    texture = [tw.ATTRIBUTES.index(t) for t in tw.TEXTURE_TAGS]
    pose = [tw.ATTRIBUTES.index(t) for t in tw.POSE_TAGS]
    assert model.tag_idx_["texture"] == texture and model.tag_idx_["pose"] == pose
    assert sorted(sum(model.tag_idx_.values(), [])) == list(range(len(tw.ATTRIBUTES)))
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        parts = {name: getattr(model, name)(x) for name in ("appearance", "texture", "pose")}
    assert logits.shape == (5, len(tw.ATTRIBUTES))
    # every tag comes from its own network, in ATTRIBUTES order
    for name, part in parts.items():
        torch.testing.assert_close(logits[:, model.tag_idx_[name]], part)
    with pytest.raises(ValueError, match="images"):
        model(torch.randn(2, 3, 16, 16))


def test_the_fine_stem_keeps_one_pixel_detail():
    """The texture and pose networks' first convolution runs at the input resolution (no stride),
    at 64 or 32 pixels; the appearance network's has stride 2."""
    import torch

    from primekit.toyworld.train import _net

    fine = _net(2, 8, 64, fine=True)
    first = fine[0]
    assert isinstance(first, torch.nn.Conv2d) and first.stride == (1, 1) and first.kernel_size == (3, 3)
    assert _net(2, 8, 64)[0].stride == (2, 2)  # the appearance network's strided stem
    assert fine(torch.randn(2, 3, 64, 64)).shape == (2, 2) and _net(2, 8, 32, fine=True)(torch.randn(2, 3, 32, 32)).shape == (2, 2)


def test_mirroring_flips_a_random_half_of_a_batch():
    import torch

    from primekit.toyworld.train import _mirrored

    x = torch.arange(40 * 4, dtype=torch.float32).reshape(40, 1, 1, 4)
    out = _mirrored(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).all(-1).flatten()
    assert ((out == x).all(-1).flatten() | flipped).all() and 10 < int(flipped.sum()) < 30


def test_learned_tagger_reloads_the_weights_it_trained(world):
    import torch

    cfg = tw.TaggerConfig(epochs=1, texture_epochs=1, pose_epochs=1, size=32, texture_size=32, pose_size=32, seed=7)  # no other test trains this one
    fresh = tw.train_tagger(world, config=cfg)
    assert np.isfinite(fresh.train_seconds_)
    again = tw.train_tagger(world, config=cfg)
    assert np.isnan(again.train_seconds_)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), fresh(x))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"pose_size": 48}, "pose_size"),
        ({"pose_epochs": 0}, "pose_epochs"),
        ({"texture_size": 16}, "texture_size"),
        ({"texture_width": 0}, "texture_width"),
        ({"size": 16}, "size"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"width": 2.5}, "width"),
        ({"lr": 0}, "lr"),
        ({"seed": -1}, "seed"),
    ],
)
def test_tagger_config_rejects_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        tw.TaggerConfig(**kwargs)
    assert tw.TaggerConfig().key != tw.TaggerConfig(pose_epochs=3).key


def test_tagger_key_changes_with_the_pose_and_texture_tags(monkeypatch):
    from primekit.toyworld import train

    before = tw.TaggerConfig().key
    monkeypatch.setattr(train, "POSE_TAGS", ("left",))
    assert tw.TaggerConfig().key != before
    monkeypatch.undo()
    monkeypatch.setattr(train, "TEXTURE_TAGS", ("striped",))
    assert tw.TaggerConfig().key != before
    with pytest.raises(ValueError, match="epochs"):
        tw.ClassifierConfig(epochs=0)
    # numpy integers are stored as ints (the key is JSON)
    assert tw.ClassifierConfig(epochs=np.int64(3)).key == tw.ClassifierConfig(epochs=3).key


def test_recovery_of_the_oracle_modes_by_themselves_is_perfect(world, smoke_predictions):
    cfg, _ = smoke_predictions
    oracle = tw.predict(world, "oracle", config=cfg).set_index("id")
    attrs = world.attributes("oracle")
    modes = tw.oracle_modes(attrs, oracle["label"], oracle["correct"], min_size=100, min_drop=0.3)
    result = tw.recovery(modes, attrs, oracle["label"], oracle["correct"], size_ratio=1.0, min_size=100, min_drop=0.3, drop_margin=0.0, necessity_margin=0.0)
    if len(modes):
        assert result["strict_precision"] == 1.0 and result["strict_recall"] == 1.0 and result["precision"] == 1.0


def test_tiny_clip_loads_through_open_clip_local_dir(world, primekit_home):
    import open_clip
    import torch

    path = tw.clip_dir(primekit_home, world=world, smoke=True)
    assert (path / "open_clip_config.json").is_file()
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{path}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    from PIL import Image

    image = preprocess(Image.fromarray(world.images("test", [world.samples("test")["id"][0]])[0])).unsqueeze(0)
    with torch.no_grad():
        img = model.encode_image(image, normalize=True)
        txt = model.encode_text(tokenizer(["a photo of night", "a photo of a bird"]), normalize=True)
    assert img.shape == (1, 128) and txt.shape == (2, 128)
    auroc = tw.clip_zero_shot_auroc(path, world, max_images=200)
    assert set(auroc.index) == set(tw.ATTRIBUTES) and auroc["auroc"].dropna().between(0, 1).all()


def test_uint8_training_images_scale_like_the_float_path(world):
    """The tagger keeps its training images as uint8 and scales each batch: the same tensors."""
    import torch

    from primekit.toyworld.train import _prep, _render_u8, _scaled

    table = world.table("val").iloc[:40]
    u8 = _render_u8(table, False, "")
    assert u8.dtype == torch.uint8 and u8.shape == (40, 3, 64, 64)
    images = tw.render(table)
    torch.testing.assert_close(_scaled(u8[5:17]), _prep(images, 64)[5:17], rtol=0, atol=0)


def test_inference_folds_batch_norms_and_keeps_the_logits():
    """Classifying and tagging run a copy with batch norms folded into the convolutions in
    channels-last layout: the same logits to float rounding, the network itself untouched."""
    import torch

    from primekit.toyworld.train import TaggerConfig, _inference_copy, _logits, _net, _tagger_net

    torch.manual_seed(0)
    clf = _net(len(tw.CLASSES), 8, 32)
    with torch.no_grad():  # batch norms with real statistics, so folding them changes weights
        for m in clf.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    x = torch.randn(37, 3, 32, 32)
    clf.eval()
    with torch.no_grad():
        want = clf(x)
    fast = _inference_copy(clf)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in clf.modules()) == 4  # the original keeps them
    torch.testing.assert_close(_logits(clf, x, batch_size=10), want, atol=1e-4, rtol=1e-4)
    tagger = _tagger_net(TaggerConfig(width=8, texture_width=8, pose_width=8)).eval()
    x64 = torch.randn(9, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(_logits(tagger, x64), tagger(x64), atol=1e-4, rtol=1e-4)
    clf.train()
    assert _inference_copy(clf) is clf  # a network in training is not folded
    assert _logits(clf.eval(), x[:0]).numel() == 0
