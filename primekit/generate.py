"""Text-to-image generators for the generated-image validation of paper section 4.2 on real data.

On the toy world the renderer draws images with exactly a mode's tags. On real data, the paper
prompts Stable Diffusion with the class and the mode's tags, classifies the images and compares
the accuracy on failure-mode prompts with success-mode prompts (Fig. 4, A.10).
:class:`DiffusersGenerator` is that hook: any `diffusers <https://huggingface.co/docs/diffusers>`_
text-to-image pipeline (``pip install 'primekit[diffusers]'``; a GPU in practice), called like the
toy world's renderer::

    gen = DiffusersGenerator.from_pretrained("stabilityai/stable-diffusion-2-1-base", device="cuda")
    images = gen("fox", ("dry", "grass"), 8, seed=0)        # uint8 (8, H, W, 3)
    study = primekit.load_study("my_study/", generator=gen, classifier="torchvision:resnet50")

Generation is seeded per image (image ``i`` of a call uses seed ``seed + i``), so a call is
reproducible and a larger ``n`` extends a smaller one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_TEMPLATE", "mode_prompt", "DiffusersGenerator", "load_generator"]

log = logging.getLogger(__name__)

#: Prompt of a mode: the class name, then its tags.
DEFAULT_TEMPLATE = "a photo of a {cls}, {tags}"


def mode_prompt(cls: Any, tags: Sequence[str], template: str = DEFAULT_TEMPLATE) -> str:
    """The text prompt of a (class, tags) mode, e.g. ``"a photo of a fox, dry, grass"``.

    ``template`` has the fields ``{cls}`` and ``{tags}`` (the tags joined by ", "); with no tags
    the trailing separator is dropped (a success prompt for the class alone).
    """
    if isinstance(tags, str):
        tags = (tags,)
    if "{cls}" not in template:
        raise ValueError(f"template: must contain '{{cls}}', got {template!r}")
    text = template.format(cls=str(cls).replace("_", " "), tags=", ".join(str(t) for t in tags))
    return text.rstrip(", ").strip()


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    return int(n)


class DiffusersGenerator:
    """A diffusers text-to-image pipeline as a mode generator: ``gen(cls, tags, n, seed=0)``.

    Parameters
    ----------
    pipeline : diffusers pipeline
        Any text-to-image pipeline taking ``prompt``, ``num_inference_steps``, ``guidance_scale``,
        ``height``, ``width``, ``generator``, ``output_type`` (Stable Diffusion 1.x/2.x/XL, ...).
    steps : int
        Denoising steps (the paper's setting is the pipeline's usual 50; 25-30 suffice with DDIM).
    guidance : float
        Classifier-free guidance scale.
    size : int, optional
        Height and width in pixels (default: the pipeline's own).
    batch_size : int
        Images per pipeline call.
    template : str
        Prompt template (:func:`mode_prompt`).
    negative_prompt : str, optional
        Passed to the pipeline with every prompt.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        steps: int = 30,
        guidance: float = 7.5,
        size: int | None = None,
        batch_size: int = 4,
        template: str = DEFAULT_TEMPLATE,
        negative_prompt: str | None = None,
    ) -> None:
        if not callable(pipeline):
            raise TypeError(f"pipeline: expected a callable diffusers pipeline, got {type(pipeline).__name__}")
        for name, value in (("steps", steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 8 or size % 8):
            raise ValueError(f"size: expected a multiple of 8 (>= 8), got {size!r}")
        if not guidance >= 0:
            raise ValueError(f"guidance: must be >= 0, got {guidance!r}")
        mode_prompt("x", ("y",), template)  # validates the template
        self.pipeline = pipeline
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.size = size
        self.batch_size = int(batch_size)
        self.template = template
        self.negative_prompt = negative_prompt

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> DiffusersGenerator:
        """Load a pipeline with ``diffusers.AutoPipelineForText2Image.from_pretrained``.

        Parameters
        ----------
        model : str
            A Hugging Face hub id or a local folder written by ``save_pretrained``.
        device : str, optional
            ``"cuda"`` when available, else ``"cpu"`` (slow: minutes per image for real models).
        dtype : {"float16", "float32", "bfloat16"}, optional
            Weights' dtype (default float16 on CUDA, float32 on the CPU).
        **kwargs
            The constructor's settings (``steps``, ``guidance``, ``size``, ...).
        """
        try:
            import diffusers
        except ImportError:
            raise ImportError(
                "DiffusersGenerator needs diffusers and transformers: pip install 'primekit[diffusers]'"
            ) from None
        import torch

        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected a hub id or a folder, got {model!r}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = "float16" if device.startswith("cuda") else "float32"
        if dtype not in ("float16", "float32", "bfloat16"):
            raise ValueError(f"dtype: expected float16, float32 or bfloat16, got {dtype!r}")
        try:
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(model, torch_dtype=getattr(torch, dtype))
        except (OSError, ValueError) as exc:
            raise ValueError(f"model: cannot load a text-to-image pipeline from {model!r} ({exc})") from None
        pipe = pipe.to(device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        gen = cls(pipe, **kwargs)
        gen.identity = {"diffusers": model, "dtype": dtype}
        return gen

    def __repr__(self) -> str:
        return (
            f"DiffusersGenerator({type(self.pipeline).__name__}, steps={self.steps}, "
            f"guidance={self.guidance}, size={self.size})"
        )

    def __call__(self, cls: Any, tags: Sequence[str], n: int, *, seed: int = 0) -> np.ndarray:
        """``n`` images of the prompt :func:`mode_prompt` (``cls``, ``tags``) as uint8 (n, H, W, 3)."""
        import torch

        n = _check_n(n)
        prompt = mode_prompt(cls, tags, self.template)
        device = getattr(self.pipeline, "device", "cpu")
        parts = []
        for start in range(0, n, self.batch_size):
            k = min(self.batch_size, n - start)
            extra: dict[str, Any] = {}
            if self.size is not None:
                extra.update(height=self.size, width=self.size)
            if self.negative_prompt is not None:
                extra["negative_prompt"] = [self.negative_prompt] * k
            out = self.pipeline(
                prompt=[prompt] * k,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                generator=[torch.Generator(device=device).manual_seed(int(seed) + start + i) for i in range(k)],
                output_type="np",
                **extra,
            )
            images = np.asarray(out.images if hasattr(out, "images") else out[0], dtype=np.float32)
            parts.append(np.clip(np.rint(images * 255), 0, 255).astype(np.uint8))
        if not parts:
            size = self.size or 0
            return np.zeros((0, size, size, 3), np.uint8)
        return np.concatenate(parts)


def load_generator(spec: str | Callable | None, **kwargs: Any) -> Callable | None:
    """A generator from a spec: ``"diffusers:<hub id or folder>"``, a callable (returned as is)
    or None. ``kwargs`` go to :meth:`DiffusersGenerator.from_pretrained`."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, str) and spec.startswith("diffusers:") and len(spec) > len("diffusers:"):
        return DiffusersGenerator.from_pretrained(spec[len("diffusers:"):], **kwargs)
    raise ValueError(f"generator: expected 'diffusers:<model>', a callable or None, got {spec!r}")
