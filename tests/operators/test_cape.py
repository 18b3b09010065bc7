"""Tests for CAPE (operators.cape), the 1D U-Net (operators.unet) and the autoregressive
curriculum wrapper (operators.autoregressive)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators import AutoregressiveStepper, CAPEOperator, UNet1d, load_model, save_model
from operators.autoregressive import curriculum_steps
from surrogates.data.common import PairDataset
from surrogates.training import TrainConfig, fit, relative_l2

FNO_BASE = {"n_modes": [8], "hidden_channels": 8, "n_layers": 2, "positional_embedding": None}


def cape(base_class: str = "FNO", **kw) -> CAPEOperator:
    base = FNO_BASE if base_class == "FNO" else {"features": 8, "depth": 2}
    args = {"in_channels": 1, "out_channels": 1, "n_params": 1, "width": 16, "n_modes": 4,
            "base_class": base_class, "base_config": base, **kw}
    return CAPEOperator(**args)


# ----------------------------------------------------------------------------- U-Net
@pytest.mark.parametrize("n", [64, 50])
def test_unet_shapes_on_any_grid(n):
    torch.manual_seed(0)
    model = UNet1d(in_channels=2, out_channels=3, features=8, depth=3)
    assert model(torch.randn(4, 2, n)).shape == (4, 3, n)


def test_unet_is_periodic_shift_equivariant():
    """Circular padding and stride-2 pooling: shifting the input by a multiple of 2**depth cells
    shifts the output by the same amount, exactly (zero padding would break this at the ends)."""
    torch.manual_seed(0)
    model = UNet1d(in_channels=1, out_channels=1, features=8, depth=3).eval()
    x = torch.randn(2, 1, 64)
    shifted = model(torch.roll(x, 8, dims=-1))
    torch.testing.assert_close(shifted, torch.roll(model(x), 8, dims=-1), atol=1e-5, rtol=1e-5)


def test_unet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        UNet1d(in_channels=1, out_channels=1, kernel=4)
    with pytest.raises(ValueError, match="multiple of groups"):
        UNet1d(in_channels=1, out_channels=1, features=10, groups=4)
    with pytest.raises(ValueError, match=r"\(batch, 1, N\)"):
        UNet1d(in_channels=1, out_channels=1)(torch.randn(2, 3, 32))


# ----------------------------------------------------------------------------- CAPE
@pytest.mark.parametrize("base", ["FNO", "UNet1d"])
def test_cape_shapes_and_estimate(base):
    torch.manual_seed(0)
    model = cape(base, in_channels=2)  # two context frames of one variable
    out, estimate = model.forward_with_estimate(torch.randn(3, 2, 32), torch.rand(3, 1) + 0.1)
    assert out.shape == estimate.shape == (3, 1, 32)
    assert model.base.in_channels == 2 * (1 + model.n_emb)


def test_cape_block_is_shift_equivariant():
    """Every branch is a periodic convolution (the spectral one on a 4x pooled grid), so a shift
    by a multiple of the pooling factor commutes with the whole operator."""
    torch.manual_seed(0)
    model = cape().eval()
    x, p = torch.randn(2, 1, 64), torch.tensor([[0.3], [2.0]])
    torch.testing.assert_close(model(torch.roll(x, 12, dims=-1), p),
                               torch.roll(model(x, p), 12, dims=-1), atol=1e-5, rtol=1e-5)


def test_cape_output_depends_on_parameters_through_log10():
    torch.manual_seed(0)
    model = cape().eval()
    x = torch.randn(1, 1, 32)
    a, b = model(x, torch.tensor([[0.1]])), model(x, torch.tensor([[1.0]]))
    assert (a - b).abs().max() > 1e-3
    identity = cape(parameter_transform="identity")
    identity.load_state_dict(model.state_dict())
    # log10(10) = 1: the log model at p = 10 is the identity model at p = 1.
    torch.testing.assert_close(model(x, torch.tensor([[10.0]])),
                               identity.eval()(x, torch.tensor([[1.0]])))
    with pytest.raises(ValueError, match="positive"):
        model(x, torch.tensor([[0.0]]))
    with pytest.raises(ValueError, match=r"\(batch, 1\)"):
        model(x, torch.tensor([1.0]))


def test_cape_rejects_bad_configuration():
    with pytest.raises(ValueError, match="base_class"):
        cape("ResNet")
    with pytest.raises(ValueError, match="whole number of frames"):
        cape(in_channels=3, out_channels=2)
    with pytest.raises(ValueError, match="must not set"):
        CAPEOperator(in_channels=1, out_channels=1, n_params=1, base_class="FNO",
                     base_config={**FNO_BASE, "in_channels": 3})


# ----------------------------------------------------------------------------- curriculum
def test_curriculum_follows_the_tanh_schedule():
    S = 40
    for e in (0.0, 0.25, 0.5, 0.75, 1.0):
        expected = round(S * (1 + math.tanh((e - 0.5) / 0.2)) / 2)
        assert curriculum_steps(e, S) == expected
    assert curriculum_steps(0.0, S) == 0 and curriculum_steps(0.5, S) == 20
    assert curriculum_steps(1.0, S) == 40 and curriculum_steps(2.0, S) == 40  # clipped
    with pytest.raises(ValueError, match="width"):
        curriculum_steps(0.5, S, width=0.0)


def stepper(**kw) -> AutoregressiveStepper:
    torch.manual_seed(0)
    return AutoregressiveStepper(step_class="CAPEOperator", step_config=cape().config,
                                 n_params=1, **kw)


def packed(B=3, T=6, N=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, 1, T, N, generator=g)
    p = torch.rand(B, generator=g) + 0.1
    return torch.cat([u, p[:, None, None, None].expand(B, 1, T, N)], dim=1), u


def test_fully_autoregressive_loss_is_the_rollout_loss():
    model, (x, u) = stepper(aux_weight=0.0), packed()
    model.set_epoch(9, 10)  # e = 0.9: t_ar = 5 of 5 steps
    assert model.autoregressive_steps(5) == 5
    loss = model.training_loss(x, u, relative_l2)
    rollout = model(x)
    expected = sum(relative_l2(rollout[:, :, s], u[:, :, s]) for s in range(1, 6))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(rollout[:, :, 0], u[:, :, 0])  # context returned unchanged


def test_teacher_forced_loss_matches_one_step_losses():
    """The batched teacher-forced path equals one-step predictions from every true frame."""
    model, (x, u) = stepper(aux_weight=0.5), packed()
    model.set_epoch(0, 10)  # e = 0: t_ar = 0
    loss = model.training_loss(x, u, relative_l2)
    p = x[:, 1, 0, :1]
    expected = torch.zeros(())
    for s in range(1, 6):
        out, est = model.step.forward_with_estimate(u[:, :, s - 1], p)
        expected = expected + relative_l2(out, u[:, :, s]) + 0.5 * relative_l2(est, u[:, :, s])
    torch.testing.assert_close(loss, expected)


def test_warmup_trains_only_the_auxiliary_estimate():
    model, (x, u) = stepper(warmup_epochs=2), packed()
    model.set_epoch(1, 10)
    loss = model.training_loss(x, u, relative_l2)
    loss.backward()
    assert all(q.grad is None for q in model.step.base.parameters())
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in model.step.cape.parameters())
    plain = AutoregressiveStepper(step_class="FNO", step_config={
        **FNO_BASE, "in_channels": 1, "out_channels": 1}, n_params=1, warmup_epochs=1)
    with pytest.raises(ValueError, match="auxiliary estimate"):
        plain.training_loss(x, u, relative_l2)


def test_stepper_rejects_inconsistent_sizes():
    with pytest.raises(ValueError, match="in_channels"):
        AutoregressiveStepper(step_class="CAPEOperator", step_config=cape().config, n_params=1,
                              context=2)
    with pytest.raises(ValueError, match="n_params"):
        AutoregressiveStepper(step_class="CAPEOperator", step_config=cape().config)
    model, (x, _) = stepper(), packed(T=1)
    with pytest.raises(ValueError, match="nothing to predict"):
        model(x)


def test_checkpoint_round_trip(tmp_path):
    model, (x, _) = stepper(), packed()
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert isinstance(loaded.step, CAPEOperator)
    torch.testing.assert_close(loaded(x), model(x))


def shifted_sines(n_samples, betas, N=32, T=4, seed=0):
    """Exact advection by ``beta`` cells per frame: u(x, t) = u0(x - beta t) for two-mode sines."""
    rng = np.random.default_rng(seed)
    x = np.arange(N)
    frames = np.empty((n_samples, 1, T, N), np.float32)
    beta = rng.choice(betas, size=n_samples)
    for i in range(n_samples):
        k = rng.integers(1, 4, size=2)
        a, phase = rng.uniform(0.5, 1, 2), rng.uniform(0, 2 * np.pi, 2)
        for t in range(T):
            frames[i, 0, t] = sum(a[m] * np.sin(2 * np.pi * k[m] * (x - beta[i] * t) / N
                                                 + phase[m]) for m in range(2))
    u = torch.from_numpy(frames)
    p = torch.from_numpy(beta.astype(np.float32))[:, None, None, None].expand(-1, 1, T, N)
    return PairDataset(torch.cat([u, p], dim=1), u)


def test_cape_learns_what_a_parameter_blind_model_cannot():
    """Half the trajectories move 1 cell per frame, half 3: a model that does not see beta cannot
    tell them apart from one frame (its best guess is wrong for both), CAPE can. About 25 s."""
    train = shifted_sines(64, [1.0, 3.0])
    test = shifted_sines(32, [1.0, 3.0], seed=1)
    config = TrainConfig(epochs=120, batch_size=16, lr=3e-3, scheduler="step", step_size=40,
                         seed=0, device="cpu", show_progress=False)
    errors = {}
    for name, step_class, step_config in (
            ("cape", "CAPEOperator", cape().config),
            ("blind", "FNO", {**FNO_BASE, "in_channels": 1, "out_channels": 1})):
        torch.manual_seed(0)
        model = AutoregressiveStepper(step_class=step_class, step_config=step_config, n_params=1)
        fit(model, train, None, config)
        with torch.no_grad():
            errors[name] = float(relative_l2(model.eval()(test.inputs)[:, :, 1:],
                                             test.targets[:, :, 1:]))
    assert errors["cape"] < 0.1, errors  # measured 0.031
    assert errors["blind"] > 0.5, errors


def test_initial_normalization_divides_by_the_first_frame():
    """For decaying solutions the step error is measured against ||u^0||, not ||u^s||."""
    model, (x, u) = stepper(aux_weight=0.0, step_normalization="initial"), packed()
    u = u * torch.logspace(0, -8, 6)[None, None, :, None]  # frames decaying by 1e8
    x = torch.cat([u, x[:, 1:]], dim=1)
    model.set_epoch(0, 10)
    loss = model.training_loss(x, u, relative_l2)
    p = x[:, 1, 0, :1]
    norm0 = u[:, :, 0].flatten(1).norm(dim=1)
    expected = sum(((model.step(u[:, :, s - 1], p) - u[:, :, s]).flatten(1).norm(dim=1)
                    / norm0).mean() for s in range(1, 6))
    torch.testing.assert_close(loss, expected)
    frame = stepper(aux_weight=0.0)
    frame.set_epoch(0, 10)
    assert frame.training_loss(x, u, relative_l2) > 100 * loss  # late frames dominate
    with pytest.raises(ValueError, match="step_normalization"):
        stepper(step_normalization="last")
