"""Tests for operators.deeponet: shapes, shared-point evaluation, checkpoints, SIREN statistics,
the modified MLP by hand, a small operator fit, and input errors."""

from __future__ import annotations

import math

import pytest
import torch

from operators.base import load_model, registered, save_model
from operators.deeponet import MLP, DeepONet, mlp_parameter_count

CONFIGS = [
    {"network": "mlp", "activation": "tanh"},
    {"network": "modified", "activation": "sine", "fourier_features": 2,
     "trunk_lower": [0.0, 0.0, 0.0], "trunk_upper": [2.0, 1.0, 0.05]},
    {"network": "modified", "activation": "tanh", "branch_lower": [0.0] * 5,
     "branch_upper": [1.0] * 5},
]


def small(**kw):
    base = {"branch_in": 5, "trunk_in": 3, "n_basis": 7, "branch_hidden": (16, 16),
            "trunk_hidden": (16, 16)}
    return DeepONet(**{**base, **kw})


@pytest.mark.parametrize("config", CONFIGS)
def test_shapes_and_forward_field_equals_forward(config):
    torch.manual_seed(0)
    model = small(**config)
    branch = torch.rand(4, 5)
    points = torch.rand(11, 3) * torch.tensor([2.0, 1.0, 0.05])
    out = model(branch, points.expand(4, 11, 3))
    assert out.shape == (4, 11)
    field = model.forward_field(branch, points, chunk=3)  # several chunks, a ragged last one
    assert field.shape == (4, 11)
    torch.testing.assert_close(field, out, rtol=1e-5, atol=1e-6)
    # per-input points differ between inputs in forward
    trunk = torch.rand(4, 6, 3)
    expected = torch.stack([model.forward_field(branch[i:i + 1], trunk[i])[0] for i in range(4)])
    torch.testing.assert_close(model(branch, trunk), expected, rtol=1e-5, atol=1e-6)


def test_forward_is_the_inner_product_plus_bias():
    torch.manual_seed(1)
    model = small(fourier_features=1)
    with torch.no_grad():
        model.bias.fill_(0.25)
    branch, points = torch.rand(2, 5), torch.rand(9, 3)
    expected = model.coefficients(branch) @ model.basis(points).T + 0.25
    torch.testing.assert_close(model.forward_field(branch, points), expected)
    assert model.trunk_features(points).shape == (9, 3 * (1 + 2 * 1))


def test_parameter_count_matches_formula():
    for config in CONFIGS:
        model = small(**config)
        ff = config.get("fourier_features", 0)
        kind = config["network"]
        expected = (mlp_parameter_count(5, (16, 16), 7, network=kind)
                    + mlp_parameter_count(3 * (1 + 2 * ff), (16, 16), 7, network=kind) + 1)
        assert model.n_parameters() == expected
    assert DeepONet(branch_in=3, trunk_in=4).n_parameters() == 93001  # documented default


@pytest.mark.parametrize("config", CONFIGS)
def test_checkpoint_round_trip_is_exact(tmp_path, config):
    assert registered()["DeepONet"] is DeepONet
    torch.manual_seed(2)
    model = small(**config)
    path = tmp_path / "deeponet.pt"
    save_model(model, path)
    loaded = load_model(path)
    assert isinstance(loaded, DeepONet)
    assert loaded.config == model.config
    branch, points = torch.rand(3, 5), torch.rand(8, 3)
    with torch.no_grad():
        expected = model.forward_field(branch, points)
        assert torch.equal(loaded.forward_field(branch, points), expected)


def test_siren_initialisation_statistics():
    torch.manual_seed(3)
    n_in, width = 40, 256
    net = MLP(n_in, (width, width, width), 50, network="modified", activation="sine", omega_0=30.0)
    for first in (net.hidden[0], net.encoder_u, net.encoder_v):
        w = first.weight
        bound = 1.0 / n_in
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.98 * bound  # fills the interval
        # uniform(-a, a) has standard deviation a / sqrt(3)
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.03 * bound
    for later in (*net.hidden[1:], net.output):
        w = later.weight
        bound = math.sqrt(6.0 / width) / 30.0
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.98 * bound
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.03 * bound
        assert abs(w.mean().item()) < 0.02 * bound
    # a sine network keeps pre-activations of order one: sin(30 z) spans [-1, 1]
    h = torch.sin(30.0 * net.hidden[0](torch.rand(1000, n_in) * 2 - 1))
    assert 0.3 < h.std().item() < 0.9


def test_modified_mlp_matches_hand_computation():
    torch.manual_seed(4)
    net = MLP(2, (3, 3), 1, network="modified", activation="tanh")
    x = torch.tensor([[0.3, -0.7], [1.2, 0.4]])
    with torch.no_grad():
        got = net(x)
        lin = [(layer.weight, layer.bias) for layer in
               (net.encoder_u, net.encoder_v, net.hidden[0], net.hidden[1], net.output)]
    (wu, bu), (wv, bv), (w1, b1), (w2, b2), (wo, bo) = lin
    for row in range(2):
        xr = x[row].tolist()

        def dense(w, b, v):
            return [sum(w[i, j].item() * v[j] for j in range(len(v))) + b[i].item()
                    for i in range(w.shape[0])]

        u = [math.tanh(z) for z in dense(wu, bu, xr)]
        v = [math.tanh(z) for z in dense(wv, bv, xr)]
        h = xr
        for w, b in ((w1, b1), (w2, b2)):
            h = [math.tanh(z) for z in dense(w, b, h)]
            h = [hi * ui + (1 - hi) * vi for hi, ui, vi in zip(h, u, v, strict=True)]
        out = dense(wo, bo, h)[0]
        assert got[row, 0].item() == pytest.approx(out, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("network,activation,steps,lr", [("modified", "sine", 400, 1e-3),
                                                          ("mlp", "tanh", 1500, 3e-3)])
def test_learns_sine_family_operator(network, activation, steps, lr):
    """G(u)(y) = sin(a y) on y in [0, pi] from u = sin(a x) at 8 sensors in [0, 1], a in [1, 3].

    40 training functions; relative L2 on 50 held-out random a must be < 5e-2 (measured about
    1e-2 for the modified sine network and 2e-2 for the tanh MLP; an untrained model gives ~1).
    """
    torch.manual_seed(0)
    sensors = torch.linspace(0, 1, 8)
    y = torch.linspace(0, math.pi, 40)

    def data(a):
        return torch.sin(a[:, None] * sensors), torch.sin(a[:, None] * y)

    model = DeepONet(branch_in=8, trunk_in=1, n_basis=32, branch_hidden=(64, 64),
                     trunk_hidden=(64, 64), network=network, activation=activation,
                     trunk_lower=[0.0], trunk_upper=[math.pi])
    branch, target = data(torch.linspace(1, 3, 40))
    points = y[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model.forward_field(branch, points) - target) ** 2).mean()
        loss.backward()
        opt.step()
    a_test = 1 + 2 * torch.rand(50, generator=torch.Generator().manual_seed(1))
    branch_t, target_t = data(a_test)
    with torch.no_grad():
        pred = model.forward_field(branch_t, points)
    rel = ((pred - target_t).norm(dim=1) / target_t.norm(dim=1)).mean().item()
    assert rel < 5e-2


def test_bad_inputs_raise():
    model = small()
    with pytest.raises(ValueError, match=r"branch must have shape \(B, 5\), got \(2, 4\)"):
        model(torch.rand(2, 4), torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match=r"trunk must have shape \(B, n_points, 3\), got \(2, 3\)"):
        model(torch.rand(2, 5), torch.rand(2, 3))
    with pytest.raises(ValueError, match="same batch size"):
        model(torch.rand(2, 5), torch.rand(3, 4, 3))
    with pytest.raises(ValueError, match=r"trunk_points must have shape \(n_points, 3\)"):
        model.forward_field(torch.rand(2, 5), torch.rand(2, 4, 3))
    with pytest.raises(ValueError, match="chunk"):
        model.forward_field(torch.rand(2, 5), torch.rand(4, 3), chunk=0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0] * 5], torch.rand(1, 2, 3))
    with pytest.raises(ValueError, match="network"):
        small(network="resnet")
    with pytest.raises(ValueError, match="activation"):
        small(activation="relu")
    with pytest.raises(ValueError, match="equal hidden widths"):
        small(network="modified", trunk_hidden=(16, 8))
    with pytest.raises(ValueError, match="n_basis"):
        small(n_basis=0)
    with pytest.raises(ValueError, match="fourier_features"):
        small(fourier_features=-1)
    with pytest.raises(ValueError, match="given together"):
        small(trunk_lower=[0, 0, 0])
    with pytest.raises(ValueError, match="need 3 entries"):
        small(trunk_lower=[0, 0], trunk_upper=[1, 1])
    with pytest.raises(ValueError, match="lower < upper"):
        small(trunk_lower=[0, 0, 1], trunk_upper=[1, 1, 1])
    with pytest.raises(ValueError, match="branch_hidden"):
        small(branch_hidden=())
    with pytest.raises(TypeError, match="keyword arguments only"):
        DeepONet(5, 3)
