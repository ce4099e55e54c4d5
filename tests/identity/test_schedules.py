"""lambda(sigma) schedules: formulas, shapes of the window, and bad parameters."""

import pytest
import torch

from idglow.identity.schedules import ScheduleConfig, evaluate, linear_decay, window

SIGMA = torch.linspace(0, 1, 101, dtype=torch.float64)


def test_constant_and_linear_decay_formulas():
    torch.testing.assert_close(evaluate(ScheduleConfig(kind="constant", lambda_max=0.6), SIGMA), torch.full_like(SIGMA, 0.6))
    spec = ScheduleConfig(kind="linear_decay", lambda_min=0.2, lambda_max=0.9)
    torch.testing.assert_close(evaluate(spec, SIGMA), 0.2 + 0.7 * SIGMA)
    # Strong at the start of sampling (sigma = 1), relaxed at the end; `increasing` reverses it.
    assert evaluate(spec, torch.tensor([1.0])).item() == pytest.approx(0.9)
    spec.increasing = True
    torch.testing.assert_close(evaluate(spec, SIGMA), 0.9 - 0.7 * SIGMA)


def test_hard_window_is_an_indicator():
    lam = window(SIGMA, 0.3, 0.7, lambda_min=0.1, lambda_max=0.8, edge_width=0.0)
    inside = (SIGMA >= 0.3) & (SIGMA <= 0.7)
    assert torch.all(lam[inside] == 0.8) and torch.all(lam[~inside] == 0.1)


def test_soft_window_is_full_inside_floor_outside_and_monotone_ramps():
    lam = window(SIGMA, 0.3, 0.7, lambda_min=0.0, lambda_max=1.0, edge_width=0.1)
    assert torch.all(lam[(SIGMA >= 0.3) & (SIGMA <= 0.7)] == 1.0)
    assert torch.all(lam[(SIGMA < 0.1999) | (SIGMA > 0.8001)] == 0.0)
    rise = lam[(SIGMA > 0.2) & (SIGMA < 0.3)]
    fall = lam[(SIGMA > 0.7) & (SIGMA < 0.8)]
    assert torch.all(rise.diff() > 0) and torch.all(fall.diff() < 0)
    assert window(torch.tensor([0.25]), 0.3, 0.7, 0.0, 1.0, 0.1).item() == pytest.approx(0.5)


def test_learned_schedule_evaluates_its_initial_analytic_form():
    spec = ScheduleConfig(kind="learned", learned_init="window", sigma_lo=0.2, sigma_hi=0.6)
    ref = ScheduleConfig(kind="window", sigma_lo=0.2, sigma_hi=0.6)
    torch.testing.assert_close(evaluate(spec, SIGMA), evaluate(ref, SIGMA))


def test_linear_decay_function_defaults():
    torch.testing.assert_close(linear_decay(SIGMA), SIGMA)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"lambda_max": 1.5}, "lambda_max"),
        ({"lambda_min": -0.1}, "lambda_min"),
        ({"lambda_min": 0.8, "lambda_max": 0.5}, "lambda_min"),
        ({"sigma_lo": 0.7, "sigma_hi": 0.7}, "sigma_lo"),
        ({"sigma_lo": 0.8, "sigma_hi": 0.2}, "sigma_lo"),
        ({"edge_width": -0.1}, "edge_width"),
    ],
)
def test_bad_parameters_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        evaluate(ScheduleConfig(kind="window", **fields), SIGMA)


def test_sigma_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="sigma"):
        evaluate(ScheduleConfig(), torch.tensor([1.2]))
