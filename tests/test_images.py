"""Tests for nst_helpers.images: samples, modes, bad input, round trips."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from nst_helpers import SAMPLES, load_image, sample_image, save_image
from nst_helpers.images import SampleUnavailable


def test_samples_carry_urls_hashes_and_rights():
    assert set(SAMPLES) == {"tubingen", "shipwreck", "starry_night", "the_scream", "seated_nude", "composition_vii"}
    for sample in SAMPLES.values():
        assert sample.url.startswith("https://") and len(sample.sha256) == 64
    assert "Praefcke" in SAMPLES["tubingen"].credit
    assert not SAMPLES["seated_nude"].bundle_ok and "request" in SAMPLES["seated_nude"].rights


def test_sample_from_the_data_dir_is_hash_checked(data_dir):
    path = sample_image("tubingen")
    assert path.parent == data_dir
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAMPLES["tubingen"].sha256


def test_load_sample_by_name_and_size(data_dir):
    image = load_image("tubingen", size=128)
    assert image.shape == (1, 3, 96, 128)  # 1024x768 photo, long edge 128
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert load_image("the_scream", size=100).shape == (1, 3, 100, 79)  # portrait: long edge is the height


def test_wrong_file_in_data_dir_is_refused(tmp_path, monkeypatch):
    Image.new("RGB", (8, 8)).save(tmp_path / "tubingen.jpg")
    monkeypatch.setenv("NST_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="expected SHA-256"):
        sample_image("tubingen")


def test_corrupt_cached_copy_is_removed_and_said(tmp_path, monkeypatch):
    monkeypatch.delenv("NST_DATA_DIR", raising=False)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))
    bad = tmp_path / "shipwreck.jpg"
    bad.write_bytes(b"not the painting")
    with pytest.warns(UserWarning, match="Removed .*shipwreck.jpg: its SHA-256 did not match"):
        with pytest.raises(SampleUnavailable):
            sample_image("shipwreck")  # the re-download is refused: tests are offline
    assert not bad.exists()


def test_offline_download_names_the_data_dir_and_url(tmp_path, monkeypatch):
    monkeypatch.delenv("NST_DATA_DIR", raising=False)
    with pytest.raises(SampleUnavailable) as info:
        sample_image("starry_night")
    assert "NST_DATA_DIR" in str(info.value) and SAMPLES["starry_night"].url in str(info.value)


def test_download_hash_mismatch_is_reported(monkeypatch):
    import pooch

    monkeypatch.delenv("NST_DATA_DIR", raising=False)

    def mismatch(*args, **kwargs):
        raise ValueError("SHA256 hash of downloaded file does not match the known hash")

    monkeypatch.setattr(pooch, "retrieve", mismatch)
    with pytest.raises(ValueError, match="SHA-256 did not match; removed it"):
        sample_image("the_scream")


def test_picasso_is_not_downloaded_without_request(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_DATA_DIR", str(tmp_path))
    with pytest.raises(SampleUnavailable, match="not available locally"):
        sample_image("seated_nude", download=False)


def test_unknown_sample():
    with pytest.raises(ValueError, match="Unknown sample 'mona_lisa'; choose from tubingen"):
        sample_image("mona_lisa")


# ------------------------------------------------------------------ modes


def _gradient(w: int = 12, h: int = 8) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float64)
    y = np.linspace(0, 255, h, dtype=np.float64)
    return (x[None, :] * 0.6 + y[:, None] * 0.4)


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "CMYK", "1"])
def test_modes_load_as_rgb(tmp_path, mode):
    rgb = Image.fromarray(np.stack([_gradient(), 255 - _gradient(), np.full((8, 12), 90.0)], -1).astype(np.uint8))
    image = rgb.convert(mode)
    path = tmp_path / f"im.{'jpg' if mode == 'CMYK' else 'png'}"
    image.save(path)
    loaded = load_image(path)
    assert loaded.shape == (1, 3, 8, 12)
    expected = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    if mode != "CMYK":  # JPEG is lossy
        torch.testing.assert_close(loaded[0], expected, atol=1 / 255, rtol=0)


def test_grayscale_is_repeated_over_channels(tmp_path):
    Image.fromarray(_gradient().astype(np.uint8), "L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    torch.testing.assert_close(loaded[:, 0], loaded[:, 1])
    torch.testing.assert_close(loaded[:, 0], loaded[:, 2])


def test_sixteen_bit_keeps_its_range(tmp_path):
    values = (_gradient() / 255 * 65535).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    loaded = load_image(tmp_path / "deep.png")
    torch.testing.assert_close(loaded[0, 0], torch.from_numpy(values / 65535).float(), atol=1 / 255, rtol=0)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red ...
    rgba[:2, :, 3] = 255  # ... opaque in the top half, transparent below
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")[0]
    torch.testing.assert_close(loaded[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(loaded[:, 3, 0], torch.tensor([1.0, 1.0, 1.0]))
    Image.fromarray(rgba, "RGBA").convert("LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[0, :, 3, 0].tolist() == [1.0, 1.0, 1.0]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "rot.jpg")
    assert loaded.shape == (1, 3, 20, 10)  # displayed upright: portrait
    assert loaded[0, :, 2, 5].mean() > 0.8 and loaded[0, :, 17, 5].mean() < 0.2  # white on top


def test_resize_keeps_aspect(tmp_path):
    Image.new("RGB", (300, 100)).save(tmp_path / "wide.png")
    assert load_image(tmp_path / "wide.png", size=60).shape == (1, 3, 20, 60)
    with pytest.raises(ValueError, match="positive"):
        load_image(tmp_path / "wide.png", size=0)


# ------------------------------------------------------------------ bad input


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No image at .*nothing.png.*sample name"):
        load_image(tmp_path / "nothing.png")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("hello, this is text")
    with pytest.raises(ValueError, match="not an image file Pillow can read"):
        load_image(tmp_path / "notes.png")


def test_truncated_image(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.jpg")


def test_decompression_bomb_names_the_fix(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2x this: Pillow refuses
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS = None"):
        load_image(tmp_path / "big.png")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_image(tmp_path)


def test_save_and_load_round_trip(tmp_path):
    image = torch.rand(1, 3, 10, 14, generator=torch.Generator().manual_seed(3))
    path = save_image(image * 1.5 - 0.2, tmp_path / "sub" / "out.png")  # clamped on save
    again = load_image(path)
    torch.testing.assert_close(again, (image * 1.5 - 0.2).clamp(0, 1), atol=0.5 / 255 + 1e-6, rtol=0)


def test_url_download_failure_is_clear():
    with pytest.raises(OSError, match="Could not download https://example.invalid/x.png"):
        load_image("https://example.invalid/x.png")


def test_copied_sample_file_loads(tmp_path, data_dir):
    shutil.copy(data_dir / "starry_night.jpg", tmp_path / "s.jpg")
    assert load_image(tmp_path / "s.jpg", size=64).shape == (1, 3, 40, 64)


def test_output_paths_are_checked_before_any_work(tmp_path):
    from nst_helpers.images import check_output_path

    assert check_output_path(tmp_path / "new" / "folder" / "out.png") == tmp_path / "new" / "folder" / "out.png"
    with pytest.raises(ValueError, match=r"\.xyz is not a format Pillow writes; end the file name with \.png"):
        check_output_path(tmp_path / "out.xyz")
    with pytest.raises(ValueError, match="no extension"):
        check_output_path(tmp_path / "out")
    (tmp_path / "a_file.jpg").write_bytes(b"not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_path(tmp_path / "a_file.jpg" / "deeper" / "out.png")
    with pytest.raises(ValueError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(ValueError, match="not a format"):  # save_image checks too, before writing anything
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "out.xyz")
