"""Tests for operators.fno: shapes, resolution invariance, hand-checked spectral layer, training,
checkpoints, errors and devices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from operators.base import model_checkpoint, model_from_checkpoint
from operators.fno import FNO, SpectralConv, spectral_resample

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZES = {1: (20,), 2: (12, 10), 3: (8, 6, 5)}


@pytest.fixture
def single_thread():
    """Tiny models run faster (and far more predictably on a busy machine) on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def sample_trig(shapes: list[tuple[int, ...]], k_max: int, channels: int, seed: int
                ) -> list[np.ndarray]:
    """Sample one random real trigonometric polynomial (|k_i| <= k_max) on several grids.

    Returns arrays ``(1, channels, *shape)`` for each ``shape`` in ``shapes`` on ``[0, 1)^d``.
    """
    rng = np.random.default_rng(seed)
    n_dims = len(shapes[0])
    freqs = np.arange(-k_max, k_max + 1)
    n_f = len(freqs)
    coef = rng.normal(size=(channels,) + (n_f,) * n_dims) \
        + 1j * rng.normal(size=(channels,) + (n_f,) * n_dims)
    out = []
    for shape in shapes:
        axes = [np.arange(n) / n for n in shape]
        # phases[d] has shape (n_f, n_d): exp(2 pi i k x).
        phases = [np.exp(2j * np.pi * freqs[:, None] * a[None, :]) for a in axes]
        values = coef
        for d in range(n_dims):
            # Contract the frequency axis of dimension d with its phase matrix.
            values = np.tensordot(values, phases[d], axes=([1], [0]))
        out.append(np.real(values)[None])
    return out


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_dims", [1, 2, 3])
@pytest.mark.parametrize("embedding", ["grid", None])
@pytest.mark.parametrize("padding", [0.0, 0.25])
def test_output_shapes(n_dims, embedding, padding):
    torch.manual_seed(0)
    model = FNO(in_channels=2, out_channels=3, n_modes=[4] * n_dims, hidden_channels=8,
                n_layers=2, positional_embedding=embedding, domain_padding=padding)
    x = torch.randn(2, 2, *SIZES[n_dims])
    y = model(x)
    assert y.shape == (2, 3, *SIZES[n_dims])
    assert torch.isfinite(y).all()
    finer = tuple(2 * n for n in SIZES[n_dims])
    assert model(x, output_shape=finer).shape == (2, 3, *finer)


@pytest.mark.parametrize("options", [
    {"norm": "group_norm"},
    {"norm": "instance_norm", "fno_skip": "identity", "channel_mlp_skip": "linear"},
    {"channel_mlp_expansion": None, "fno_skip": "soft-gating", "non_linearity": "relu"},
    {"lifting_channel_ratio": None, "projection_channel_ratio": None, "channel_mlp_skip": None,
     "fno_skip": None, "non_linearity": "tanh"},
    {"domain_padding": [0.5, 0.0]},
])
def test_options_run(options):
    torch.manual_seed(0)
    model = FNO(in_channels=1, out_channels=2, n_modes=[6, 6], hidden_channels=8, n_layers=2,
                **options)
    x = torch.randn(2, 1, 10, 12)
    y = model(x)
    assert y.shape == (2, 2, 10, 12)
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_grid_coarser_than_modes():
    torch.manual_seed(0)
    model = FNO(in_channels=1, out_channels=1, n_modes=[16, 16], hidden_channels=8, n_layers=1)
    assert model(torch.randn(2, 1, 4, 5)).shape == (2, 1, 4, 5)
    assert model(torch.randn(2, 1, 1, 1)).shape == (2, 1, 1, 1)


@pytest.mark.parametrize("n_dims", [1, 2])
def test_spectral_conv_truncates_to_grid(n_dims):
    """On a grid too small for n_modes, the layer equals a smaller layer with the kept weights."""
    torch.manual_seed(0)
    big = SpectralConv(2, 3, (16,) * n_dims).double()
    small = SpectralConv(2, 3, (8,) * n_dims).double()
    with torch.no_grad():
        w = big.weight
        if n_dims == 2:  # non-last axis: frequencies 0..3 and -4..-1 (FFT order)
            w = w[:, :, [0, 1, 2, 3, 12, 13, 14, 15]]
        small.weight.copy_(w[..., :5, :])  # last axis: frequencies 0..4
        small.bias.copy_(torch.randn_like(small.bias))
        big.bias.copy_(small.bias)
    x = torch.randn(2, 2, *(8,) * n_dims, dtype=torch.float64)
    torch.testing.assert_close(big(x), small(x), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Resolution invariance of the spectral layer
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_dims", [1, 2])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_spectral_conv_resolution_invariance(n_dims, dtype, tol):
    torch.manual_seed(0)
    layer = SpectralConv(3, 2, (8,) * n_dims).to(dtype)
    with torch.no_grad():
        layer.bias.normal_()
    # Frequencies up to 6: some inside the kept band (|k| <= 3 or 4), some above it; all are
    # resolved on both grids, so nothing aliases.
    coarse, fine = sample_trig([(32,) * n_dims, (64,) * n_dims], k_max=6, channels=3, seed=1)
    coarse = torch.as_tensor(coarse, dtype=dtype)
    fine = torch.as_tensor(fine, dtype=dtype)
    y_coarse = layer(coarse)
    y_fine = layer(fine)
    even = (slice(None), slice(None)) + (slice(None, None, 2),) * n_dims
    scale = y_coarse.abs().max().item()
    assert scale > 0.1
    assert (y_fine[even] - y_coarse).abs().max().item() <= tol * scale
    # Zero-shot super-resolution: the coarse input evaluated on the fine grid.
    y_super = layer(coarse, output_shape=(64,) * n_dims)
    assert (y_super - y_fine).abs().max().item() <= tol * scale
    # And coarsening back.
    y_down = layer(fine, output_shape=(32,) * n_dims)
    assert (y_down - y_coarse).abs().max().item() <= tol * scale


def test_spectral_resample_is_exact_for_band_limited():
    coarse, fine = sample_trig([(16, 12), (48, 36)], k_max=5, channels=2, seed=3)
    coarse = torch.as_tensor(coarse)
    fine = torch.as_tensor(fine)
    torch.testing.assert_close(spectral_resample(coarse, (48, 36)), fine, rtol=0, atol=1e-10)
    torch.testing.assert_close(spectral_resample(fine, (16, 12)), coarse, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("embedding", "tol"), [(None, 1e-6), ("grid", 1e-2)])
def test_fno_nearly_resolution_invariant(embedding, tol):
    """Only aliasing of the pointwise nonlinearities' harmonics (tiny for smooth inputs on fine
    grids) and, with the grid embedding, the coordinates' jump at the periodic boundary break
    exact invariance."""
    torch.manual_seed(0)
    model = FNO(in_channels=1, out_channels=1, n_modes=[8], hidden_channels=8, n_layers=2,
                positional_embedding=embedding).double()
    coarse, fine = sample_trig([(64,), (128,)], k_max=3, channels=1, seed=2)
    with torch.no_grad():
        y_coarse = model(torch.as_tensor(coarse))
        y_fine = model(torch.as_tensor(fine))
    error = (y_fine[..., ::2] - y_coarse).norm() / y_coarse.norm()
    assert error < tol


# ---------------------------------------------------------------------------------------------
# Spectral layer against independent computations
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 3, 4, 5, 7])
def test_spectral_conv_single_cosine(k):
    """cos(2 pi k x + phi) becomes |R_k| cos(2 pi k x + phi + arg R_k), or 0 above the band."""
    torch.manual_seed(0)
    n, phi = 32, 0.7
    layer = SpectralConv(1, 1, (8,), bias=False).double()  # keeps k = 0..4
    x = np.arange(n) / n
    u = np.cos(2 * np.pi * k * x + phi)
    y = layer(torch.as_tensor(u)[None, None])[0, 0].detach().numpy()
    w = layer.complex_weight.detach().numpy()[0, 0]
    if k == 0:  # a constant: only the real part of R_0 acts on it
        expected = np.real(w[0]) * np.cos(phi) * np.ones(n)
    elif k <= 4:
        expected = np.real(w[k] * np.exp(1j * (2 * np.pi * k * x + phi)))
    else:
        expected = np.zeros(n)
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_spectral_conv_2d_single_mode_negative_frequency():
    """cos(2 pi (-2 x + y)) picks the weight stored at the documented FFT-order position."""
    torch.manual_seed(0)
    n = 16
    layer = SpectralConv(1, 1, (6, 6), bias=False).double()  # k_x in -3..2, k_y in 0..3
    xs = np.arange(n) / n
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    u = np.cos(2 * np.pi * (-2 * gx + gy))
    y = layer(torch.as_tensor(u)[None, None])[0, 0].detach().numpy()
    w = layer.complex_weight.detach().numpy()[0, 0]
    assert w.shape == (6, 4)
    expected = np.real(w[6 - 2, 1] * np.exp(2j * np.pi * (-2 * gx + gy)))
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_spectral_conv_2d_against_numpy():
    """Multi-channel 2D layer against a mode-by-mode NumPy evaluation of the definition."""
    torch.manual_seed(0)
    n1, n2, c_in, c_out = 12, 10, 2, 3
    modes = (5, 6)  # k1 in -2..2, k2 in 0..3
    layer = SpectralConv(c_in, c_out, modes).double()
    with torch.no_grad():
        layer.bias.normal_()
    u = np.random.default_rng(0).normal(size=(1, c_in, n1, n2))
    y = layer(torch.as_tensor(u)).detach().numpy()[0]
    w = layer.complex_weight.detach().numpy()
    b = layer.bias.detach().numpy()
    u_hat = np.fft.fft2(u[0]) / (n1 * n2)  # full (two-sided) Fourier-series coefficients
    g1, g2 = np.meshgrid(np.arange(n1) / n1, np.arange(n2) / n2, indexing="ij")
    expected = np.zeros((c_out, n1, n2), dtype=complex)
    for k1 in range(-2, 3):
        for k2 in range(0, 4):
            mixed = np.einsum("i,io->o", u_hat[:, k1 % n1, k2], w[:, :, k1 % modes[0], k2])
            wave = np.exp(2j * np.pi * (k1 * g1 + k2 * g2))
            # A real output: the k2 > 0 modes stand for themselves and their conjugates; on the
            # k2 = 0 line the real part of the inverse transform is kept.
            expected += (2 if k2 > 0 else 1) * mixed[:, None, None] * wave
    expected = np.real(expected) + b
    np.testing.assert_allclose(y, expected, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def antiderivative_data(n_samples: int, n: int, gen: torch.Generator):
    """u = sum_k a_k cos(2 pi k x) + b_k sin(2 pi k x), k = 1..8, and 2 pi times its
    zero-mean antiderivative."""
    k = torch.arange(1, 9, dtype=torch.float64)
    a = torch.randn(n_samples, 8, generator=gen, dtype=torch.float64) / k
    b = torch.randn(n_samples, 8, generator=gen, dtype=torch.float64) / k
    phase = 2 * math.pi * k[:, None] * (torch.arange(n, dtype=torch.float64) / n)
    u = a @ torch.cos(phase) + b @ torch.sin(phase)
    v = (a / k) @ torch.sin(phase) - (b / k) @ torch.cos(phase)
    return u[:, None].float(), v[:, None].float()


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    return ((pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)).mean()


def test_training_learns_antiderivative(single_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    u, v = antiderivative_data(32, 32, gen)
    u_test, v_test = antiderivative_data(32, 32, gen)
    model = FNO(in_channels=1, out_channels=1, n_modes=[16], hidden_channels=16, n_layers=2,
                positional_embedding=None)
    steps = 200
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    with torch.no_grad():
        initial = relative_l2(model(u_test), v_test).item()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = relative_l2(model(u), v)
        loss.backward()
        optimiser.step()
        schedule.step()
    with torch.no_grad():
        final = relative_l2(model(u_test), v_test).item()
        # Zero-shot on a grid twice as fine, same test functions (the draws do not depend on
        # the grid size): still accurate.
        gen = torch.Generator().manual_seed(1)
        antiderivative_data(32, 64, gen)
        u_fine, v_fine = antiderivative_data(32, 64, gen)
        fine = relative_l2(model(u_fine), v_fine).item()
    assert initial > 0.5
    assert final < initial / 20, (initial, final)
    assert fine < 2 * final, (final, fine)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = FNO(in_channels=2, out_channels=1, n_modes=(6, 5), n_layers=2, hidden_channels=8,
                domain_padding=0.25, norm="group_norm")
    with torch.no_grad():  # make every parameter non-trivial (gates, biases, norms)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "fno.pt"
    torch.save(model_checkpoint(model), path)
    checkpoint = torch.load(path, weights_only=True)
    restored = model_from_checkpoint(checkpoint)
    assert type(restored) is FNO
    x = torch.randn(2, 2, 14, 9)
    model.eval()
    restored.eval()
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x), rtol=0, atol=0)
    config = json.loads(checkpoint["config"])
    assert config == restored.config == model.config
    assert config["n_modes"] == [6, 5]
    assert config["hidden_channels"] == 8
    # Defaults not passed are recorded too.
    for name, value in [("lifting_channel_ratio", 2), ("projection_channel_ratio", 2),
                        ("positional_embedding", "grid"), ("channel_mlp_expansion", 0.5),
                        ("channel_mlp_skip", "soft-gating"), ("fno_skip", "linear"),
                        ("non_linearity", "gelu")]:
        assert config[name] == value
    assert FNO(in_channels=1, out_channels=1, n_modes=[4]).config["hidden_channels"] == 32
    assert FNO(in_channels=1, out_channels=1, n_modes=[4]).config["n_layers"] == 4


def test_spectral_weights_are_real_parameters():
    model = FNO(in_channels=1, out_channels=1, n_modes=[8, 6], hidden_channels=4, n_layers=1)
    assert all(not p.is_complex() for p in model.parameters())
    weight = model.blocks[0].spectral.weight
    assert weight.shape == (4, 4, 8, 4, 2)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_wrong_channels_names_both_shapes():
    model = FNO(in_channels=3, out_channels=1, n_modes=[4, 4], hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError) as info:
        model(torch.randn(2, 4, 16, 16))
    message = str(info.value)
    assert "(batch, 3, n_x, n_y)" in message
    assert "(2, 4, 16, 16)" in message


def test_wrong_spatial_dims():
    model = FNO(in_channels=1, out_channels=1, n_modes=[4, 4], hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError, match=r"2 spatial axes.*\(2, 1, 16\)"):
        model(torch.randn(2, 1, 16))
    with pytest.raises(ValueError, match="output_shape"):
        model(torch.randn(2, 1, 8, 8), output_shape=(16,))
    with pytest.raises(ValueError, match=r"\(batch, 2, n_x\)"):
        SpectralConv(2, 2, (4,))(torch.randn(1, 3, 8))


@pytest.mark.parametrize("n_modes", [[], [4, 4, 4, 4], 16, [4, 0], [2.5]])
def test_bad_n_modes(n_modes):
    with pytest.raises(ValueError, match="n_modes"):
        FNO(in_channels=1, out_channels=1, n_modes=n_modes)


@pytest.mark.parametrize("options", [
    {"positional_embedding": "sincos"}, {"norm": "batch_norm"}, {"fno_skip": "conv"},
    {"channel_mlp_skip": "gate"}, {"non_linearity": "swish"}, {"domain_padding": -0.1},
    {"domain_padding": [0.1, 0.1]}, {"hidden_channels": 0}, {"lifting_channel_ratio": -1},
])
def test_bad_options(options):
    with pytest.raises(ValueError):
        FNO(in_channels=1, out_channels=1, n_modes=[4], **options)


def test_positional_arguments_rejected():
    with pytest.raises(TypeError, match="keyword"):
        FNO(1, 1, [4])


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_forward_backward_on_device(device):
    torch.manual_seed(0)
    device = torch.device(device)
    model = FNO(in_channels=2, out_channels=1, n_modes=[6, 6], hidden_channels=8, n_layers=2,
                domain_padding=0.125).to(device)
    x = torch.randn(2, 2, 16, 16, device=device)
    y = model(x)
    assert y.device.type == device.type
    y.square().mean().backward()
    grad = model.blocks[0].spectral.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert model(x, output_shape=(32, 32)).shape == (2, 1, 32, 32)
