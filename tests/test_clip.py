"""open_clip loading by spec and cached image/text embeddings (tiny random-weight CLIP)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_models import make_images, make_tiny_clip

from primekit.clip import embed_images, embed_texts, load_clip, parse_clip_spec, read_embeddings
from primekit.io import read_metadata

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny")


def test_embeddings_are_unit_norm_cached_and_written_with_metadata(clip_dir, tmp_path):
    make_images(tmp_path / "imgs", n_per_class=3, corrupt=True)
    model = load_clip(f"clip:local-dir:{clip_dir}")
    out = tmp_path / "emb.parquet"
    table = embed_images(
        tmp_path / "imgs",
        model=model,
        out=out,
        cache_dir=tmp_path / "c",
        batch_size=4,
        progress=False,
    )
    assert table.shape == (6, 1 + 32) and table.columns[1] == "emb_0"
    ids, values = read_embeddings(out)
    assert list(ids) == table["id"].tolist()
    np.testing.assert_allclose(np.linalg.norm(values, axis=1), 1, rtol=1e-5)
    assert read_metadata(out)["dim"] == 32
    errors = (tmp_path / "emb.errors.csv").read_text()
    assert "cat/zz_corrupt.png" in errors
    again = embed_images(tmp_path / "imgs", model=model, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(again.iloc[:, 1:].to_numpy(), table.iloc[:, 1:].to_numpy())
    # the same as calling the model directly
    from PIL import Image

    img = Image.open(tmp_path / "imgs" / "cat" / "000.png").convert("RGB")
    with torch.no_grad():
        direct = model.encode_images(model.preprocess(img)[None]).numpy()
    np.testing.assert_allclose(values[0], direct[0], atol=1e-5)


def test_text_embeddings(clip_dir):
    emb = embed_texts(["a dog", "a cat"], model=f"local-dir:{clip_dir}")
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    with pytest.raises(TypeError, match="texts"):
        embed_texts("a dog", model=f"local-dir:{clip_dir}")


def test_specs(clip_dir, tmp_path):
    assert parse_clip_spec("clip:ViT-B-16:openai") == ("ViT-B-16", "openai")
    assert parse_clip_spec(f"local-dir:{clip_dir}")[0].startswith("local-dir:")
    with pytest.raises(ValueError, match="model: unknown CLIP architecture 'ViT-Q-99'"):
        parse_clip_spec("clip:ViT-Q-99:openai")
    with pytest.raises(ValueError, match="neither a weights file nor a pretrained tag"):
        parse_clip_spec("clip:ViT-B-16:nonsense")
    with pytest.raises(ValueError, match="not an open_clip folder"):
        parse_clip_spec(f"clip:local-dir:{tmp_path}")


def test_a_clip_folder_without_weights_is_refused_not_randomly_initialised(tmp_path):
    folder = make_tiny_clip(tmp_path / "clip")
    (folder / "open_clip_pytorch_model.bin").unlink()  # open_clip itself only warns
    with pytest.raises(ValueError, match="has an open_clip config but no weights file"):
        load_clip(f"local-dir:{folder}")


def test_absent_openai_weights_say_where_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        ValueError,
        match="model: cannot load CLIP weights .*huggingface.co/timm/vit_base_patch16_clip_224.openai",
    ):
        load_clip("clip:ViT-B-16:openai")


def test_quickgelu_is_forced_for_openai_weights(monkeypatch):
    import open_clip

    seen = {}

    def fake(name, pretrained=None, **kw):
        seen.update(kw, name=name, pretrained=pretrained)
        raise RuntimeError("stop here")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake)
    with pytest.raises(ValueError):
        load_clip("ViT-B-16:openai")
    assert seen == {
        "name": "ViT-B-16",
        "pretrained": "openai",
        "device": "cpu",
        "force_quick_gelu": True,
    }


def test_cuda_asked_without_cuda_is_one_clear_error(clip_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device: 'cuda' was asked for but CUDA is not available"):
        load_clip(f"local-dir:{clip_dir}", device="cuda")


def test_toyworld_spec_resolves_to_the_toy_worlds_clip_folder(clip_dir, monkeypatch):
    import primekit.clip

    # primekit.clip imports the toy world's clip_dir at the top (imports go down): patch its name
    monkeypatch.setattr(primekit.clip, "toyworld_clip_dir", lambda home=None: clip_dir)
    assert parse_clip_spec("clip:toyworld") == (f"local-dir:{clip_dir.resolve()}", None)
    assert load_clip("clip:toyworld").weights == str(clip_dir.resolve())
