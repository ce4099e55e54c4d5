"""The flow-matching core against diffusers and against independent minimal formulas."""

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

from idglow.flow import (
    add_noise,
    euler_sample,
    flow_matching_loss,
    flux_shift_mu,
    latents_from_velocity,
    loss_weighting,
    sample_sigmas,
    shift_sigmas,
    sigma_grid,
    start_at,
    velocity_target,
)


def test_path_convention_round_trip():
    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64), torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.25, 0.7, 1.0], dtype=torch.float64)
    x = add_noise(latents, noise, sigma)
    assert torch.equal(x[0], latents[0]) and torch.equal(x[3], noise[3])  # sigma = 0 is data, 1 is noise
    v = velocity_target(latents, noise)
    torch.testing.assert_close(v, noise - latents)
    torch.testing.assert_close(latents_from_velocity(x, sigma, v), latents, rtol=0, atol=1e-12)
    # d x_sigma / d sigma equals the velocity target (finite difference on the straight path).
    eps = 1e-6
    torch.testing.assert_close((add_noise(latents, noise, sigma + eps) - x) / eps, v, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sampler", ["uniform", "logit_normal", "mode"])
def test_sigma_sampling_agrees_with_diffusers(sampler):
    ours = sample_sigmas(64, sampler, logit_mean=0.3, logit_std=0.8, mode_scale=1.29, generator=torch.Generator().manual_seed(7))
    ref = compute_density_for_timestep_sampling(
        sampler, 64, logit_mean=0.3, logit_std=0.8, mode_scale=1.29, generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(ours, ref.clamp(0, 1), rtol=0, atol=0)
    assert ours.min() >= 0 and ours.max() <= 1


def test_logit_normal_matches_its_formula():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ours = sample_sigmas(1000, "logit_normal", logit_mean=-0.5, logit_std=1.5, generator=g1)
    formula = torch.sigmoid(torch.normal(-0.5, 1.5, size=(1000,), generator=g2))
    torch.testing.assert_close(ours, formula)


def test_dynamic_shift_matches_scheduler_and_flux_constants():
    assert flux_shift_mu(256) == pytest.approx(0.5) and flux_shift_mu(4096) == pytest.approx(1.15)
    mu = flux_shift_mu(1024)
    sched = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    u = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    torch.testing.assert_close(shift_sigmas(u, mu=mu), sched.time_shift(mu, 1.0, u))
    # A shifted draw is the shift of the unshifted draw from the same generator.
    a = sample_sigmas(16, "uniform", mu=mu, generator=torch.Generator().manual_seed(1))
    b = sample_sigmas(16, "uniform", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, shift_sigmas(b, mu=mu))
    assert (a >= b).all()  # shifting moves sigmas toward noise


@pytest.mark.parametrize("weighting", ["none", "sigma_sqrt", "cosmap"])
def test_loss_weighting_agrees_with_diffusers_and_formula(weighting):
    sigma = torch.linspace(0.05, 1.0, 20)
    torch.testing.assert_close(loss_weighting(sigma, weighting), compute_loss_weighting_for_sd3(weighting, sigma))
    formula = {
        "none": torch.ones_like(sigma),
        "sigma_sqrt": sigma**-2,
        "cosmap": 2 / (math.pi * (1 - 2 * sigma + 2 * sigma**2)),
    }[weighting]
    torch.testing.assert_close(loss_weighting(sigma, weighting), formula)


def test_flow_matching_loss_is_per_sample_and_matches_diffusers_trainer():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    sigma = torch.tensor([0.2, 0.5, 0.9])
    loss = flow_matching_loss(pred, target, sigma, "cosmap")
    assert loss.shape == (3,)
    # diffusers' FLUX DreamBooth script: mean((w * (pred - target) ** 2).reshape(B, -1), 1).
    w = compute_loss_weighting_for_sd3("cosmap", sigma).view(-1, 1, 1)
    torch.testing.assert_close(loss, torch.mean((w * (pred - target) ** 2).reshape(3, -1), 1))
    # Changing one sample changes only its own loss.
    pred2 = pred.clone()
    pred2[1] += 1
    loss2 = flow_matching_loss(pred2, target, sigma, "cosmap")
    assert loss2[0] == loss[0] and loss2[2] == loss[2] and loss2[1] > loss[1]


@pytest.mark.parametrize("shift,mu", [(1.0, None), (3.0, None), (1.0, 0.8)])
@pytest.mark.parametrize("steps", [1, 4, 28])
def test_sigma_grid_equals_flux_scheduler(steps, shift, mu):
    # FluxPipeline drives the scheduler with sigmas = linspace(1, 1/n, n) (and mu when dynamic).
    sched = FlowMatchEulerDiscreteScheduler(shift=shift, use_dynamic_shifting=mu is not None)
    base = torch.linspace(1.0, 1.0 / steps, steps).numpy()
    sched.set_timesteps(sigmas=base, mu=mu)
    torch.testing.assert_close(sigma_grid(steps, shift=shift, mu=mu), sched.sigmas, rtol=1e-6, atol=1e-6)


def test_euler_reaches_the_data_point_of_the_conditional_field():
    # For a single data point the exact velocity is (x - latents) / sigma; Euler is exact on any grid.
    latents = torch.randn(2, 3, dtype=torch.float64)
    noise = torch.randn(2, 3, dtype=torch.float64)
    out = euler_sample(lambda x, s: (x - latents) / s.view(-1, 1), noise, sigma_grid(7, shift=3.0).double())
    torch.testing.assert_close(out, latents, rtol=0, atol=1e-12)


def test_start_at_begins_exactly_at_the_noise_level_and_image_to_image_reaches_the_data():
    grid = sigma_grid(10, mu=0.54)
    torch.testing.assert_close(start_at(grid, 1.0), grid)  # sigma 1: ordinary sampling, unchanged
    tail = start_at(grid, 0.3)
    assert tail[0] == 0.3 and tail[-1] == 0 and bool((tail[1:] < tail[:-1]).all())
    assert tail[1:].tolist() == [s for s in grid.tolist() if s < 0.3]
    # from an image noised to 0.3, the exact field of its data point leads back to it
    latents, noise = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    start = add_noise(latents, noise, 0.3)
    out = euler_sample(lambda x, s: (x - latents) / s.view(-1, 1), start, tail.double())
    torch.testing.assert_close(out, latents, rtol=0, atol=1e-12)


def test_euler_transports_gaussian_to_gaussian():
    # Data N(m, s^2): the marginal ODE maps noise e to m + s * e. Velocity of x_sigma = a(sigma) m + b(sigma) e
    # with a = 1 - sigma, b = sqrt((1 - sigma)^2 s^2 + sigma^2): v = -m + b'/b * (x - a m).
    m, s = 1.5, 0.4

    def velocity(x, sigma):
        sig = sigma.view(-1, 1).double()
        b = torch.sqrt((1 - sig) ** 2 * s**2 + sig**2)
        db = (-(1 - sig) * s**2 + sig) / b
        return -m + db / b * (x - (1 - sig) * m)

    noise = torch.randn(5, 1, dtype=torch.float64)
    out = euler_sample(velocity, noise, sigma_grid(400).double())
    torch.testing.assert_close(out, m + s * noise, rtol=0, atol=5e-3)


def test_euler_matches_diffusers_scheduler_step():
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(sigmas=torch.linspace(1.0, 0.25, 4).numpy())
    field = lambda x, s: torch.sin(x) * s.view(-1, 1)  # noqa: E731
    x = noise = torch.randn(3, 8)
    for t in sched.timesteps:
        x = sched.step(field(x, torch.full((3,), float(t) / 1000)), t, x).prev_sample
    ours = euler_sample(field, noise, sigma_grid(4, shift=3.0))
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: sample_sigmas(4, "cosine"), "sampler"),
        (lambda: sample_sigmas(4, "logit_normal", logit_std=0.0), "logit_std"),
        (lambda: loss_weighting(torch.rand(3), "sqrt"), "weighting"),
        (lambda: sigma_grid(0), "num_steps"),
        (lambda: start_at(sigma_grid(4), 0.0), "sigma_start"),
        (lambda: start_at(sigma_grid(4), 1.5), "sigma_start"),
        (lambda: shift_sigmas(torch.rand(3), shift=0.0), "shift"),
        (lambda: add_noise(torch.zeros(2, 3), torch.zeros(2, 4), 0.5), "noise"),
        (lambda: add_noise(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3)), "sigma"),
        (lambda: flow_matching_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3)), "sigma"),
        (lambda: euler_sample(lambda x, s: x, torch.zeros(1), torch.tensor([0.0, 1.0])), "sigmas"),
        (lambda: flux_shift_mu(0), "image_seq_len"),
    ],
)
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_patchify_equals_diffusers_packing_and_round_trips():
    from diffusers import FluxPipeline

    from idglow.models.packing import patchify, unpatchify

    x = torch.randn(2, 16, 8, 12)
    torch.testing.assert_close(patchify(x, 2), FluxPipeline._pack_latents(x, 2, 16, 8, 12), rtol=0, atol=0)
    torch.testing.assert_close(unpatchify(patchify(x, 2), 8, 12, 2), FluxPipeline._unpack_latents(patchify(x, 2), 8, 12, 1))
    images = torch.randn(3, 3, 64, 128)
    for p in (1, 4, 8):
        torch.testing.assert_close(unpatchify(patchify(images, p), 64, 128, p), images, rtol=0, atol=0)
    assert patchify(images, 8).shape == (3, 8 * 16, 192)
    with pytest.raises(ValueError, match="divisible by 8"):
        patchify(torch.zeros(1, 3, 12, 16), 8)
