"""nst_helpers: the small package behind the nst-notebooks series.

Neural style transfer after Gatys, Ecker & Bethge, "A Neural Algorithm of
Artistic Style" (2015) and "Image Style Transfer Using Convolutional Neural
Networks" (CVPR 2016). One module per concept:

* ``features``: VGG-19 with the paper's layer names (``load_vgg19``)
* ``losses``: the paper's equations as pure tensor functions (and the total-variation term)
* ``balance``: the alpha/beta balance of eq. 7 across sizes and networks
* ``grain``: how grainy a picture is (pixel-level energy neither input has)
* ``optimize``: the one optimisation engine (content, texture, transfer)
* ``images``: loading, saving and the paper's sample images
* ``plotting``: showing images and loss curves in notebooks
"""

from .balance import balanced_ratio, default_beta, paper_ratio
from .features import (
    CONV_LAYERS,
    LAYER_NAMES,
    STYLE_LAYERS,
    VGG19Features,
    layer_shapes,
    load_vgg19,
    pick_device,
)
from .grain import grain
from .images import SAMPLES, load_image, sample_image, save_image, to_pil
from .losses import (
    content_loss,
    gram_matrix,
    rescale_gram,
    style_layer_loss,
    style_loss,
    total_loss,
    total_variation,
)
from .optimize import (
    Options,
    Progress,
    Result,
    optimize_image,
    reconstruct_content,
    synthesize_texture,
    transfer,
    transfer_batch,
)

__version__ = "0.1.0"

__all__ = [
    "CONV_LAYERS",
    "LAYER_NAMES",
    "Options",
    "Progress",
    "Result",
    "SAMPLES",
    "STYLE_LAYERS",
    "VGG19Features",
    "balanced_ratio",
    "content_loss",
    "default_beta",
    "grain",
    "gram_matrix",
    "layer_shapes",
    "load_image",
    "load_vgg19",
    "optimize_image",
    "paper_ratio",
    "pick_device",
    "reconstruct_content",
    "rescale_gram",
    "sample_image",
    "save_image",
    "style_layer_loss",
    "style_loss",
    "synthesize_texture",
    "to_pil",
    "total_loss",
    "total_variation",
    "transfer",
    "transfer_batch",
]
