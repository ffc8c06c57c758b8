"""nst_helpers: the small package behind the nst-notebooks series.

Neural style transfer after Gatys, Ecker & Bethge, "A Neural Algorithm of
Artistic Style" (2015) and "Image Style Transfer Using Convolutional Neural
Networks" (CVPR 2016). One module per concept, where to find each of the paper's ideas:

* ``features``: VGG-19 with the paper's layer names, the normalised network (``load_vgg19``)
* ``losses``: eqs. 1-7 as pure tensor functions: content loss, Gram matrix, style loss, total
  loss (and the total-variation term, not in the paper)
* ``objective``: eq. 7 as a function of the image: targets computed once, the white-noise start,
  the style term (``Gram``, the paper's) and the extras a transfer may add, as objects
* ``optimize``: the one optimisation loop (L-BFGS or Adam on the pixels)
* ``tasks``: the paper's three tasks: ``reconstruct_content``, ``synthesize_texture``, ``transfer``
* ``runs``: the runs behind the figures (Fig. 1 rows, Fig. 2, the Fig. 3 grid)
* ``balance``: the alpha/beta balance of eq. 7 across sizes, recipes and networks
* ``smoothing``: the total-variation term ``Smoothing`` (not in the paper; on by default in ``transfer``)
* ``stats``: statistics that check the pictures (PSNR, autocorrelation length, E_l per layer,
  the grain figure)
* ``memory``: a run's memory from the layer shapes, what is free, and the largest size that fits
* ``speed``: what makes runs fast without changing them (bf16, memory layout, the network
  cache, the CPU allocator); ``threads``: torch's thread count from the CPU limit (set at import)
* ``images``: loading, saving and the paper's sample images
* ``plotting``: showing images and loss curves in notebooks
* ``lab``: the interactive lab's runs (settings, a background thread, Stop, the history);
  ``widgets``: its screen (notebook 05)
* ``figures``: the paper's figures (``make figures``); ``cli``: the command line
* ``style_statistics``: style as a statistic: G/M = Sigma + mu mu^T, MMD, mean/std, sliced Wasserstein
  (notebook 06; the style term ``Statistic``)
* ``color``: keeping the photo's colours (Gatys et al. 2017; ``KeepColors`` in ``transfer(extras=...)``)
* ``control``: several paintings: ``Blend``, spatial control ``Guided``, scale control ``ScaleMix``
  (Gatys et al. 2017; notebook 07)
* ``exercises``: the self-checks of the notebooks' exercises (``from nst_helpers import exercises``)
"""

from .balance import RECIPES, balanced_ratio, default_beta, paper_ratio
from .color import KeepColors
from .control import Blend, Guided, ScaleMix
from .features import (
    CONV_LAYERS,
    LAYER_NAMES,
    STYLE_LAYERS,
    VGG19Features,
    layer_shapes,
    load_vgg19,
    pick_device,
    receptive_field,
)
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
from .objective import Extra, Gram, Style, white_noise
from .optimize import Options, Progress, Result, optimize_image
from .smoothing import Smoothing
from .stats import grain
from .style_statistics import Statistic
from .tasks import reconstruct_content, synthesize_texture, transfer
from .threads import follow_cpu_limit

follow_cpu_limit()  # torch's threads follow the CPUs this process may use, a container's CPU limit included

__version__ = "0.1.0"

__all__ = [
    "Blend",
    "CONV_LAYERS",
    "Extra",
    "Gram",
    "Guided",
    "KeepColors",
    "RECIPES",
    "ScaleMix",
    "Smoothing",
    "Statistic",
    "Style",
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
    "receptive_field",
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
    "white_noise",
]
