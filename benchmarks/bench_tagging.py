"""Tagging throughput: the full pipeline against the model's forward pass alone, on the same batches.

The full pipeline is ``primekit.tag_images`` on a cold cache: hashing files, DataLoader decoding
and preprocessing, forward pass, calibration, atomic shards and the final Parquet table. "Model
only" runs the tagger's ``forward`` over the same batches already decoded and preprocessed in
memory. Data loading is not the bottleneck when the ratio is >= 90%.

CPU, tiny random-weight CLIPs on generated images (the default; a few minutes on 2 cores)::

    python benchmarks/bench_tagging.py

GPU, the paper's taggers on a real image folder (RAM++ Swin-L 384 px and CLIP ViT-B/16)::

    python benchmarks/bench_tagging.py --device cuda --num-workers 8 --batch-size 64 \\
        --images /data/imagenet/val --n-images 5000 \\
        --tagger ram++:/models/ram_plus_swin_large_14m.pth --tagger clip:ViT-B-16:openai
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GPU_COMMAND = (
    "python benchmarks/bench_tagging.py --device cuda --num-workers 8 --batch-size 64 "
    "--images /data/imagenet/val --n-images 5000 "
    "--tagger ram++:/models/ram_plus_swin_large_14m.pth --tagger clip:ViT-B-16:openai"
)

# (name, image size, width, layers, patch): "tiny" is the test model, "small" a ViT whose
# per-image cost relative to PNG decoding is closer to the real taggers'.
CONFIGS = {
    "tiny-clip": dict(image_size=32, width=32, layers=1, patch_size=8),
    "small-clip": dict(image_size=96, width=192, layers=4, patch_size=8),
}


def make_clip(folder: Path, *, image_size: int, width: int, layers: int, patch_size: int) -> str:
    import open_clip
    import torch

    cfg = {
        "model_cfg": {
            "embed_dim": 64,
            "quick_gelu": True,
            "vision_cfg": {
                "image_size": image_size,
                "layers": layers,
                "width": width,
                "patch_size": patch_size,
                "head_width": 32,
            },
            "text_cfg": {
                "context_length": 16,
                "vocab_size": 49408,
                "width": 64,
                "heads": 2,
                "layers": 1,
            },
        },
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    m = cfg["model_cfg"]
    model = open_clip.CLIP(
        embed_dim=m["embed_dim"],
        vision_cfg=m["vision_cfg"],
        text_cfg=m["text_cfg"],
        quick_gelu=True,
    )
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return f"clip:local-dir:{folder}"


def make_images(folder: Path, n: int, *, size: int = 128, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / f"class{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(arr).resize((size, size), Image.BILINEAR).save(sub / f"{i:05d}.png")
    return folder


def bench(
    spec: str,
    images,
    *,
    batch_size: int,
    num_workers: int,
    device: str,
    vocabulary: str | None,
    repeats: int = 2,
) -> dict:
    import torch

    from primekit.images import open_image, read_image_source
    from primekit.tagging import load_tagger, tag_images

    options = {"vocabulary": vocabulary} if vocabulary and spec.startswith("clip:") else {}
    tagger = load_tagger(spec, device=device, **options)
    table = read_image_source(images)
    # model only: the same batches, decoded and preprocessed beforehand
    batches = []
    for start in range(0, len(table), batch_size):
        paths = table["path"].iloc[start : start + batch_size]
        batches.append(torch.stack([tagger.transform(open_image(p)) for p in paths]))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    amp = device.startswith("cuda")
    with torch.inference_mode(), torch.autocast(device.split(":")[0], enabled=amp):
        tagger.forward(batches[0].to(device))  # warm-up
    best_model = np.inf
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.split(":")[0], enabled=amp):
            for b in batches:
                tagger.forward(b.to(device, non_blocking=True))
        sync()
        best_model = min(best_model, time.perf_counter() - t0)
    best_pipe = np.inf
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            out = Path(cache) / "tags.parquet"
            t0 = time.perf_counter()
            tag_images(
                images,
                tagger,
                out=out,
                batch_size=batch_size,
                device=device,
                num_workers=num_workers,
                cache_dir=cache,
                progress=False,
            )
            best_pipe = min(best_pipe, time.perf_counter() - t0)
            t0 = time.perf_counter()
            tag_images(
                images,
                tagger,
                out=out,
                batch_size=batch_size,
                device=device,
                num_workers=num_workers,
                cache_dir=cache,
                progress=False,
            )
            cached = time.perf_counter() - t0
    n = len(table)
    return {
        "tagger": spec if not spec.startswith("clip:local-dir:") else spec.split("/")[-1],
        "images": n,
        "batch": batch_size,
        "workers": num_workers,
        "model img/s": n / best_model,
        "pipeline img/s": n / best_pipe,
        "ratio": best_model / best_pipe,
        "cached re-run s": cached,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tagger", action="append", help="tagger spec (repeatable); default: tiny CLIPs"
    )
    parser.add_argument("--images", help="image folder or manifest; default: generated PNGs")
    parser.add_argument("--n-images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    parser.add_argument("--vocabulary", default="builtin", help="CLIP vocabulary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        specs = args.tagger or [make_clip(tmp / name, **cfg) for name, cfg in CONFIGS.items()]
        if args.images:
            from primekit.images import read_image_source

            images = read_image_source(args.images).head(args.n_images)
        else:
            images = make_images(tmp / "images", args.n_images)
        rows = [
            bench(
                s,
                images,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                device=args.device,
                vocabulary=args.vocabulary,
            )
            for s in specs
        ]
    import pandas as pd

    table = pd.DataFrame(rows)
    print(f"device={args.device} torch threads={args.threads} num_workers={args.num_workers}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print("\nGPU (RAM++ Swin-L 384 px and CLIP ViT-B/16; weights: see README 'Tagging real data'):")
    print("  " + GPU_COMMAND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
