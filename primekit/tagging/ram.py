"""RAM and RAM++ (recognize-anything) as primekit taggers, with per-tag probabilities.

What the upstream package does not give, and this adapter does (DESIGN.md "Third-party facts"):

- **Probabilities, batched.** ``inference_ram`` returns only the first image of a batch and
  ``generate_tag`` returns ' | '-joined strings. The adapter runs the model's own ``generate_tag``
  on the whole batch and captures the logits of its tagging head (``model.fc``) with a forward
  hook: probabilities are ``sigmoid(logits)``, exactly the numbers ``generate_tag`` thresholds.
- **Thresholds under the user's control.** The defaults are the model's ``class_threshold``
  (read by RAM from ``ram/data/ram_tag_list_threshold.txt``; RAM's own ``threshold`` argument has
  no effect on them). ``generate_tag`` keeps a tag whose probability is *strictly* greater than
  its class threshold, primekit's rule is ``score >= threshold`` (the search's): ``thresholds``
  holds the next float64 above each class threshold, so the default tags are exactly
  ``generate_tag``'s. ``tag_images(threshold=...)`` replaces them globally or per tag.
- **Offline construction.** RAM builds a ``bert-base-uncased`` tokenizer, downloading it unless
  ``text_encoder_type`` is a local folder with a ``vocab.txt``. Tagging never tokenizes text, so
  by default the adapter writes a placeholder ``vocab.txt`` of BERT's size (30,522 entries, the
  special tokens at BERT's positions), which gives the checkpoint's embedding shapes. Pass
  ``tokenizer_dir`` to use the real one (needed only for RAM's captioning, not for tags).
- **Loud, safe checkpoint loading.** RAM loads with ``strict=False`` and discards the result. The
  adapter uses RAM's own loaders (which remap and interpolate keys) and raises on missing or
  unexpected keys, except the buffers RAM deliberately rebuilds (``relative_position_index``,
  ``attn_mask``) and known harmless extras of the released files (``logit_scale``). Every
  ``torch.load`` inside is weights-only; a checkpoint that needs a full pickle is refused unless
  ``trust_pickle=True`` (CLI ``--trust-checkpoint``).
- **RAM's crashes checked first.** ``image_size`` other than 224/384 with a Swin backbone and a
  ``tag_list`` whose length differs from RAM's threshold file fail inside RAM; the adapter refuses
  them with the supported way. ``delete_tag_index`` is honoured (those tags are never reported).
- **Open-set tags.** ``vocabulary=`` adds your own tags (RAM's ``generate_tag_openset``; CLI
  ``--tagger ram++:PATH --vocabulary my_tags.txt``), embedded with CLIP's text encoder the way
  RAM's ``build_openset_label_embedding`` does (its own prompt templates, read from the installed
  ``ram`` package: :func:`open_set_prompts`).
- **transformers versions.** RAM imports helpers that transformers 4.56 moved to
  ``transformers.pytorch_utils``; for 4.56-4.57 they are copied back into
  ``transformers.modeling_utils`` before import. transformers >= 5 is refused with a message.

Weights: RAM++ ``ram_plus_swin_large_14m.pth`` from
https://huggingface.co/xinyu1205/recognize-anything-plus-model, RAM ``ram_swin_large_14m.pth`` from
https://huggingface.co/xinyu1205/recognize_anything_model (both Swin-L, 384 px).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._jobs import default_cache_dir, file_identity
from .._torch_files import is_weights_only_error, pickle_refusal, weights_only_loads
from ..clip import ClipModel, load_clip
from ..io import atomic_path
from .base import Tagger, resolve_device
from .clip_tagger import resolve_vocabulary

__all__ = [
    "RamTagger",
    "import_ram",
    "apply_transformers_shim",
    "placeholder_vocab_dir",
    "check_transformers_version",
    "check_load_result",
    "add_open_set_tags",
    "open_set_prompts",
    "open_set_embeddings",
    "ram_probabilities",
    "WEIGHTS_URLS",
]

logger = logging.getLogger(__name__)

WEIGHTS_URLS = {
    "ram++": "https://huggingface.co/xinyu1205/recognize-anything-plus-model/resolve/main/ram_plus_swin_large_14m.pth",
    "ram": "https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/ram_swin_large_14m.pth",
}
_SHIM_NAMES = (
    "apply_chunking_to_forward",
    "find_pruneable_heads_and_indices",
    "prune_linear_layer",
)
# buffers RAM's own loaders drop from the checkpoint and the model rebuilds
_REBUILT_BUFFERS = ("relative_position_index", "attn_mask")
# keys of the released files that the model has no parameter for and tagging does not use
_HARMLESS_EXTRA_KEYS = ("logit_scale",)
_SWIN_SIZES = (224, 384)
_INSTALL = "pip install 'primekit[ram]' (recognize-anything from GitHub, timm, fairscale, scipy, transformers<4.58)"


def check_transformers_version(version: str) -> str:
    """Classify a transformers version for RAM: ``"ok"`` (< 4.56), ``"shim"`` (4.56-4.57).

    Raises ``ValueError`` for versions RAM cannot import with (4.58 and later, including 5.x).
    """
    from packaging.version import Version

    v = Version(version)
    if v < Version("4.56"):
        return "ok"
    if v < Version("4.58"):
        return "shim"
    raise ValueError(
        f"transformers {version} is installed, but RAM/RAM++ needs transformers<4.56 (4.56-4.57 "
        "work with primekit's shim; 5.x breaks RAM's BERT code): pip install 'transformers<4.58'"
    )


def apply_transformers_shim() -> list[str]:
    """Copy RAM's missing helpers from ``transformers.pytorch_utils`` into
    ``transformers.modeling_utils``; returns the names copied (empty when nothing was missing)."""
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    copied = []
    for name in _SHIM_NAMES:
        if not hasattr(modeling_utils, name) and hasattr(pytorch_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))
            copied.append(name)
    return copied


def import_ram():
    """Import the ``ram`` package, after checking transformers; ``ValueError`` with the fix if not."""
    try:
        import transformers
    except ImportError:
        raise ValueError(f"tagger: RAM needs transformers; {_INSTALL}") from None
    if check_transformers_version(transformers.__version__) == "shim":
        copied = apply_transformers_shim()
        if copied:
            logger.info(
                "transformers %s: copied %s into transformers.modeling_utils for RAM",
                transformers.__version__,
                ", ".join(copied),
            )
    try:
        import ram
        import ram.models.ram  # noqa: F401
        import ram.models.ram_plus  # noqa: F401
        import ram.models.utils  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "ram":
            raise ValueError(
                f"tagger: the 'ram' package (recognize-anything) is not installed; {_INSTALL}"
            ) from None
        raise ValueError(
            f"tagger: RAM cannot be imported: missing module {exc.name!r}; {_INSTALL}"
        ) from None
    except ImportError as exc:
        raise ValueError(
            f"tagger: RAM cannot be imported with transformers "
            f"{transformers.__version__} ({exc}); pip install 'transformers<4.56'"
        ) from None
    return ram


def placeholder_vocab_dir(folder: str | os.PathLike | None = None) -> Path:
    """A folder with a BERT-sized placeholder ``vocab.txt`` (30,522 entries) for RAM's tokenizer."""
    folder = (
        Path(folder) if folder is not None else default_cache_dir() / "ram_placeholder_tokenizer"
    )
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        tokens = (
            ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        )
        tokens += [f"placeholder{i}" for i in range(30522 - len(tokens))]
        with atomic_path(vocab) as tmp:
            tmp.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


def check_load_result(
    missing: list[str], unexpected: list[str], *, checkpoint: str, strict: bool = True
) -> None:
    """Raise ``ValueError`` naming ``checkpoint`` if keys are missing or unexpected.

    Buffers that RAM's loaders drop on purpose and the model rebuilds are ignored, and so are the
    known harmless extra keys of the released files (``logit_scale``: RAM_plus has no such
    parameter and tagging never uses one), which are logged. With ``strict=False`` any other
    problem is logged as a warning instead.
    """
    missing = [k for k in missing if not k.endswith(_REBUILT_BUFFERS)]
    harmless = [k for k in unexpected if k in _HARMLESS_EXTRA_KEYS]
    if harmless:
        logger.info("checkpoint %s: ignoring key(s) %s, which RAM has no parameter for", checkpoint, harmless)
    unexpected = [k for k in unexpected if k not in _HARMLESS_EXTRA_KEYS]
    if not missing and not unexpected:
        return
    msg = (
        f"checkpoint: {checkpoint!r} does not match the model: {len(missing)} missing key(s) "
        f"{missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]} "
        "(wrong variant ram/ram++, backbone or image size?)"
    )
    if strict:
        raise ValueError(msg)
    logger.warning(msg)


def _check_arguments(variant: str, vit: str, image_size: int, model_kwargs: Any, open_set: str,
                     open_threshold: float) -> dict[str, Any]:
    """Refuse, before any work, what RAM itself would crash on deep inside (issue 15, item 7)."""
    if variant not in WEIGHTS_URLS:
        raise ValueError(f"variant: expected 'ram++' or 'ram', got {variant!r}")
    if vit not in ("swin_l", "swin_b", "base", "large"):
        raise ValueError(f"vit: expected swin_l, swin_b, base or large, got {vit!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size: expected a positive integer, got {image_size!r}")
    if vit.startswith("swin") and image_size not in _SWIN_SIZES:
        raise ValueError(
            f"image_size: RAM's Swin backbones exist for 224 and 384 px only, got {image_size} "
            "(the released swin_l checkpoints are 384)"
        )
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"model_kwargs: expected a dict, got {type(model_kwargs).__name__}")
    kwargs = dict(model_kwargs or {})
    ours = sorted(set(kwargs) & {"image_size", "vit", "text_encoder_type"})
    if ours:
        raise ValueError(f"model_kwargs: {ours[0]!r} is a RamTagger argument; pass it directly")
    if open_set not in ("add", "replace"):
        raise ValueError(f"open_set: expected 'add' or 'replace', got {open_set!r}")
    if not 0 <= open_threshold <= 1:
        raise ValueError(f"open_threshold: must lie in [0, 1], got {open_threshold}")
    return kwargs


def _check_tag_list(kwargs: dict[str, Any]) -> None:
    """RAM fills ``class_threshold`` (one per tag of ``tag_list``) from its own 4,585-line threshold
    file: any other length crashes inside RAM. Refuse it and point to the supported ways."""
    if "tag_list" not in kwargs:
        return
    utils = importlib.import_module("ram.models.utils")
    threshold_file = Path(utils.CONFIG_PATH) / "data" / "ram_tag_list_threshold.txt"
    n_thresholds = len(threshold_file.read_text(encoding="utf-8").splitlines())
    tag_file = Path(kwargs["tag_list"])
    n_tags = len(tag_file.read_text(encoding="utf-8").splitlines()) if tag_file.is_file() else -1
    if n_tags != n_thresholds:
        raise ValueError(
            f"model_kwargs: 'tag_list' is not supported ({str(tag_file)!r}: RAM writes its "
            f"{n_thresholds} class thresholds into a tensor of the list's length and fails). To tag "
            "with your own words use vocabulary=[...] (open-set tags; CLI --vocabulary FILE); to "
            "drop tags use model_kwargs={'delete_tag_index': [...]}"
        )


class RamTagger(Tagger):
    """RAM or RAM++ over its 4,585-tag vocabulary (plus your own tags), with per-tag probabilities.

    Parameters
    ----------
    checkpoint : path-like
        ``ram_plus_swin_large_14m.pth`` (RAM++) or ``ram_swin_large_14m.pth`` (RAM); see
        ``WEIGHTS_URLS``.
    variant : {"ram++", "ram"}
    image_size : int
        384 for the released checkpoints; Swin backbones exist for 224 and 384 only.
    vit : {"swin_l", "swin_b", "base", "large"}
        Backbone; the released checkpoints are ``swin_l``.
    tokenizer_dir : path-like, optional
        Folder with BERT's ``vocab.txt``; default a placeholder (tagging never tokenizes).
    device : str
    strict : bool
        Raise (default) or only warn on missing/unexpected checkpoint keys.
    model_kwargs : dict, optional
        Extra arguments for RAM's model class, e.g. ``delete_tag_index`` (tags RAM never reports;
        honoured: they are left out of the vocabulary). ``tag_list`` is refused (see
        ``vocabulary``).
    vocabulary : list of str or text file, optional
        **Open-set tags** (RAM's ``generate_tag_openset``): your own tags, embedded with
        ``text_encoder`` as RAM's ``build_openset_label_embedding`` does (:func:`open_set_prompts`)
        and recognised by the same tagging head.
    open_set : {"add", "replace"}
        ``"add"``: your tags after RAM's own (whose probabilities do not change: the head has no
        self-attention between tags); ``"replace"``: only your tags (RAM's open-set inference).
    open_threshold : float
        Threshold of the open-set tags (RAM's choice for unseen categories: 0.5).
    text_encoder : str or ClipModel
        CLIP for the open-set tag embeddings; RAM++ was trained against OpenAI's ViT-B/16.
    trust_pickle : bool
        Allow a checkpoint that is a full pickle (runs code from the file); default weights only.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        *,
        variant: str = "ram++",
        image_size: int = 384,
        vit: str = "swin_l",
        tokenizer_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        strict: bool = True,
        model_kwargs: dict[str, Any] | None = None,
        vocabulary: Sequence[str] | str | os.PathLike | None = None,
        open_set: str = "add",
        open_threshold: float = 0.5,
        text_encoder: Any = "clip:ViT-B-16:openai",
        trust_pickle: bool = False,
    ):
        kwargs = _check_arguments(variant, vit, image_size, model_kwargs, open_set, open_threshold)
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise ValueError(
                f"tagger: {variant} weights {str(checkpoint)!r} not found; download "
                f"{WEIGHTS_URLS[variant]} (e.g. huggingface-cli download "
                f"{WEIGHTS_URLS[variant].split('/resolve')[0].split('huggingface.co/')[1]} "
                f"{WEIGHTS_URLS[variant].rsplit('/', 1)[1]})"
            )
        if tokenizer_dir is not None and not (Path(tokenizer_dir) / "vocab.txt").is_file():
            raise ValueError(f"tokenizer_dir: {str(tokenizer_dir)!r} has no vocab.txt")
        extra = resolve_vocabulary(vocabulary) if vocabulary is not None else []
        if extra and open_set == "replace" and kwargs.get("delete_tag_index"):
            raise ValueError("model_kwargs: delete_tag_index indexes RAM's tags; open_set='replace' drops them")
        self.device = resolve_device(device)
        ram = import_ram()
        _check_tag_list(kwargs)
        tok = str(tokenizer_dir) if tokenizer_dir is not None else str(placeholder_vocab_dir())
        kwargs = {"image_size": image_size, "vit": vit, "text_encoder_type": tok, **kwargs}
        # ram.models.ram_plus is shadowed by the function of that name: go through sys.modules
        cls = (
            importlib.import_module("ram.models.ram_plus").RAM_plus
            if variant == "ram++"
            else importlib.import_module("ram.models.ram").RAM
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # RAM prints progress; keep it in the log
            model = cls(**kwargs)
            model, msg = _load_checkpoint(ram, model, str(checkpoint), kwargs, trust_pickle=trust_pickle)
        logger.debug("RAM: %s", out.getvalue())
        check_load_result(
            list(msg.missing_keys),
            list(msg.unexpected_keys),
            checkpoint=str(checkpoint),
            strict=strict,
        )
        model = model.eval()
        settings_extra: dict[str, Any] = {}
        if extra:
            clip = text_encoder if isinstance(text_encoder, ClipModel) else load_clip(text_encoder, device="cpu")
            add_open_set_tags(model, extra, open_set_embeddings(clip, extra),
                              replace=open_set == "replace", threshold=open_threshold)
            settings_extra = {"open_set": open_set, "open_tags": extra, "open_threshold": open_threshold,
                              "text_encoder": clip.identity}
        self.model = model.to(self.device)
        self._openset = bool(extra)
        deleted = _deleted_tags(model)
        self._keep = np.setdiff1d(np.arange(int(model.num_class)), deleted)
        self.name = variant
        self.variant = variant
        self.weights = str(checkpoint.resolve())
        self.vocabulary = [str(t) for t in np.asarray(model.tag_list)[self._keep]]
        thresholds = model.class_threshold.detach().cpu().numpy().astype(np.float64)
        # RAM: p > t; primekit: p >= threshold. The float32 probabilities and thresholds are
        # exact in float64, so p > t exactly when p >= the next float64 above t.
        self.thresholds = np.nextafter(thresholds[self._keep], np.inf)
        self.settings = {
            "variant": variant,
            "image_size": image_size,
            "vit": vit,
            **{k: v for k, v in (model_kwargs or {}).items()},
            **settings_extra,
        }
        self._identity = file_identity(checkpoint)
        self._transform = ram.get_transform(image_size=image_size)

    def transform(self, image):
        return self._transform(image)

    def cache_settings(self) -> dict:
        return {"tagger": self.name, "weights": self._identity, "settings": self.settings}

    def forward(self, batch):
        """Probabilities (b, n_tags): sigmoid of the tagging head's logits in ``generate_tag``
        (``generate_tag_openset`` with open-set tags), without the deleted tags."""
        probs = ram_probabilities(self.model, batch, openset=self._openset)
        return probs[:, self._keep] if len(self._keep) != probs.shape[1] else probs


def _deleted_tags(model) -> np.ndarray:
    """``model.delete_tag_index`` checked against the vocabulary (RAM zeroes these after the
    threshold in ``generate_tag``, so they are never reported)."""
    deleted = np.asarray(list(getattr(model, "delete_tag_index", []) or []), dtype=np.int64)
    if len(deleted) and (deleted.min() < 0 or deleted.max() >= int(model.num_class)):
        raise ValueError(f"model_kwargs: delete_tag_index must lie in [0, {int(model.num_class)})")
    return np.unique(deleted)


def add_open_set_tags(model, tags: Sequence[str], embeddings, *, replace: bool = False,
                      threshold: float = 0.5) -> None:
    """Give a RAM/RAM++ model open-set tags, as RAM's ``inference_ram*_openset`` scripts do.

    ``embeddings`` (len(tags), d) are the tags' CLIP text embeddings. ``replace``: the model knows
    only these tags (RAM's open-set inference). Else they follow RAM's own tags: RAM++ keeps
    several description embeddings per tag and softmax-weights them per image, so each new tag's
    embedding fills all of its slots (identical slots weight to that embedding exactly).
    """
    import torch  # heavy: imported on first use

    width = int(model.label_embed.shape[1])
    if embeddings.shape[1] != width:
        raise ValueError(
            f"text_encoder: gives {embeddings.shape[1]}-dim text embeddings; RAM's label "
            f"embeddings are {width}-dim (use clip:ViT-B-16:openai, the CLIP RAM was trained with)"
        )
    tags = list(tags)
    if not replace:
        clash = sorted(set(tags) & {str(t) for t in model.tag_list})
        if clash:
            raise ValueError(f"vocabulary: {clash[:5]} are RAM tags already; remove them or use open_set='replace'")
    new = embeddings.detach().to(model.label_embed.device, model.label_embed.dtype)
    thresholds = torch.full((len(tags),), float(threshold))
    if replace:
        model.label_embed = torch.nn.Parameter(new)
        model.tag_list = np.array(tags)
        model.class_threshold = thresholds
    else:
        per_tag = int(model.label_embed.shape[0]) // int(model.num_class)
        model.label_embed = torch.nn.Parameter(
            torch.cat([model.label_embed.data, new.repeat_interleave(per_tag, dim=0)])
        )
        model.tag_list = np.concatenate([np.asarray(model.tag_list), np.array(tags)])
        model.class_threshold = torch.cat([model.class_threshold.float(), thresholds])
    model.num_class = len(model.tag_list)


def _ram_templates() -> list[str]:
    """The prompt templates of RAM's open-set label embeddings (``multiple_templates`` of
    ``ram/utils/openset_utils.py``), read from the installed file: importing that module needs
    OpenAI's ``clip`` package (GitHub only), which tagging otherwise never uses."""
    ram = import_ram()
    path = Path(list(ram.__path__)[0]) / "utils" / "openset_utils.py"
    if path.is_file():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "multiple_templates" for t in node.targets
            ):
                return [str(t) for t in ast.literal_eval(node.value)]
    raise ValueError(
        f"vocabulary: RAM's open-set prompt templates (multiple_templates) are not in "
        f"{str(path)!r}; {_INSTALL}"
    )


def open_set_prompts(tag: str, templates: Sequence[str]) -> list[str]:
    """The prompts RAM writes for one open-set tag (``build_openset_label_embedding``): the name
    with ``_`` as a space, ``/`` as " or ", lower case and no final dot, put into every template
    (``{article}`` is "an" before a lower-case vowel, else "a"), and "This is " before a prompt
    that starts with "a" or "the"."""
    name = tag.replace("_", " ").replace("/", " or ").lower().rstrip(".")
    article = "an" if tag[0] in "aeiou" else "a"
    prompts = [template.format(name, article=article) for template in templates]
    return ["This is " + p if p.startswith(("a", "the")) else p for p in prompts]


def open_set_embeddings(clip: ClipModel, tags: Sequence[str]):
    """RAM's open-set label embeddings of ``tags`` (tensor (len(tags), d), unit norm): for each tag
    the normalised mean of its prompts' normalised CLIP text embeddings (:func:`open_set_prompts`)."""
    import torch  # heavy: imported on first use

    templates = _ram_templates()
    out = []
    for tag in tags:
        emb = clip.encode_texts(open_set_prompts(tag, templates))
        out.append(torch.nn.functional.normalize(emb.mean(0), dim=-1))
    return torch.stack(out)


def ram_probabilities(model, batch, *, openset: bool = False):
    """Run ``model.generate_tag(batch)`` (``generate_tag_openset`` when ``openset``) and return
    ``sigmoid`` of its head's logits (b, n_tags)."""
    import torch  # heavy: imported on first use

    captured = []
    handle = model.fc.register_forward_hook(lambda mod, inp, out: captured.append(out))
    try:
        with torch.inference_mode():
            (model.generate_tag_openset if openset else model.generate_tag)(batch)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(
            f"RAM's tagging head ran {len(captured)} times in generate_tag; expected once"
        )
    return torch.sigmoid(captured[0].squeeze(-1).float())


def _load_checkpoint(ram, model, path: str, kwargs: dict, *, trust_pickle: bool = False):
    """RAM's own loader for the backbone (key remapping, interpolation); returns (model, msg)."""
    utils = importlib.import_module("ram.models.utils")
    loader = {
        "swin_b": lambda: utils.load_checkpoint_swinbase(model, path, kwargs),
        "swin_l": lambda: utils.load_checkpoint_swinlarge(model, path, kwargs),
    }.get(kwargs["vit"], lambda: utils.load_checkpoint(model, path))
    try:
        with weights_only_loads(trust_pickle=trust_pickle):
            return loader()
    except Exception as exc:
        if not trust_pickle and is_weights_only_error(exc):
            raise ValueError(pickle_refusal(path, argument="checkpoint", what="checkpoint")) from None
        raise ValueError(f"checkpoint: cannot load {path!r}: {type(exc).__name__}: {exc}") from None
