"""primekit.generate: the diffusers text-to-image hook of paper 4.2, on a tiny random pipeline.

The pipeline is a real diffusers StableDiffusionPipeline (UNet, VAE, CLIP text encoder and
tokenizer, DDIM scheduler) of the same architecture as Stable Diffusion, with random weights and a
character-level tokenizer, saved with ``save_pretrained`` and loaded back through the hook's own
``from_pretrained`` path: nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from primekit.generate import DiffusersGenerator, load_generator, mode_prompt

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("tiny-sd")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz,.":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=32)
    torch.manual_seed(0)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16,
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=diffusers.DDIMScheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "pipe")
    return root / "pipe"


@pytest.fixture(scope="module")
def generator(pipeline_dir):
    return load_generator(f"diffusers:{pipeline_dir}", device="cpu", steps=2, guidance=2.0, size=16, batch_size=2)


def test_mode_prompt():
    assert mode_prompt("red_fox", ("dry", "grass")) == "a photo of a red fox, dry, grass"
    assert mode_prompt("fox", ()) == "a photo of a fox"
    assert mode_prompt("fox", "snow", "{tags} {cls}") == "snow fox"
    with pytest.raises(ValueError, match="template"):
        mode_prompt("fox", (), "a photo")


def test_generator_is_seeded_and_extends(generator):
    a = generator("dog", ("grass",), 3, seed=5)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, generator("dog", ("grass",), 3, seed=5))
    # image i uses seed + i: asking for fewer gives the same first images
    assert np.abs(generator("dog", ("grass",), 2, seed=5).astype(int) - a[:2]).max() <= 1
    assert not np.array_equal(a, generator("dog", ("grass",), 3, seed=6))
    assert generator("dog", ("grass",), 0).shape[0] == 0


def test_bad_arguments_are_named(pipeline_dir, generator):
    with pytest.raises(ValueError, match="n:"):
        generator("dog", ("grass",), -1)
    with pytest.raises(ValueError, match="generator:"):
        load_generator("stable-diffusion")
    with pytest.raises(ValueError, match="model:"):
        DiffusersGenerator.from_pretrained(str(pipeline_dir / "missing"))
    with pytest.raises(ValueError, match="steps"):
        DiffusersGenerator(generator.pipeline, steps=0)
    with pytest.raises(ValueError, match="size"):
        DiffusersGenerator(generator.pipeline, size=20)
    with pytest.raises(TypeError, match="pipeline"):
        DiffusersGenerator("not a pipeline")
    assert load_generator(None) is None


def test_folder_study_runs_the_generated_image_validation(tmp_path, generator):
    """A real-data study with the hook and a classifier: paper 4.2 end to end."""
    import torch

    from primekit.metrics import generated_validation
    from primekit.study import load_study
    from tests.test_study import make_folder

    make_folder(tmp_path)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 3, 16, 16))
    from torchvision import transforms as T

    from primekit.models import load_classifier

    clf = load_classifier(net, transform=T.Compose([T.Resize(16), T.ToTensor()]))
    study = load_study(str(tmp_path), generator=generator, classifier=clf, class_names=["cat", "dog"])
    assert study.can_generate
    images = study.generate("dog", ("a",), 2, seed=0)
    preds = study.predict_images(images)
    assert list(preds.columns) == ["pred", "confidence"] and set(preds["pred"]) <= {"cat", "dog"}
    modes = pd.DataFrame({"class": ["dog", "cat"], "tags": [("a",), ("b", "c")]})
    out = generated_validation(modes, study.generate, study.predict_images, n_per_mode=2)
    assert len(out) == 2 and out["generated_accuracy"].between(0, 1).all() and (out["n_generated"] == 2).all()
    with pytest.raises(ValueError, match="generator: only for a folder"):
        load_study("toyworld", generator=generator)
    with pytest.raises(ValueError, match="class_names"):
        load_study(str(tmp_path), classifier=net)
