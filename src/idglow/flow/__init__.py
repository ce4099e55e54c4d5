"""Flow-matching maths: pure tensor functions, no config objects, no I/O.

The one time convention of IdGlow (rectified flow, FLUX/diffusers):

- ``sigma`` in [0, 1]; ``sigma = 1`` is pure noise, ``sigma = 0`` is data;
- ``x_sigma = (1 - sigma) * latents + sigma * noise``;
- velocity target ``v = noise - latents``; estimate ``latents_hat = x_sigma - sigma * v_hat``;
- sampling integrates from sigma = 1 to sigma = 0;
- the FLUX transformer receives ``timestep = sigma`` (diffusers multiplies by 1000 inside).

Every schedule in the project is a function of sigma. Tensors are named ``latents``, ``noise`` and
``sigma``, never ``x_0``/``x_1`` (the literature disagrees on which end each one is).
"""

from idglow.flow.loss import flow_matching_loss
from idglow.flow.path import add_noise, broadcast_sigma, latents_from_velocity, velocity_target
from idglow.flow.sampling import euler_sample, sigma_grid, start_at
from idglow.flow.timesteps import (
    LOSS_WEIGHTINGS,
    TIMESTEP_SAMPLERS,
    flux_shift_mu,
    loss_weighting,
    sample_sigmas,
    shift_sigmas,
)

__all__ = [
    "LOSS_WEIGHTINGS",
    "TIMESTEP_SAMPLERS",
    "add_noise",
    "broadcast_sigma",
    "euler_sample",
    "flow_matching_loss",
    "flux_shift_mu",
    "latents_from_velocity",
    "loss_weighting",
    "sample_sigmas",
    "shift_sigmas",
    "sigma_grid",
    "start_at",
    "velocity_target",
]
