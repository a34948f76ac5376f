"""RAM / RAM++ adapter: its logic, with a stand-in ``ram`` package (the real package: see
test_tagging_ram_upstream.py)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from primekit.tagging import ram as ram_adapter
from primekit.tagging import tag_images

torch.set_num_threads(1)


# ---------------------------------------------------------------- stand-in ``ram`` package
class _FakeRamPlus(torch.nn.Module):
    """Mimics RAM++'s inference surface: image -> per-image softmax reweighting of several
    description embeddings per tag (``label_embed``, (n_tags * per_tag, dim)) -> a head that treats
    every tag query on its own -> fc -> thresholded strings, ``delete_tag_index`` zeroed."""

    def __init__(
        self, image_size=384, vit="swin_l", text_encoder_type="bert-base-uncased", n_tags=6,
        delete_tag_index=(), per_tag=3, width=32, **kw
    ):
        super().__init__()
        assert (Path(text_encoder_type) / "vocab.txt").is_file()  # offline tokenizer folder
        self.backbone = torch.nn.Linear(3, width)
        self.fc = torch.nn.Linear(width, 1)
        self.tag_list = np.array([f"tag{i}" for i in range(n_tags)])
        self.num_class = n_tags
        self.label_embed = torch.nn.Parameter(torch.randn(n_tags * per_tag, width))
        self.class_threshold = torch.linspace(0.3, 0.7, n_tags)
        self.delete_tag_index = list(delete_tag_index)

    def _strings(self, image):
        feats = torch.nn.functional.normalize(self.backbone(image.mean(dim=(2, 3))), dim=-1)
        per_tag = self.label_embed.shape[0] // self.num_class
        slots = self.label_embed.view(self.num_class, per_tag, -1)
        weights = torch.softmax(torch.einsum("bd,tkd->btk", feats, slots), dim=2)
        label = torch.einsum("btk,tkd->btd", weights, slots)
        logits = self.fc(feats[:, None, :] * label).squeeze(-1)  # (b, n_tags)
        tags = (torch.sigmoid(logits) > self.class_threshold).numpy()
        tags[:, self.delete_tag_index] = False
        return [" | ".join(self.tag_list[np.nonzero(t)[0]]) for t in tags]

    def generate_tag(self, image):
        return self._strings(image), None

    def generate_tag_openset(self, image):
        return self._strings(image)


class _Msg:
    def __init__(self, missing, unexpected):
        self.missing_keys, self.unexpected_keys = missing, unexpected


def _fake_loader(model, path, kwargs):
    sd = torch.load(path)["model"]  # as RAM's loaders do: torch's default
    res = model.load_state_dict(sd, strict=False)
    return model, _Msg(list(res.missing_keys), list(res.unexpected_keys))


@pytest.fixture
def fake_ram(monkeypatch, tmp_path):
    pkg = types.ModuleType("ram")
    models = types.ModuleType("ram.models")
    rp = types.ModuleType("ram.models.ram_plus")
    rr = types.ModuleType("ram.models.ram")
    ut = types.ModuleType("ram.models.utils")
    rp.RAM_plus = rr.RAM = _FakeRamPlus
    ut.load_checkpoint_swinlarge = ut.load_checkpoint_swinbase = _fake_loader
    ut.load_checkpoint = lambda m, p: _fake_loader(m, p, {})
    ut.CONFIG_PATH = tmp_path / "ramcfg"
    (ut.CONFIG_PATH / "data").mkdir(parents=True)
    (ut.CONFIG_PATH / "data" / "ram_tag_list_threshold.txt").write_text("0.5\n" * 6)
    (ut.CONFIG_PATH / "utils").mkdir()
    (ut.CONFIG_PATH / "utils" / "openset_utils.py").write_text(
        'multiple_templates = ["a photo of {article} {}.", "itap of the {}.", "{}"]\n'
    )
    pkg.__path__ = [str(ut.CONFIG_PATH)]
    models.ram_plus, models.ram, models.utils = rp, rr, ut
    pkg.models = models
    pkg.get_transform = lambda image_size=384: (
        lambda im: torch.from_numpy(
            np.asarray(im.resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255
        )
    )
    tf = types.ModuleType("transformers")
    tf.__version__ = "4.55.0"
    for name, mod in {
        "ram": pkg,
        "ram.models": models,
        "ram.models.ram_plus": rp,
        "ram.models.ram": rr,
        "ram.models.utils": ut,
        "transformers": tf,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setenv("PRIMEKIT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    ckpt = tmp_path / "ram_plus.pth"
    torch.save(
        {
            "model": _FakeRamPlus(
                text_encoder_type=str(ram_adapter.placeholder_vocab_dir())
            ).state_dict()
        },
        ckpt,
    )
    return ckpt


def _images(tmp_path, n=7):
    from PIL import Image

    rng = np.random.default_rng(1)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_probabilities_come_from_the_head_for_every_image_of_a_batch(fake_ram):
    tagger = ram_adapter.RamTagger(fake_ram)
    batch = torch.rand(5, 3, 8, 8)
    probs = tagger.forward(batch).numpy()
    strings, _ = tagger.model.generate_tag(batch)
    assert probs.shape == (5, 6)
    for row, s in zip(
        probs, strings, strict=False
    ):  # thresholded probabilities == generate_tag, all images
        present = [
            t
            for t, p, thr in zip(tagger.vocabulary, row, tagger.thresholds, strict=False)
            if p >= thr
        ]
        assert " | ".join(present) == s
    np.testing.assert_allclose(tagger.thresholds, np.linspace(0.3, 0.7, 6), rtol=1e-6)


def test_tag_images_uses_class_thresholds_by_default_and_user_thresholds_on_request(
    fake_ram, tmp_path
):
    folder = _images(tmp_path)
    tagger = ram_adapter.RamTagger(fake_ram)
    default = tag_images(folder, tagger, batch_size=3, progress=False)
    assert (
        default.groupby("tag")["score"].min()
        > default["tag"]
        .map(dict(zip(tagger.vocabulary, tagger.thresholds, strict=False)))
        .groupby(default["tag"])
        .max()
    ).all()
    everything = tag_images(folder, tagger, batch_size=3, threshold=0.0, progress=False)
    assert len(everything) == 7 * 6
    one = tag_images(folder, tagger, batch_size=3, threshold={"tag0": 1.0}, progress=False)
    assert "tag0" not in set(one["tag"])
    assert set(one["tag"]) == set(default["tag"]) - {"tag0"}
    # batch size does not change the numbers (batched, not first-image-only)
    b1 = tag_images(
        folder, tagger, batch_size=1, threshold=0.0, progress=False, cache_dir=tmp_path / "c1"
    )
    np.testing.assert_allclose(b1["score"], everything["score"], atol=1e-6)


def test_missing_or_unexpected_checkpoint_keys_fail_loudly(fake_ram, tmp_path):
    sd = torch.load(fake_ram)["model"]
    sd.pop("fc.weight")
    sd["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save({"model": sd}, bad)
    with pytest.raises(
        ValueError,
        match=r"checkpoint: .*1 missing key\(s\) \['fc.weight'\].*1 unexpected key\(s\) \['extra.weight'\]",
    ):
        ram_adapter.RamTagger(bad)
    ram_adapter.RamTagger(bad, strict=False)  # only a warning


def test_rebuilt_buffers_are_not_missing_keys():
    ram_adapter.check_load_result(
        ["layers.0.blocks.0.attn_mask", "a.relative_position_index"], [], checkpoint="x"
    )
    with pytest.raises(ValueError, match="missing"):
        ram_adapter.check_load_result(["head.weight"], [], checkpoint="x")


def test_absent_weights_say_where_to_get_them(tmp_path):
    with pytest.raises(ValueError, match="huggingface.co/xinyu1205/recognize-anything-plus-model"):
        ram_adapter.RamTagger(tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="recognize_anything_model"):
        ram_adapter.RamTagger(tmp_path / "nope.pth", variant="ram")


@pytest.mark.parametrize(
    ("version", "verdict"),
    [("4.55.4", "ok"), ("4.36.0", "ok"), ("4.56.0", "shim"), ("4.57.6", "shim")],
)
def test_transformers_versions(version, verdict):
    assert ram_adapter.check_transformers_version(version) == verdict


@pytest.mark.parametrize("version", ["4.58.0", "5.0.0"])
def test_transformers_versions_ram_cannot_import_get_a_message(version):
    with pytest.raises(ValueError, match=r"transformers<4.58"):
        ram_adapter.check_transformers_version(version)


def test_shim_copies_the_moved_helpers(monkeypatch):
    mu, pu = (
        types.ModuleType("transformers.modeling_utils"),
        types.ModuleType("transformers.pytorch_utils"),
    )
    for name in ram_adapter._SHIM_NAMES:
        setattr(pu, name, object())
    tf = types.ModuleType("transformers")
    tf.modeling_utils, tf.pytorch_utils = mu, pu
    monkeypatch.setitem(sys.modules, "transformers", tf)
    monkeypatch.setitem(sys.modules, "transformers.modeling_utils", mu)
    monkeypatch.setitem(sys.modules, "transformers.pytorch_utils", pu)
    assert sorted(ram_adapter.apply_transformers_shim()) == sorted(ram_adapter._SHIM_NAMES)
    assert mu.prune_linear_layer is pu.prune_linear_layer
    assert ram_adapter.apply_transformers_shim() == []  # idempotent


def test_placeholder_tokenizer_has_berts_size(tmp_path):
    folder = ram_adapter.placeholder_vocab_dir(tmp_path / "tok")
    lines = (folder / "vocab.txt").read_text().splitlines()
    assert (
        len(lines) == 30522
        and lines[0] == "[PAD]"
        and lines[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )


def test_pickled_checkpoints_need_the_explicit_opt_in(fake_ram, tmp_path):
    import argparse

    sd = torch.load(fake_ram)["model"]
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": sd, "args": argparse.Namespace(lr=1.0)}, pickled)  # a config object
    with pytest.raises(ValueError, match=r"not a weights-only checkpoint.*trust_pickle=True.*--trust-checkpoint"):
        ram_adapter.RamTagger(pickled)
    tagger = ram_adapter.RamTagger(pickled, trust_pickle=True)
    torch.testing.assert_close(tagger.model.fc.weight, sd["fc.weight"])
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ  # switches restored


def test_known_harmless_extra_keys_are_accepted_others_refused(fake_ram, tmp_path, caplog):
    sd = torch.load(fake_ram)["model"]
    sd["logit_scale"] = torch.tensor(4.6)  # in the released RAM++ file; RAM_plus has no such parameter
    extra = tmp_path / "extra.pth"
    torch.save({"model": sd}, extra)
    with caplog.at_level("INFO", logger="primekit.tagging.ram"):
        ram_adapter.RamTagger(extra)
    assert "logit_scale" in caplog.text
    sd["other_scale"] = torch.tensor(1.0)
    torch.save({"model": sd}, extra)
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\) \['other_scale'\]"):
        ram_adapter.RamTagger(extra)


def test_what_crashes_inside_ram_is_refused_first(fake_ram, tmp_path):
    short = tmp_path / "tags.txt"
    short.write_text("dog\ncat\n")
    with pytest.raises(ValueError, match=r"model_kwargs: 'tag_list' is not supported.*vocabulary="):
        ram_adapter.RamTagger(fake_ram, model_kwargs={"tag_list": str(short)})
    for size in (256, 448):
        with pytest.raises(ValueError, match=r"image_size: RAM's Swin backbones exist for 224 and 384"):
            ram_adapter.RamTagger(fake_ram, image_size=size)
    with pytest.raises(ValueError, match="model_kwargs: 'image_size' is a RamTagger argument"):
        ram_adapter.RamTagger(fake_ram, model_kwargs={"image_size": 224})
    with pytest.raises(ValueError, match=r"delete_tag_index must lie in \[0, 6\)"):
        ram_adapter.RamTagger(fake_ram, model_kwargs={"delete_tag_index": [6]})


def test_delete_tag_index_is_honoured(fake_ram, tmp_path):
    folder = _images(tmp_path)
    tagger = ram_adapter.RamTagger(fake_ram, model_kwargs={"delete_tag_index": [1, 4]})
    assert tagger.vocabulary == ["tag0", "tag2", "tag3", "tag5"] and len(tagger.thresholds) == 4
    table = tag_images(folder, tagger, batch_size=3, progress=False)
    from primekit.images import open_image

    for i in range(7):
        x = tagger.transform(open_image(folder / f"{i}.png"))[None]
        expected, _ = tagger.model.generate_tag(x)
        got = table.loc[table["id"] == f"{i}.png", "tag"].tolist()
        assert sorted(got) == sorted(t for t in expected[0].split(" | ") if t)


@pytest.fixture
def tiny_text_encoder(tmp_path):
    from _tiny_models import make_tiny_clip

    from primekit.clip import load_clip

    return load_clip(f"clip:local-dir:{make_tiny_clip(tmp_path / 'clip')}")


def test_open_set_tags_follow_rams_own_and_leave_them_unchanged(fake_ram, tiny_text_encoder):
    mine = ["rust", "hairline crack", "weld seam"]
    plain = ram_adapter.RamTagger(fake_ram)
    added = ram_adapter.RamTagger(fake_ram, vocabulary=mine, text_encoder=tiny_text_encoder)
    only = ram_adapter.RamTagger(fake_ram, vocabulary=mine, open_set="replace",
                                 text_encoder=tiny_text_encoder)
    assert added.vocabulary == plain.vocabulary + mine and only.vocabulary == mine
    np.testing.assert_allclose(added.thresholds[6:], 0.5)
    batch = torch.rand(5, 3, 8, 8)
    p_plain, p_added, p_only = (t.forward(batch).numpy() for t in (plain, added, only))
    np.testing.assert_allclose(p_added[:, :6], p_plain, rtol=1e-5)  # RAM's tags unchanged
    np.testing.assert_allclose(p_added[:, 6:], p_only, rtol=1e-5)  # slots of one tag == one slot
    assert p_only.std(axis=0).min() > 0  # the images differ, so the comparison means something
    # "replace" is RAM's open-set inference: label_embed, tag_list, num_class, class_threshold set
    # by hand as in RAM's inference_ram_plus_openset script, then generate_tag_openset
    model = _FakeRamPlus(text_encoder_type=str(ram_adapter.placeholder_vocab_dir()))
    model.load_state_dict(plain.model.state_dict())
    model.label_embed = torch.nn.Parameter(ram_adapter.open_set_embeddings(tiny_text_encoder, mine).float())
    model.tag_list, model.num_class = np.array(mine), len(mine)
    model.class_threshold = torch.ones(len(mine)) * 0.5
    with torch.no_grad():
        expected = model.generate_tag_openset(batch)
    got = [" | ".join(t for t, p in zip(mine, row, strict=True) if p > 0.5) for row in p_only]
    assert got == expected


def test_open_set_errors(fake_ram, tiny_text_encoder, tmp_path):
    with pytest.raises(ValueError, match=r"vocabulary: \['tag1'\] are RAM tags already"):
        ram_adapter.RamTagger(fake_ram, vocabulary=["tag1", "mine"], text_encoder=tiny_text_encoder)
    with pytest.raises(ValueError, match="open_set: expected 'add' or 'replace'"):
        ram_adapter.RamTagger(fake_ram, vocabulary=["mine"], open_set="merge")
    narrow = ram_adapter.RamTagger(fake_ram)
    with pytest.raises(ValueError, match="text_encoder: gives 16-dim text embeddings; RAM's label embeddings are 32-dim"):
        ram_adapter.add_open_set_tags(narrow.model, ["x"], torch.zeros(1, 16))


def test_cli_tags_with_open_set_vocabulary(fake_ram, tmp_path):
    from _tiny_models import make_tiny_clip

    from primekit.cli import main
    from primekit.tags import read_tags

    folder = _images(tmp_path)
    words = tmp_path / "my_tags.txt"
    words.write_text("rust\nweld seam\n")
    clip = make_tiny_clip(tmp_path / "clip")
    out = tmp_path / "tags.parquet"
    code = main(["tag", "--images", str(folder), "--tagger", f"ram++:{fake_ram}", "--vocabulary",
                 str(words), "--text-encoder", f"clip:local-dir:{clip}", "--threshold", "0",
                 "--out", str(out), "--no-progress", "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    table = read_tags(out)
    assert set(table["tag"]) == {f"tag{i}" for i in range(6)} | {"rust", "weld seam"}


def test_open_set_prompts_follow_rams_recipe():
    """RAM's build_openset_label_embedding (checked against upstream in test_tagging_ram_upstream):
    the article looks at the tag as written, the name is cleaned up, "This is " goes before
    prompts that start with "a"/"the"."""
    templates = ["a photo of {article} {}.", "the {}", "itap of {}."]
    assert ram_adapter.open_set_prompts("Aerial_photography.", templates) == [
        "This is a photo of a aerial photography.",
        "This is the aerial photography",
        "itap of aerial photography.",
    ]
    assert ram_adapter.open_set_prompts("apple/pear", templates)[0] == "This is a photo of an apple or pear."
