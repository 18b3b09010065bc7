"""The training loop: losses, learning, determinism, exact resume, early stopping, refusals."""

import math

import pytest
import torch

from operators.base import load_model
from operators.normalization import NormalizedOperator
from surrogates.data.common import PairDataset
from surrogates.training import TrainConfig, fit, relative_h1, relative_l2


def smoothing_problem(n=96, size=32, seed=0):
    """Inputs: random band-limited periodic signals; targets: a fixed periodic smoothing of them."""
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(1, 6, dtype=torch.float64)
    x = torch.linspace(0, 1, size + 1, dtype=torch.float64)[:-1]
    coeff = torch.randn(n, 5, 2, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * k[None, :, None] * x[None, None, :]
    u = (coeff[..., 0:1] * torch.cos(phase) + coeff[..., 1:2] * torch.sin(phase)).sum(1)
    v = (torch.roll(u, 1, -1) + 2 * u + torch.roll(u, -1, -1)) / 4 + 3.0
    return PairDataset(u[:, None].float(), v[:, None].float())


def make_model(seed=0):
    torch.manual_seed(seed)
    return NormalizedOperator(model_class="FNO", model_config={
        "in_channels": 1, "out_channels": 1, "n_modes": [8], "hidden_channels": 8,
        "n_layers": 2, "positional_embedding": None})


def test_relative_l2_matches_its_definition():
    target = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    prediction = torch.tensor([[3.0, 4.5], [0.0, 0.0]])
    assert float(relative_l2(prediction, target)) == pytest.approx((0.5 / 5 + 1.0) / 2)


def test_training_reduces_the_loss_and_writes_a_loadable_model(tmp_path):
    train, val = smoothing_problem(seed=0), smoothing_problem(n=32, seed=1)
    model = make_model()
    model.fit_normalizers(train.inputs, train.targets)
    result = fit(model, train, val, TrainConfig(epochs=25, batch_size=16, lr=5e-3,
                                                show_progress=False), tmp_path / "run")
    first, best = result.history[0]["validation_loss"], result.best_validation_loss
    assert best < first / 10, (first, best)
    reloaded = load_model(tmp_path / "run" / "model.pt")
    assert isinstance(reloaded, NormalizedOperator)
    with torch.no_grad():
        error = relative_l2(reloaded(val.inputs), val.targets)
    assert float(error) < 0.05


def test_same_seed_same_weights_and_resume_is_exact(tmp_path):
    train, val = smoothing_problem(seed=0), smoothing_problem(n=32, seed=1)
    config = TrainConfig(epochs=4, batch_size=16, lr=3e-3, scheduler="cosine",
                         show_progress=False)
    straight = make_model()
    fit(straight, train, val, config, tmp_path / "straight")
    again = make_model()
    fit(again, train, val, config, tmp_path / "again")
    for a, b in zip(straight.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    interrupted = make_model()
    with pytest.raises(KeyboardInterrupt):
        _interrupt_after(interrupted, train, val, config, tmp_path, 2)
    resumed = make_model(seed=123)  # different initial weights: all state must come from disk
    result = fit(resumed, train, val, config, tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def _interrupt_after(model, train, val, config, tmp_path, n_epochs):
    """Train until ``n_epochs`` checkpoints exist, then raise KeyboardInterrupt like Ctrl-C."""
    original = torch.optim.Adam.step
    calls = {"n": 0}
    per_epoch = math.ceil(len(train) / config.batch_size)

    def step(self, *args, **kwargs):
        if calls["n"] == n_epochs * per_epoch:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = step
    try:
        fit(model, train, val, config, tmp_path / "resumed")
    finally:
        torch.optim.Adam.step = original


def test_early_stopping_when_nothing_improves(tmp_path):
    train = smoothing_problem(n=32)
    model = make_model()
    result = fit(model, train, train, TrainConfig(epochs=20, lr=1e-30, patience=3,
                                                  show_progress=False))
    assert result.stopped_early and len(result.history) == 4


def test_refusals(tmp_path):
    train = smoothing_problem(n=16)
    config = TrainConfig(epochs=1, show_progress=False)
    fit(make_model(), train, None, config, tmp_path / "run")
    with pytest.raises(FileExistsError, match="resume"):
        fit(make_model(), train, None, config, tmp_path / "run")
    with pytest.raises(ValueError, match=r"lr: 0.001 -> 0.01"):
        fit(make_model(), train, None, TrainConfig(epochs=2, lr=1e-2, show_progress=False),
            tmp_path / "run", resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(make_model(), train, None, config, tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="sgd")


def test_relative_h1_converges_to_the_analytic_norm_ratio():
    """y = sin(pi x) sin(pi y), e = 0.01 sin(8 pi x) sin(pi y) on the unit square: the exact
    ||e||_H1 / ||y||_H1 = sqrt(1e-4 (1/4 + 65 pi^2/4) / (1/4 + pi^2 / 2)); the finite-difference
    value approaches it at second order."""
    exact = math.sqrt(1e-4 * (0.25 + 65 * math.pi**2 / 4) / (0.25 + math.pi**2 / 2))
    errors = []
    for n in (64, 128):
        x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        X, Y = torch.meshgrid(x, x, indexing="ij")
        y = torch.sin(math.pi * X) * torch.sin(math.pi * Y)
        e = 0.01 * torch.sin(8 * math.pi * X) * torch.sin(math.pi * Y)
        errors.append(abs(float(relative_h1((y + e)[None, None], y[None, None])) - exact))
    assert errors[0] < 0.02 * exact
    assert 3.0 < errors[0] / errors[1] < 5.0


def test_gradient_clipping_is_validated_and_off_by_default():
    with pytest.raises(ValueError, match="grad_clip"):
        TrainConfig(grad_clip=0.0)
    x = torch.randn(16, 1, 8)
    data = PairDataset(x, 2 * x)
    weights = []
    for clip in (None, 1e9, 1e-3):
        torch.manual_seed(0)
        model = NormalizedOperator(model_class="FNO", model_config={
            "in_channels": 1, "out_channels": 1, "n_modes": [4], "hidden_channels": 4,
            "n_layers": 1})
        fit(model, data, None, TrainConfig(epochs=2, batch_size=4, grad_clip=clip,
                                           optimizer="adam", show_progress=False, device="cpu"))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1])  # a clip above every norm changes nothing
    assert not torch.allclose(weights[0], weights[2])  # a tight clip changes Adam's path
