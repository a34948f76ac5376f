"""The RAM / RAM++ adapter against the real recognize-anything package, with random weights.

Skipped where the ``ram`` package is not installed (it is published on GitHub only, so CI here has
none). Last run against upstream commit 7cb804a ("Merge pull request #213", the recognize-anything
repository's main branch), in a throwaway virtual environment outside the project:

    python -m venv /work/tmp/ramenv
    /work/tmp/ramenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/tmp/ramenv/bin/pip install timm fairscale 'transformers<4.58' scipy pytest pytest-timeout hypothesis
    /work/tmp/ramenv/bin/pip install --no-deps /work/tmp/ram-src   # a work tree of that commit
    /work/tmp/ramenv/bin/pip install -e .
    PRIMEKIT_RAM_FULL=1 /work/tmp/ramenv/bin/python -m pytest -q tests/test_tagging_ram_upstream.py

(timm 1.0.31, transformers 4.57.6 through primekit's shim, fairscale 0.4.13). The tests marked
``full`` build the released architecture (Swin-L, 384 px, RAM++'s 51 descriptions per tag, RAM's
4,585 tags and class thresholds); they take minutes and ~8 GB, so they run only with
``PRIMEKIT_RAM_FULL=1``. The others use the same classes with small Swin and BERT configs.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from primekit.tagging import ram as ram_adapter
from primekit.tagging import tag_images

HAVE_RAM = (
    importlib.util.find_spec("ram") is not None
    and importlib.util.find_spec("transformers") is not None
)
pytestmark = pytest.mark.skipif(
    not HAVE_RAM,
    reason="the 'ram' package (recognize-anything, GitHub only, with transformers < 4.58) is not "
    "installed; pip install 'primekit[ram]' to run these tests",
)
FULL = os.environ.get("PRIMEKIT_RAM_FULL") == "1"
N_TAGS = 40
VARIANTS = ["ram++", "ram"]


def _module(variant: str):
    ram_adapter.import_ram()  # first: the transformers shim (4.56-4.57) must precede RAM's imports
    return importlib.import_module("ram.models.ram_plus" if variant == "ram++" else "ram.models.ram")


def _model_class(variant: str):
    return _module(variant).RAM_plus if variant == "ram++" else _module(variant).RAM


def _randomise(model) -> None:
    """RAM's eval constructors leave the label embeddings at zero: give every tag its own."""
    with torch.no_grad():
        model.label_embed.normal_()


def _state_dict(model) -> dict:
    """As the released files: without the buffers RAM's loaders drop and rebuild."""
    return {
        k: v
        for k, v in model.state_dict().items()
        if "relative_position_index" not in k and "attn_mask" not in k
    }


def _tag_strings(tagger, probs) -> list[str]:
    return [
        " | ".join(t for t, p, thr in zip(tagger.vocabulary, row, tagger.thresholds, strict=True) if p >= thr)
        for row in probs
    ]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """``build(variant)``: a small random-weight RAM++ or RAM of upstream's own classes (small Swin-B
    224 and BERT configs, 40 tags with thresholds in [0.45, 0.55]) and its checkpoint."""
    ram = ram_adapter.import_ram()
    root = Path(ram.__file__).parent
    cfg = tmp_path / "ramcfg"
    (cfg / "configs" / "swin").mkdir(parents=True)
    (cfg / "data").mkdir()
    small = {"hidden_size": 64, "intermediate_size": 64, "num_attention_heads": 2}
    q2l = json.loads((root / "configs" / "q2l_config.json").read_text())
    (cfg / "configs" / "q2l_config.json").write_text(json.dumps({**q2l, **small, "num_hidden_layers": 1}))
    med = json.loads((root / "configs" / "med_config.json").read_text())
    (cfg / "med_config.json").write_text(
        json.dumps({**med, **small, "num_hidden_layers": 2, "encoder_width": 64})
    )
    swin = {"ckpt": "", "vision_width": 256, "image_res": 224, "window_size": 7, "embed_dim": 32,
            "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8]}
    (cfg / "configs" / "swin" / "config_swinB_224.json").write_text(json.dumps(swin))
    rng = np.random.default_rng(0)
    thresholds = rng.uniform(0.45, 0.55, N_TAGS)
    (cfg / "data" / "ram_tag_list_threshold.txt").write_text("\n".join(f"{t:.3f}" for t in thresholds) + "\n")
    tag_list = cfg / "tags.txt"
    tag_list.write_text("\n".join(f"word{i}" for i in range(N_TAGS)))
    for name in ("ram.models.ram_plus", "ram.models.ram", "ram.models.utils"):
        monkeypatch.setattr(importlib.import_module(name), "CONFIG_PATH", cfg)
    tok = ram_adapter.placeholder_vocab_dir(tmp_path / "tok")

    def build(variant: str, **extra_kwargs):
        kwargs = {"tag_list": str(tag_list), **extra_kwargs}
        if variant == "ram":
            kwargs["med_config"] = str(cfg / "med_config.json")
        torch.manual_seed(0)
        model = _model_class(variant)(image_size=224, vit="swin_b", text_encoder_type=str(tok), **kwargs)
        _randomise(model)
        with torch.no_grad():
            model.fc.bias.fill_(0.0)
        ckpt = tmp_path / f"tiny_{variant}.pth"
        torch.save({"model": _state_dict(model)}, ckpt)
        options = {"variant": variant, "image_size": 224, "vit": "swin_b", "tokenizer_dir": tok,
                   "model_kwargs": kwargs}
        return types.SimpleNamespace(model=model.eval(), ckpt=ckpt, kwargs=kwargs, tok=tok,
                                     options=options, cfg=cfg)

    return build


def _images(folder: Path, n: int = 3, size: int = 64) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((size, size)).save(
            folder / f"{i}.png"
        )
    return folder


def _check_against_generate_tag(
    tagger, images: torch.Tensor, *, openset: bool = False, varied: bool = True
) -> list[str]:
    probs = tagger.forward(images).numpy()
    with torch.no_grad():
        out = (tagger.model.generate_tag_openset if openset else tagger.model.generate_tag)(images)
    expected = out if openset else out[0]
    assert _tag_strings(tagger, probs) == expected
    assert any(expected) and (len(set(expected)) > 1 or not varied)  # a comparison that can fail
    return expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_probabilities_and_tag_strings_equal_generate_tag(tiny, variant, tmp_path):
    """Thresholded adapter probabilities are the model's own ``generate_tag`` strings, for every
    image of a batch, and through files -> RAM's transform -> the batched job."""
    t = tiny(variant)
    tagger = ram_adapter.RamTagger(t.ckpt, **t.options)
    assert tagger.vocabulary == [f"word{i}" for i in range(N_TAGS)]
    for name, p in t.model.state_dict().items():
        torch.testing.assert_close(tagger.model.state_dict()[name], p)
    torch.manual_seed(1)
    _check_against_generate_tag(tagger, torch.randn(4, 3, 224, 224))

    from PIL import Image

    folder = _images(tmp_path / "imgs")
    table = tag_images(folder, tagger, batch_size=2, cache_dir=tmp_path / "cache", progress=False)
    batch = torch.stack([tagger.transform(Image.open(folder / f"{i}.png").convert("RGB")) for i in range(3)])
    with torch.no_grad():
        expected, _ = tagger.model.generate_tag(batch)
    for i, tags in enumerate(expected):
        got = table.loc[table["id"] == f"{i}.png", "tag"].tolist()
        assert sorted(got) == sorted(t for t in tags.split(" | ") if t), i


@pytest.mark.parametrize("variant", VARIANTS)
def test_extra_logit_scale_is_accepted_and_logged_missing_keys_refused(tiny, variant, tmp_path, caplog):
    """(a) The released RAM++ file is reported to carry ``logit_scale``, which neither class has:
    RAM's loader reports it as unexpected; the adapter logs it and loads. A missing key stays fatal."""
    t = tiny(variant)
    sd = _state_dict(t.model)
    assert not any(k == "logit_scale" for k in t.model.state_dict())
    extra = tmp_path / "extra.pth"
    torch.save({"model": {**sd, "logit_scale": torch.tensor(4.6052)}}, extra)
    with caplog.at_level("INFO", logger="primekit.tagging.ram"):
        tagger = ram_adapter.RamTagger(extra, **t.options)
    assert "ignoring key(s) ['logit_scale']" in caplog.text
    torch.testing.assert_close(tagger.model.fc.weight, t.model.fc.weight)
    missing = tmp_path / "missing.pth"
    torch.save({"model": {k: v for k, v in sd.items() if k != "fc.weight"}}, missing)
    with pytest.raises(ValueError, match=r"1 missing key\(s\) \['fc.weight'\]"):
        ram_adapter.RamTagger(missing, **t.options)
    torch.save({"model": {**sd, "other_scale": torch.tensor(1.0)}}, extra)
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\) \['other_scale'\]"):
        ram_adapter.RamTagger(extra, **t.options)


@pytest.mark.parametrize("variant", VARIANTS)
def test_what_crashes_inside_upstream_is_refused_first(tiny, variant, tmp_path):
    """(b) a ``tag_list`` of another length than RAM's threshold file and (c) a Swin image size
    other than 224/384 crash inside upstream's constructor; the adapter says why, first."""
    t = tiny(variant)
    short = tmp_path / "short.txt"
    short.write_text("dog\ncat\nfox\n")
    kwargs = {**t.kwargs, "tag_list": str(short)}
    with pytest.raises(IndexError):  # upstream: 40 thresholds written into a tensor of 3
        _model_class(variant)(image_size=224, vit="swin_b", text_encoder_type=str(t.tok), **kwargs)
    with pytest.raises(ValueError, match=r"model_kwargs: 'tag_list' is not supported.*vocabulary="):
        ram_adapter.RamTagger(t.ckpt, **{**t.options, "model_kwargs": kwargs})
    with pytest.raises(UnboundLocalError):  # upstream: no Swin config for 256 px
        _model_class(variant)(image_size=256, vit="swin_b", text_encoder_type=str(t.tok), **t.kwargs)
    with pytest.raises(ValueError, match=r"image_size: RAM's Swin backbones exist for 224 and 384"):
        ram_adapter.RamTagger(t.ckpt, **{**t.options, "image_size": 256})


@pytest.mark.parametrize("variant", VARIANTS)
def test_delete_tag_index_is_honoured_as_generate_tag_does(tiny, variant):
    """(d) The deleted tags are left out of the vocabulary, and the others are ``generate_tag``'s
    strings (which zeroes the deleted ones after thresholding)."""
    t = tiny(variant)
    torch.manual_seed(1)
    images = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        plain, _ = t.model.generate_tag(images)
    present = sorted({int(w[4:]) for s in plain for w in s.split(" | ") if w})
    deleted = present[: max(1, len(present) // 2)]
    tagger = ram_adapter.RamTagger(
        t.ckpt, **{**t.options, "model_kwargs": {**t.kwargs, "delete_tag_index": deleted}}
    )
    assert tagger.vocabulary == [f"word{i}" for i in range(N_TAGS) if i not in deleted]
    expected = _check_against_generate_tag(tagger, images, varied=False)
    assert not {f"word{i}" for i in deleted} & {w for s in expected for w in s.split(" | ")}


@pytest.fixture
def upstream_openset(monkeypatch, tmp_path):
    """Upstream's ``build_openset_label_embedding`` with OpenAI's ``clip`` package stood in for by
    a tiny 512-dim open_clip model (``clip.load`` would download ViT-B/16; the rest is upstream's)."""
    from _tiny_models import make_tiny_clip

    from primekit.clip import load_clip

    clip_model = load_clip(f"clip:local-dir:{make_tiny_clip(tmp_path / 'clip', embed_dim=512)}")
    stub, inner = types.ModuleType("clip"), types.ModuleType("clip.clip")
    inner.load = lambda name: (types.SimpleNamespace(encode_text=clip_model.model.encode_text), None)
    inner.tokenize = lambda texts, truncate=False: clip_model.tokenizer(list(texts))
    stub.clip = inner
    for name, mod in {"clip": stub, "clip.clip": inner}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    for name in ("ram.utils", "ram.utils.openset_utils", "ram.utils.metrics"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    openset_utils = importlib.import_module("ram.utils.openset_utils")
    return clip_model, openset_utils.build_openset_label_embedding


MINE = ["solder bridge", "Hairline_crack", "weld seam", "apple/pear", "overexposed."]


def test_open_set_embeddings_are_upstreams(upstream_openset):
    """(e) The label embeddings of your own tags are those of upstream's
    ``build_openset_label_embedding`` (its templates, article, name clean-up, "This is " prefix)."""
    clip_model, build = upstream_openset
    with torch.no_grad():
        expected, categories = build(MINE)
    assert categories == MINE
    torch.testing.assert_close(ram_adapter.open_set_embeddings(clip_model, MINE), expected.float())


@pytest.mark.parametrize("variant", VARIANTS)
def test_open_set_tags_match_upstreams_open_set_inference(tiny, variant, upstream_openset):
    """(e) ``open_set="replace"`` is upstream's ``inference_ram*_openset`` recipe (label_embed,
    tag_list, num_class, class_threshold 0.5 set by hand, then ``generate_tag_openset``);
    ``"add"`` keeps RAM's own tags' probabilities and appends the same open-set ones."""
    clip_model, build = upstream_openset
    t = tiny(variant)
    only = ram_adapter.RamTagger(t.ckpt, **t.options, vocabulary=MINE, open_set="replace",
                                 text_encoder=clip_model)
    reference = _model_class(variant)(image_size=224, vit="swin_b", text_encoder_type=str(t.tok), **t.kwargs)
    reference.load_state_dict(t.model.state_dict())
    with torch.no_grad():
        embedding, categories = build(MINE)
    reference.tag_list = np.array(categories)
    reference.label_embed = torch.nn.Parameter(embedding.float())
    reference.num_class = len(categories)
    reference.class_threshold = torch.ones(reference.num_class) * 0.5
    reference.eval()
    torch.manual_seed(2)
    images = torch.randn(6, 3, 224, 224)
    with torch.no_grad():
        # random weights put every open-set tag near one probability: centre them on 0.5
        logits = torch.logit(ram_adapter.ram_probabilities(reference, images, openset=True))
        for model in (reference, only.model):
            model.fc.bias -= logits.median()
        expected = reference.generate_tag_openset(images)
    probs = only.forward(images).numpy()
    assert _tag_strings(only, probs) == expected
    assert any(expected) and len(set(expected)) > 1
    added = ram_adapter.RamTagger(t.ckpt, **t.options, vocabulary=MINE, text_encoder=clip_model)
    plain = ram_adapter.RamTagger(t.ckpt, **t.options)
    for model in (added.model, plain.model):
        with torch.no_grad():
            model.fc.bias -= logits.median()
    assert added.vocabulary == plain.vocabulary + MINE
    p_added, p_plain = added.forward(images).numpy(), plain.forward(images).numpy()
    np.testing.assert_allclose(p_added[:, :N_TAGS], p_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_added[:, N_TAGS:], probs, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert _tag_strings(added, p_added) == added.model.generate_tag_openset(images)


# ---------------------------------------------------------------- the released architecture
@pytest.mark.skipif(not FULL, reason="full-size Swin-L RAM/RAM++ (minutes, ~8 GB): PRIMEKIT_RAM_FULL=1")
@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_full_size_swin_l_as_released(variant, tmp_path, caplog):
    """Swin-L at 384 px with RAM's own 4,585 tags and class thresholds, random weights, saved with
    the released file's extra ``logit_scale``: loaded as a user loads the released checkpoint
    (no model_kwargs), the adapter's tags are ``generate_tag``'s; with ``delete_tag_index`` and
    with open-set tags added, ``generate_tag``'s and ``generate_tag_openset``'s."""
    from _tiny_models import make_tiny_clip

    from primekit.clip import load_clip

    torch.set_num_threads(2)
    tok = ram_adapter.placeholder_vocab_dir(tmp_path / "tok")
    torch.manual_seed(0)
    model = _model_class(variant)(image_size=384, vit="swin_l", text_encoder_type=str(tok)).eval()
    assert model.num_class == 4585 and model.label_embed.shape[0] == 4585 * (51 if variant == "ram++" else 1)
    _randomise(model)
    images = torch.randn(2, 3, 384, 384)
    with torch.no_grad():  # random weights: centre the logits on the median class threshold
        logits = torch.logit(ram_adapter.ram_probabilities(model, images[:1]))
        model.fc.bias += torch.logit(model.class_threshold.median()) - logits.median()
    ckpt = tmp_path / f"{variant}_swin_l_384.pth"
    torch.save({"model": {**_state_dict(model), "logit_scale": torch.tensor(4.6052)}}, ckpt)
    with caplog.at_level("INFO", logger="primekit.tagging.ram"):
        tagger = ram_adapter.RamTagger(ckpt, variant=variant)
    assert "ignoring key(s) ['logit_scale']" in caplog.text
    assert len(tagger.vocabulary) == 4585
    np.testing.assert_array_equal(tagger.vocabulary, model.tag_list)
    expected = _check_against_generate_tag(tagger, images)
    present = sorted({int(np.flatnonzero(model.tag_list == w)[0]) for s in expected for w in s.split(" | ")})
    del tagger
    deleted = present[::2]
    clip_model = load_clip(f"clip:local-dir:{make_tiny_clip(tmp_path / 'clip', embed_dim=512)}")
    tagger = ram_adapter.RamTagger(ckpt, variant=variant, model_kwargs={"delete_tag_index": deleted},
                                   vocabulary=MINE, text_encoder=clip_model, open_threshold=0.0)
    assert len(tagger.vocabulary) == 4585 - len(deleted) + len(MINE)
    got = _check_against_generate_tag(tagger, images, openset=True)
    assert all(s.endswith(" | ".join(MINE)) for s in got)  # threshold 0: every open-set tag
    assert not {str(model.tag_list[i]) for i in deleted} & {w for s in got for w in s.split(" | ")}
