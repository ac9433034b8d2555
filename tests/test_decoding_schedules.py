"""Schedules: REFERENCE §1.9 values, the closed form, validation, input types and charts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from reflectnb.decoding.schedules import Constant, Cosine, Cyclic, Linear, Silver, Tip
from reflectnb.errors import OptionError


def repo_delta(t: int, amplitude: float, period: float, shift: float = 0.0) -> float:
    """A scalar transcription of CyclicReflex's ``cyclical_processor`` waveform (REFERENCE §1.2)."""
    c = ((t + shift * period) % period) / period
    if c <= 0.25:
        return (c / 0.25) * amplitude
    if c <= 0.75:
        return amplitude - ((c - 0.25) / 0.5) * 2 * amplitude
    return -amplitude + ((c - 0.75) / 0.25) * amplitude


def closed_form(t: np.ndarray, amplitude: float, period: float, shift: float = 0.0) -> np.ndarray:
    return amplitude * np.abs(4 * np.mod(t + shift * period - period / 4, period) / period - 2) - amplitude


def test_cyclic_wave_matches_the_reference_values_for_a5_c1200():
    positions = [0, 150, 300, 450, 600, 750, 900, 1050, 1200, 1500]
    expected = [0, 2.5, 5, 2.5, 0, -2.5, -5, -2.5, 0, 5]
    assert Cyclic(amplitude=5, period=1200, shift=0).value(positions).tolist() == expected


def test_cyclic_wave_peaks_at_a_quarter_and_troughs_at_three_quarters_for_a3_c600():
    assert Cyclic(amplitude=3, period=600).value([150, 450]).tolist() == [3.0, -3.0]


def test_a_shift_of_a_quarter_period_starts_the_wave_at_its_peak():
    assert Cyclic(amplitude=5, period=1200, shift=0.25).value(0).tolist() == [5.0]


@pytest.mark.parametrize("amplitude,period,shift", [(5, 1200, 0), (3, 600, 0), (1.5, 7, 0), (5, 1200, 0.25),
                                                    (2, 900, 0.6)])
def test_vectorised_wave_equals_the_repo_piecewise_and_the_closed_form_for_every_t(amplitude, period, shift):
    t = np.arange(0, 3 * period + 1)
    ours = Cyclic(amplitude, period, shift, windows=None).value(t)
    assert np.abs(ours - [repo_delta(int(x), amplitude, period, shift) for x in t]).max() < 1e-9
    assert np.abs(ours - closed_form(t, amplitude, period, shift)).max() < 1e-9


def test_cyclic_is_zero_outside_its_windows_and_the_window_end_is_excluded():
    wave = Cyclic(amplitude=5, period=1200, windows=[(0, 8192)])
    assert wave.value([8191, 8192, 9000]).tolist() == [pytest.approx(repo_delta(8191, 5, 1200)), 0.0, 0.0]


def test_silver_values_follow_the_two_adic_valuation_and_repeat_every_64():
    assert Silver(rho=2, modulus=64).value([0, 1, 3, 7, 63, 64]).tolist() == [0.25, 0.5, 1, 2, 16, 0.25]


def test_silver_equals_the_repo_bit_trick_for_every_position():
    def repo(pos: int) -> float:
        x = pos % 64 + 1
        return 2.0 ** (((x & -x).bit_length() - 2) - 1)

    assert Silver().value(np.arange(300)).tolist() == [repo(p) for p in range(300)]


def test_tip_penalises_from_the_latest_anchor_for_beta_tokens():
    tip = Tip(alpha=3, beta=600, mode="paper")
    assert tip.value([0, 599, 600, 1000]).tolist() == [-3, -3, 0, 0]
    assert tip.value([999, 1000, 1599, 1600], anchors=[1000]).tolist() == [0, -3, -3, 0]


def test_tip_in_cyclicreflex_mode_ignores_anchors():
    assert Tip(3, 600, "cyclicreflex").value([1200], anchors=[1000]).tolist() == [0]


def test_linear_ramps_from_start_to_end_and_then_holds():
    assert Linear(start=2, end=-2, span=500).value([0, 250, 500, 800]).tolist() == [2, 0, -2, -2]


def test_cosine_anneals_from_start_to_end_through_the_midpoint():
    values = Cosine(start=2, end=0, span=100).value([0, 50, 100, 150])
    assert values.tolist() == pytest.approx([2, 1, 0, 0])


def test_constant_applies_only_inside_its_windows():
    assert Constant(-3, windows=[(0, 600)]).value([0, 599, 600]).tolist() == [-3, -3, 0]


@pytest.mark.parametrize("positions", [7, [7], np.array([7]), torch.tensor([7])], ids=["int", "list", "np", "torch"])
def test_value_accepts_int_list_numpy_and_torch_positions(positions):
    out = Linear(0, 10, 10).value(positions)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.tolist() == [7.0]


@pytest.mark.parametrize("make,match", [
    (lambda: Cyclic(period=0), "`period` must be a positive number, got 0"),
    (lambda: Cyclic(period=-5), "`period` must be a positive number, got -5"),
    (lambda: Cyclic(amplitude="big"), "`amplitude` must be a finite number, got 'big'"),
    (lambda: Cyclic(amplitude=True), "`amplitude` must be a finite number, got True"),
    (lambda: Cyclic(windows=[(10, 5)]), r"`windows` must be a list of \(start, end\)"),
    (lambda: Silver(modulus=0), "`modulus` must be a positive integer, got 0"),
    (lambda: Linear(span=0), "`span` must be a positive number, got 0"),
    (lambda: Tip(mode="fast"), "`mode` must be one of paper, cyclicreflex; got 'fast'"),
])
def test_bad_arguments_raise_option_errors_naming_argument_and_value(make, match):
    with pytest.raises(OptionError, match=match):
        make()


def test_negative_positions_are_rejected():
    with pytest.raises(OptionError, match="positions must be >= 0"):
        Constant(1).value([-1])


def test_chart_draws_the_schedule_as_a_line_titled_by_its_string():
    spec = Cyclic(5, 1200).chart(max_position=2400).to_dict()
    assert spec["mark"]["type"] == "line" and spec["title"] == "cyclic(amplitude=5, period=1200, shift=0.0, windows=[(0, 8192)])"
    rows = next(iter(spec["datasets"].values()))
    assert {"position": 300, "delta": 5.0} in rows and rows[-1]["position"] == 2400


def test_chart_overlays_realised_reflection_positions_as_rules_and_points_on_the_curve():
    spec = Cyclic(5, 1200).chart(max_position=2400, realised=[300, 901]).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule", "point"]
    hits = spec["datasets"][spec["layer"][2]["data"]["name"]]
    assert hits == [{"position": 300, "delta": 5.0}, {"position": 901, "delta": pytest.approx(repo_delta(901, 5, 1200))}]


def test_tip_chart_re_anchors_at_realised_switch_positions():
    spec = Tip(3, 100).chart(max_position=400, realised=[250]).to_dict()
    curve = {r["position"]: r["delta"] for r in spec["datasets"][spec["layer"][0]["data"]["name"]]}
    assert (curve[99], curve[100], curve[250], curve[349], curve[350]) == (-3, 0, -3, -3, 0)


@pytest.mark.parametrize("text, message", [
    ("cyclic(shift=1e300)", "`shift` must be in [-1, 1], got 1e+300"),
    ("cyclic(shift=-1.5)", "`shift` must be in [-1, 1], got -1.5"),
    ("cyclic(amplitude=1e308)", "`amplitude` must be in [-10000, 10000], got 1e+308"),
    ("constant(-20000)", "`delta` must be in [-10000, 10000], got -20000"),
    ("linear(start=1e5)", "`start` must be in [-10000, 10000], got 100000.0"),
    ("tip(alpha=10**5)", "is not a literal value"),
    ("constant(99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
     "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
     "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999)",
     "`delta` must be a finite number"),
    ("cyclic(windows=[(0, 1e999)])", "`windows` must be a list of (start, end) integer pairs"),
])
def test_a_shift_outside_one_period_and_absurd_biases_are_refused(text, message):
    from reflectnb.decoding.parse import parse_schedule

    with pytest.raises(OptionError, match=re.escape(message)):
        parse_schedule(text)


@pytest.mark.parametrize("shift", [-1.0, -0.5, 0.0, 0.25, 1.0])
def test_every_shift_within_one_period_is_accepted(shift):
    assert Cyclic(amplitude=5, period=1200, shift=shift).shift == shift


@pytest.mark.parametrize("text, message", [
    ("silver(modulus=99999999999999999999999999)", "`modulus` must be at most 1,048,576, got 99999"),
    ("silver(rho=1e6)", "`rho` must be in [0, 10000], got 1000000.0"),
])
def test_silver_refuses_a_modulus_or_base_that_would_overflow(text, message):
    from reflectnb.decoding.parse import parse_schedule

    with pytest.raises(OptionError, match=re.escape(message)):
        parse_schedule(text)
