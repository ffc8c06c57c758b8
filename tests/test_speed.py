"""Tests for nst_helpers.speed: fast paths that change how runs go, never what they compute."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from nst_helpers import load_vgg19, speed, transfer
from nst_helpers.speed import keep_cpu_memory, native_bf16, prepare_network, run_settings


@pytest.fixture(scope="module")
def vgg():
    """A private random-weight network: these tests change its memory layout."""
    from nst_helpers import load_vgg19

    return load_vgg19("random", pooling="avg", device="cpu")


def test_channels_last_gives_the_same_features(vgg, smooth_image):
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    plain = vgg(smooth_image, layers)
    fast = copy.deepcopy(vgg).to(memory_format=torch.channels_last)
    nhwc = fast(smooth_image.contiguous(memory_format=torch.channels_last), layers)
    assert nhwc["relu1_1"].is_contiguous(memory_format=torch.channels_last)
    for layer in layers:
        torch.testing.assert_close(nhwc[layer], plain[layer], rtol=1e-4, atol=1e-5)


def test_channels_last_transfer_matches_nchw(pair):
    content, style = pair
    kw = dict(alpha=1.0, beta=1e2, steps=3, optimizer="adam", progress=False)
    plain = transfer(content, style, network=load_vgg19("random", pooling="avg", device="cpu", channels_last=False), **kw)
    fast = transfer(content, style, network=load_vgg19("random", pooling="avg", device="cpu", channels_last=True), **kw)
    torch.testing.assert_close(fast.history["total"], plain.history["total"], rtol=1e-3, atol=0)


def test_bf16_autocast_loss_is_close_to_fp32(caffe_vgg, pair):
    """bf16 features with fp32 Grams and losses: the same optimisation to within a few %."""
    content, style = pair
    # Adam: its path is smooth in the loss, so it shows the precision, not L-BFGS's line-search branching.
    kw = dict(alpha=1.0, beta=1e2, steps=15, optimizer="adam", network=caffe_vgg, progress=False)
    fp32 = transfer(content, style, precision="fp32", **kw)
    bf16 = transfer(content, style, precision="bf16", **kw)
    assert bf16.loss == pytest.approx(fp32.loss, rel=0.05)
    assert bf16.history["total"][0] == pytest.approx(fp32.history["total"][0], rel=0.02)


def test_the_images_follow_the_networks_layout_and_no_network_is_changed(pair):
    """The engine feeds each network its own layout and never switches one in place (the lab's thread may use it)."""
    from nst_helpers.speed import cached_network

    for channels_last in (True, False):
        mine = load_vgg19("random", pooling="avg", device="cpu", channels_last=channels_last)
        assert prepare_network(mine) is channels_last
        transfer(*pair, steps=2, optimizer="adam", network=mine, progress=False)
        assert mine.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    shared = cached_network("caffe", "avg", "cpu", False)  # the default network (Options.vgg), shared by every run
    before = shared.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last)
    transfer(*pair, steps=2, optimizer="adam", progress=False)
    assert shared.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last) is before


def test_bf16_only_where_the_device_has_it_natively(monkeypatch):
    """precision="auto": bf16 on Ampere and later; fp32 on a T4 (7.5), where bf16 is emulated; on a CPU only with
    AVX512-BF16, AMX or Arm's BF16 in its flags."""
    from nst_helpers import speed
    from nst_helpers.speed import autocast

    for capability, native in (((7, 5), False), ((8, 0), True), ((9, 0), True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert native_bf16(torch.device("cuda")) is native
    cpu = torch.device("cpu")
    for flags, native in (("fpu sse2 avx2 avx512f", False), ("fpu avx512f avx512_bf16", True),
                          ("amx_tile amx_bf16", True), ("fp asimd bf16", True), ("", False)):
        monkeypatch.setattr(speed, "cpu_flags", lambda flags=flags: frozenset(flags.split()))
        assert native_bf16(cpu) is native
        assert autocast(cpu, "auto")._enabled is native  # bf16 where native, else fp32
        assert not autocast(cpu, "fp32")._enabled and autocast(cpu, "bf16")._enabled  # an explicit precision wins


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    from nst_helpers.speed import cpu_flags

    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_flags.__wrapped__(str(x86)) == {"fpu", "avx512f", "avx512_bf16"}
    assert "bf16" in cpu_flags.__wrapped__(str(arm))
    assert cpu_flags.__wrapped__(str(tmp_path / "absent")) == frozenset()


def test_fp32_on_mps_with_every_supported_torch():
    """An fp32 run enters the autocast contexts on MPS too: torch 2.2 has no MPS autocast and refuses even
    ``torch.autocast("mps", enabled=False)``, so there the contexts are empty (no MPS device is needed)."""
    from nst_helpers.speed import autocast, autocast_off

    with autocast(torch.device("mps"), "auto"), autocast_off("mps"), autocast_off("cpu"):
        pass


def test_cudnn_autotuning_lasts_only_as_long_as_the_run(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with run_settings(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark is False  # put back: no process-wide switch left behind
    with pytest.raises(KeyError), run_settings(torch.device("cuda")):
        raise KeyError("an error inside the run")
    assert torch.backends.cudnn.benchmark is False


def test_load_vgg19_picks_the_fast_layout():
    fast = load_vgg19("random", pooling="avg", device="cpu")  # NHWC on CPU, measured faster there
    assert fast.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last)


class _FakeLibc:
    """Records mallopt/malloc_trim calls instead of changing this process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_cpu_memory_is_kept_during_runs_and_given_back_after(monkeypatch, pair, vgg):
    libc = _FakeLibc()
    monkeypatch.setattr(speed, "_glibc", lambda: libc)
    keep = [("mallopt", -4, 0), ("mallopt", -1, 2**31 - 1)]  # M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2 GiB
    # mmap allowed again above 32 MiB, trim above 64 MiB (where glibc's sliding thresholds go), memory back
    restore = [("mallopt", -4, 65536), ("mallopt", -3, 32 * 2**20), ("mallopt", -1, 64 * 2**20), ("malloc_trim", 0)]
    with keep_cpu_memory():
        assert libc.calls == keep
        with keep_cpu_memory():  # nested (or a second thread): no change until the last one ends
            pass
        assert libc.calls == keep
    assert libc.calls == keep + restore
    libc.calls.clear()
    with pytest.raises(KeyError), keep_cpu_memory():
        raise KeyError("an error inside the run")
    assert libc.calls == keep + restore  # restored on errors too
    libc.calls.clear()
    with keep_cpu_memory(active=False):  # off the CPU: untouched
        pass
    assert libc.calls == []
    content, style = pair
    transfer(content, style, steps=2, optimizer="adam", network=vgg, recipe="paper", progress=False)
    assert libc.calls == keep + restore  # the engine uses it around a CPU run


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(speed._glibc() is None, reason="glibc only (and not with the user's MALLOC_* settings)")
def test_freed_memory_stays_during_a_run_and_goes_back_after():
    # The real allocator: a freed 256 MiB block is unmapped at once outside a run, kept inside one
    # (the next step reuses it without page faults), and handed back when the run ends.
    def touch_and_free() -> float:
        block = torch.ones(64 * 2**20)  # 256 MiB, written: resident
        del block
        return _resident_mib()

    base = _resident_mib()
    assert touch_and_free() < base + 64  # outside a run: given back at once
    with keep_cpu_memory():
        assert touch_and_free() > base + 192  # kept for the next step
    assert _resident_mib() < base + 64  # given back at the end
    assert touch_and_free() < base + 64  # and large blocks are unmapped again after the run
