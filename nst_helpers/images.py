"""Images in and out: the one loader used by notebooks, command line and figures.

Images are float tensors of shape (1, 3, H, W), RGB, values in [0, 1].

The paper's images are never shipped with the project. ``sample_image`` finds
them in ``$NST_DATA_DIR`` first (a folder you fill yourself; tests point it at
a local copy), then in a per-user cache, and otherwise downloads them once,
checking each file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

__all__ = ["as_batch", "cache_dir", "check_output_path", "load_image", "resize", "Sample", "sample_image", "SAMPLES", "SampleUnavailable",
    "save_image", "sha256", "to_pil"]

_REPO = "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs"


@dataclass(frozen=True)
class Sample:
    """One of the paper's images: where it comes from and what you may do with it."""

    filename: str
    url: str
    sha256: str
    title: str
    credit: str
    rights: str
    bundle_ok: bool = True  # False: download on explicit request only, never redistribute


SAMPLES: dict[str, Sample] = {
    "tubingen": Sample(
        "tubingen.jpg", f"{_REPO}/tubingen.jpg",
        "e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
        "Neckarfront in Tübingen", "Photo: Andreas Praefcke, CC BY 3.0", "CC BY 3.0: credit the photographer",
    ),
    "shipwreck": Sample(
        "shipwreck.jpg", f"{_REPO}/shipwreck.jpg",
        "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
        "The Shipwreck of the Minotaur", "J. M. W. Turner, c. 1810", "public domain",
    ),
    "starry_night": Sample(
        "starry_night.jpg", f"{_REPO}/starry_night.jpg",
        "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
        "The Starry Night", "Vincent van Gogh, 1889", "public domain",
    ),
    "the_scream": Sample(
        "the_scream.jpg", f"{_REPO}/the_scream.jpg",
        "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
        "The Scream", "Edvard Munch, 1893", "public domain",
    ),
    "seated_nude": Sample(
        "seated-nude.jpg", f"{_REPO}/seated-nude.jpg",
        "f398757cfb5346842c3bc309ca65d03381b38b1f5f8d7c60abe68a804a405cf1",
        "Femme nue assise", "Pablo Picasso, 1910", "still under copyright: download on request only",
        bundle_ok=False,
    ),
    "composition_vii": Sample(
        "composition_vii.jpg",
        "https://raw.githubusercontent.com/asetoodehnia/Neural-Style-Transfer/"
        "71eaf3fe22c5d3bc40817cfee1a1a4a65f261bfe/styles/composition_vii.jpg",
        "20af1d4c3bcb0cc370162700f2d9d4101ea3781cf79f2b979addf5225fd31ef9",
        "Composition VII", "Wassily Kandinsky, 1913", "public domain",
    ),
}


class SampleUnavailable(FileNotFoundError):
    """A sample image is neither local nor downloadable right now."""


def cache_dir() -> Path:
    """Per-user cache for downloads (``$NST_CACHE_DIR`` overrides it)."""
    if os.environ.get("NST_CACHE_DIR"):
        return Path(os.environ["NST_CACHE_DIR"])
    import pooch

    return Path(pooch.os_cache("nst-notebooks"))


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex), as ``SOURCES.md`` and ``Sample.sha256`` give it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sample(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except KeyError:
        raise ValueError(f"Unknown sample {name!r}; choose from {', '.join(SAMPLES)}") from None


def sample_image(name: str, download: bool = True) -> Path:
    """Path to one of the paper's images, fetched and hash-checked if need be.

    Looks in ``$NST_DATA_DIR`` first, then in ``cache_dir()``, then downloads.

    Args:
        name: one of ``SAMPLES`` (``"tubingen"``, ``"starry_night"``, ...).
        download: if False, only local copies are used (the figures use this
            for the Picasso, which is downloaded on explicit request only).

    Raises:
        SampleUnavailable: not local, and the download failed or was not allowed.
        ValueError: a local copy has the wrong SHA-256 (a cached copy is removed).
    """
    sample = _sample(name)
    data_dir = os.environ.get("NST_DATA_DIR")
    if data_dir:
        local = Path(data_dir) / sample.filename
        if local.exists():
            if sha256(local) != sample.sha256:
                raise ValueError(
                    f"{local} does not have the expected SHA-256 ({sample.sha256}); it is not the "
                    f"paper's image. Replace it with the file from {sample.url}"
                )
            return local
    cached = cache_dir() / sample.filename
    if cached.exists():
        if sha256(cached) == sample.sha256:
            return cached
        cached.unlink()
        warnings.warn(f"Removed {cached}: its SHA-256 did not match; downloading it again", stacklevel=2)
    where = f"$NST_DATA_DIR ({data_dir})" if data_dir else "$NST_DATA_DIR (not set)"
    if not download:
        raise SampleUnavailable(
            f"{sample.title} ({name}) is not available locally: put {sample.filename} in {where} "
            f"or in {cache_dir()}; it can be downloaded from {sample.url}"
        )
    try:
        import pooch

        path = pooch.retrieve(
            sample.url, known_hash=f"sha256:{sample.sha256}", fname=sample.filename,
            path=cache_dir(), progressbar=False,
        )
    except ValueError as err:  # pooch: hash mismatch; it has already removed the download
        raise ValueError(f"Downloaded {sample.url} but its SHA-256 did not match; removed it. {err}") from err
    except Exception as err:  # offline: requests/urllib errors of many kinds
        raise SampleUnavailable(
            f"Could not download {sample.title} ({name}) from {sample.url}: {err}. "
            f"Offline? Put {sample.filename} in a folder and point {where} at it."
        ) from err
    return Path(path)


def _open(source: str | Path) -> Image.Image:
    text = str(source)
    if isinstance(source, str) and source in SAMPLES:
        path = sample_image(source)
    elif text.startswith(("http://", "https://")):
        import pooch

        try:
            path = Path(pooch.retrieve(text, known_hash=None, path=cache_dir() / "urls", progressbar=False))
        except Exception as err:
            raise OSError(f"Could not download {text}: {err}") from err
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"No image at {path}. Give a file path, a URL, or a sample name: {', '.join(SAMPLES)}"
            )
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; give the path of an image file in it")
    try:
        image = Image.open(path)
        image.load()
    except Image.DecompressionBombError as err:
        raise ValueError(
            f"{path} is too large for Pillow's decompression-bomb guard ({err}). If you trust the "
            "file, shrink it first, or allow it with PIL.Image.MAX_IMAGE_PIXELS = None"
        ) from err
    except UnidentifiedImageError as err:
        raise ValueError(f"{path} is not an image file Pillow can read (PNG, JPEG, ...)") from err
    except OSError as err:  # truncated or corrupt data
        raise ValueError(f"{path} could not be decoded ({err}); the file may be truncated or corrupt") from err
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_image(source: str | Path, size: int | None = None) -> Tensor:
    """Load an image as a (1, 3, H, W) RGB tensor in [0, 1].

    Args:
        source: a file path, an http(s) URL, or a sample name (see ``SAMPLES``).
        size: length of the long edge after resizing (aspect kept); None keeps
            the original size.

    EXIF orientation is applied; grayscale, palette, RGBA, 16-bit and CMYK
    images are converted to RGB.
    """
    image = _to_rgb(ImageOps.exif_transpose(_open(source)))
    if size is not None:
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        w, h = image.size
        scale = size / max(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(image: Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> Pillow RGB image (values clamped)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"Expected one image, got a batch of {image.shape[0]}; index it first")
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def check_output_path(path: str | Path) -> Path:
    """``path`` as a ``Path`` if a picture can be saved there; else a ``ValueError`` that says what to change.

    Checked before any work starts (the command line does): a file extension Pillow can write, no
    file where a folder is needed, and a writable folder that exists or can be made.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name inside it, e.g. {path / 'result.png'}")
    writable = sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)
    if path.suffix.lower() not in writable:
        raise ValueError(f"Cannot save a picture as {path.name!r}: {path.suffix or 'no extension'} is not a format "
                         "Pillow writes; end the file name with .png or .jpg")
    folder = path.parent
    while not folder.exists():  # the nearest folder that exists decides whether the rest can be made
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"Cannot save to {path}: {folder} is a file, not a folder; choose another output path")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"Cannot save to {path}: {folder} is not writable; choose a folder you can write to")
    return path


def save_image(image: Tensor, path: str | Path) -> Path:
    """Save a (1, 3, H, W) image in [0, 1] (clamped) to ``path``; the format follows the suffix.

    ``check_output_path`` runs first, so a bad path is a ``ValueError`` that names the fix.
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(image).save(path)
    return path


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a (B, 3, H, W) image to (height, width) with antialiased bilinear interpolation."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return torch.nn.functional.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def scaled_shape(image: Tensor, fraction: float) -> tuple[int, int]:
    """(H, W) of ``image`` with both sides times ``fraction``, at least 1 px."""
    return max(1, round(image.shape[-2] * fraction)), max(1, round(image.shape[-1] * fraction))


def as_batch(image: Tensor, name: str) -> Tensor:
    """``image`` as a float (B, 3, H, W) batch (a (3, H, W) image gains the batch axis); a clear error otherwise."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be an image tensor (1, 3, H, W); load one with nst_helpers.load_image")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}")
    return image.float()
