"""Tests for nst_helpers.plotting: the lab's live loss plot (an SVG that must parse and show what it is given)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nst_helpers.plotting import loss_svg


def test_loss_plot_is_valid_svg():
    empty = loss_svg([], [], [], 1e-2, 3)
    curves = loss_svg([1, 2, 3], [5.0, 0.0, 3.0], [1e5, 1e3, float("nan")], 1e-2, 10)
    for svg in (empty, curves):
        ET.fromstring(svg)  # well-formed
    assert "<polyline" not in empty and curves.count("<polyline") == 2
    assert ">1e5<" in curves and ">1e0<" in curves  # decades of the log axis
