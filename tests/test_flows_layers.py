"""Flow layers: inverse round trips, log-dets against brute-force Jacobians (float64), actnorm's
data-dependent initialisation, LU vs plain 1x1 convolutions, and clear errors for bad input."""

import math

import pytest
import torch
from flow_helpers import randomize
from torch.autograd.functional import jacobian

from arflow.models.actnorm import ActNorm
from arflow.models.coupling import Coupling, CouplingConvNet, CouplingMLP, channel_mask, checkerboard_mask, vector_mask
from arflow.models.dequantize import LogitTransform, dequantize, discrete_bits_per_dim
from arflow.models.invconv import InvConv1x1, InvConv1x1LU, random_rotation
from arflow.models.split import Split
from arflow.models.squeeze import Squeeze, squeeze, unsqueeze


def brute_logdet(layer, x_one):
    """log|det| of the full Jacobian of one example (shape without batch), float64."""
    shape = x_one.shape
    J = jacobian(lambda v: layer(v.view(1, *shape))[0].reshape(-1), x_one.reshape(-1))
    return torch.linalg.slogdet(J)[1], J


def image_layers():
    torch.manual_seed(0)
    return {
        "affine checkerboard": Coupling(checkerboard_mask(4, 4, 0), CouplingConvNet(2, 8)),
        "affine checkerboard odd parity": Coupling(checkerboard_mask(4, 4, 1), CouplingConvNet(2, 8)),
        "affine channel": Coupling(channel_mask(2, 0), CouplingConvNet(2, 8)),
        "additive channel": Coupling(channel_mask(2, 1), CouplingConvNet(2, 8), affine=False),
        "actnorm": ActNorm(2),
        "invconv plain": InvConv1x1(2),
        "invconv LU": InvConv1x1LU(2),
        "squeeze": Squeeze(),
        "logit": LogitTransform(0.05),
    }


@pytest.mark.parametrize("name", list(image_layers()))
def test_image_layer_round_trip_and_logdet(name):
    layer = image_layers()[name].double()
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64) * 0.9 + 0.05  # inside (0, 1) for the logit
    layer(x)  # actnorm initialises on its first batch
    randomize(layer)
    y, logdet = layer(x)
    assert y.shape == squeeze(x).shape if name == "squeeze" else y.shape == x.shape
    assert logdet.shape == (3,)
    x_back, inverse_logdet = layer.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-10)
    assert torch.allclose(inverse_logdet, -logdet, atol=1e-10)  # the interface: inverse -> (x, log|det dx/dy|)
    for i in range(3):
        brute, _ = brute_logdet(layer, x[i])
        assert torch.allclose(logdet[i], brute, atol=1e-8), (name, logdet[i].item(), brute.item())


def test_vector_coupling_round_trip_and_logdet():
    torch.manual_seed(1)
    layer = randomize(Coupling(vector_mask(5, 1), CouplingMLP(5, 16))).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    y, logdet = layer(x)
    x_back, inverse_logdet = layer.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-12) and torch.allclose(inverse_logdet, -logdet, atol=1e-12)
    for i in range(4):
        assert torch.allclose(logdet[i], brute_logdet(layer, x[i])[0], atol=1e-10)


def test_coupling_jacobian_is_triangular_with_exp_s_on_the_diagonal():
    torch.manual_seed(2)
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # x_{1:3} kept, x_{4:6} transformed
    layer = randomize(Coupling(mask, CouplingMLP(6, 16))).double()
    x = torch.randn(1, 6, dtype=torch.float64)
    _, J = brute_logdet(layer, x[0])
    # Kept rows are the identity; transformed rows do not depend on other transformed entries.
    assert torch.allclose(J[:3], torch.eye(6, dtype=torch.float64)[:3])
    assert torch.allclose(J[3:, 3:], torch.diag(torch.diagonal(J[3:, 3:])))
    assert J[3:, :3].abs().max() > 1e-3  # the lower-left block is dense: that is where s and t act
    s, _ = layer.scale_shift(x * layer.mask)
    assert torch.allclose(torch.diagonal(J)[3:], torch.exp(s[0, 3:]))


def test_additive_coupling_preserves_volume():
    layer = randomize(Coupling(channel_mask(4), CouplingConvNet(4, 8), affine=False))
    _, logdet = layer(torch.randn(2, 4, 3, 3))
    assert torch.equal(logdet, torch.zeros(2))


def test_coupling_transforms_only_the_unmasked_entries_and_alternation_covers_all():
    torch.manual_seed(3)
    x = torch.randn(2, 1, 4, 4)
    first = randomize(Coupling(checkerboard_mask(4, 4, 0), CouplingConvNet(1, 8)))
    second = randomize(Coupling(checkerboard_mask(4, 4, 1), CouplingConvNet(1, 8)))
    y, _ = first(x)
    mask = checkerboard_mask(4, 4, 0).bool()
    assert torch.equal(y[:, mask], x[:, mask])
    assert (y[:, ~mask] - x[:, ~mask]).abs().min() > 0
    z, _ = second(y)
    assert (z - x).abs().min() > 0  # after two alternating layers every entry has changed


def test_masks():
    board = checkerboard_mask(3, 4, 0)
    assert board.shape == (1, 3, 4) and board[0, 0, 0] == 1 and board[0, 0, 1] == 0 and board[0, 1, 0] == 0
    assert torch.equal(checkerboard_mask(3, 4, 1), 1 - board)
    ch = channel_mask(6, 0)
    assert ch.shape == (6, 1, 1) and ch.flatten().tolist() == [1, 1, 1, 0, 0, 0]
    assert torch.equal(channel_mask(6, 1), 1 - ch)


def test_bad_masks_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="0s and 1s"):
        Coupling(torch.full((4,), 0.5), CouplingMLP(4, 8))
    layer = Coupling(checkerboard_mask(4, 4), CouplingConvNet(1, 8))
    with pytest.raises(ValueError, match="does not fit"):
        layer(torch.randn(2, 1, 6, 6))  # a 4x4 mask on 6x6 images
    with pytest.raises(ValueError, match="does not fit"):
        layer(torch.randn(2, 16))
    with pytest.raises(ValueError, match="even number of channels"):
        channel_mask(3)
    with pytest.raises(ValueError, match="parity"):
        checkerboard_mask(4, 4, 2)
    with pytest.raises(ValueError, match="2 \\* 1 = 2 channels"):
        Coupling(checkerboard_mask(4, 4), torch.nn.Conv2d(1, 3, 1))(torch.randn(1, 1, 4, 4))


def test_squeeze_layout_and_round_trip():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = squeeze(x)
    assert y.shape == (1, 4, 2, 2)
    # Channel 2i + j holds the (i, j) pixel of every 2x2 block.
    assert y[0, :, 0, 0].tolist() == [0, 1, 4, 5]
    assert y[0, :, 1, 1].tolist() == [10, 11, 14, 15]
    assert y[0, 0].tolist() == [[0, 2], [8, 10]]
    x2 = torch.randn(2, 3, 6, 8)
    assert torch.equal(unsqueeze(squeeze(x2)), x2)
    y2 = torch.randn(2, 8, 3, 3)
    assert torch.equal(squeeze(unsqueeze(y2)), y2)


def test_squeeze_errors():
    with pytest.raises(ValueError, match="even height and width, got 5x4"):
        squeeze(torch.randn(1, 1, 5, 4))
    with pytest.raises(ValueError, match="B, C, H, W"):
        squeeze(torch.randn(4, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        unsqueeze(torch.randn(1, 6, 2, 2))


def test_split_round_trip_and_errors():
    from arflow.models.flow import FlowSequence

    x = torch.randn(2, 4, 3, 3)
    split = Split(FlowSequence([]), (4, 3, 3))  # nothing after the split: the kept half comes out as is
    y, logdet = split(x)
    assert y.shape == (2, 36) and torch.equal(logdet, torch.zeros(2))
    h, z = y[:, 18:].view(2, 2, 3, 3), y[:, :18].view(2, 2, 3, 3)  # [factored out, kept]
    assert torch.equal(h, x[:, :2]) and torch.equal(z, x[:, 2:])
    x_back, inverse_logdet = split.inverse(y)
    assert torch.equal(x_back, x) and torch.equal(inverse_logdet, torch.zeros(2))
    with pytest.raises(ValueError, match="even number of channels"):
        Split(FlowSequence([]), (3, 2, 2))


def test_split_sends_the_kept_half_through_the_rest_of_the_flow():
    from arflow.models.flow import FlowSequence

    torch.manual_seed(2)
    rest = FlowSequence([randomize(Coupling(channel_mask(2, 0), CouplingConvNet(2, 8)))]).double()
    split = Split(rest, (4, 4, 4)).double()
    x = torch.randn(3, 4, 4, 4, dtype=torch.float64)
    y, logdet = split(x)
    kept, rest_logdet = rest(x[:, :2])
    assert torch.equal(y[:, 32:], kept.flatten(1)) and torch.equal(logdet, rest_logdet)
    x_back, inverse_logdet = split.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-12) and torch.allclose(inverse_logdet, -logdet, atol=1e-12)


def test_actnorm_data_dependent_initialisation():
    torch.manual_seed(4)
    x = 3.0 + 5.0 * torch.randn(64, 3, 5, 5) * torch.tensor([1.0, 0.1, 2.0]).view(1, 3, 1, 1)
    layer = ActNorm(3)
    assert not layer.initialized
    y, logdet = layer(x)
    assert layer.initialized
    per_channel = y.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.allclose(logdet, 25 * layer.log_scale.sum().expand(64))
    # A second batch does not re-initialise: the parameters are now ordinary parameters.
    before = layer.log_scale.detach().clone()
    layer(torch.randn(8, 3, 5, 5))
    assert torch.equal(layer.log_scale.detach(), before)
    # The flag lives in the state_dict, so that a loaded model is not re-initialised.
    fresh = ActNorm(3)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.initialized and torch.equal(fresh(x)[0], y)


def test_actnorm_on_vectors_and_errors():
    layer = ActNorm(4)
    y, logdet = layer(torch.randn(32, 4) * 7 + 2)
    assert torch.allclose(y.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(logdet, layer.log_scale.sum().expand(32))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(2, 3))


def test_random_rotation_has_log_det_zero():
    w = random_rotation(16, torch.Generator().manual_seed(0))
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    assert abs(torch.linalg.slogdet(w)[1].item()) < 1e-4
    for layer in (InvConv1x1(8), InvConv1x1LU(8)):
        assert layer(torch.randn(2, 8, 3, 3))[1].abs().max() < 1e-3


def test_lu_and_plain_1x1_convolutions_agree_from_the_same_weight():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(6, 6, generator=g, dtype=torch.float64)  # not orthogonal: log|det| != 0
    plain, lu = InvConv1x1.from_weight(w).double(), InvConv1x1LU.from_weight(w).double()
    assert torch.allclose(lu.matrix(), w, atol=1e-10)
    x = torch.randn(3, 6, 4, 5, generator=g, dtype=torch.float64)
    (y1, ld1), (y2, ld2) = plain(x), lu(x)
    assert torch.allclose(y1, y2, atol=1e-10)
    assert torch.allclose(ld1, ld2, atol=1e-10)
    assert torch.allclose(ld1, 20 * torch.linalg.slogdet(w)[1].expand(3))  # h * w * log|det W|
    assert torch.allclose(plain.inverse(y1)[0], x, atol=1e-10)
    assert torch.allclose(lu.inverse(y2)[0], x, atol=1e-10)


def test_lu_structure_survives_training():
    layer = InvConv1x1LU(4)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    target = torch.randn(2, 4, 2, 2)
    for _ in range(3):
        loss = (layer(torch.randn(2, 4, 2, 2))[0] * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # garbage where L and U must stay zero (weight decay could put it there)
        layer.lower.add_(torch.triu(torch.ones(4, 4)))
        layer.upper.add_(torch.tril(torch.ones(4, 4)))
    # The cheap sum of log|s| is still log|det W|: L and U kept their triangular structure.
    assert torch.allclose(layer.log_abs_det(), torch.linalg.slogdet(layer.matrix())[1], atol=1e-4)


def test_invconv_errors():
    with pytest.raises(ValueError, match="expects \\(B, 4, H, W\\)"):
        InvConv1x1(4)(torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="square"):
        InvConv1x1LU.from_weight(torch.randn(3, 4))


def test_dequantization_and_bits_per_dim():
    x = torch.tensor([[0.0, 1.0, 128 / 255]])
    v = dequantize(x.expand(1000, 3), torch.Generator().manual_seed(0))
    k = torch.tensor([0.0, 255.0, 128.0])
    assert torch.all((v >= k / 256) & (v < (k + 1) / 256))  # each value spread over its own bin
    with pytest.raises(TypeError, match="float"):
        dequantize(torch.zeros(2, dtype=torch.uint8))
    # A uniform density on [0, 1]^D (log p = 0) is exactly 8 bits/dim.
    assert torch.allclose(discrete_bits_per_dim(torch.zeros(2), 784), torch.full((2,), 8.0))
    assert math.isclose(discrete_bits_per_dim(torch.tensor(-784 * math.log(2)), 784).item(), 9.0, rel_tol=1e-6)


def test_run_flow_is_one_loop_both_ways_and_keeps_the_stages():
    from arflow.models.flow import FlowSequence, run_flow

    torch.manual_seed(3)
    layers = [randomize(Coupling(vector_mask(4, k % 2), CouplingMLP(4, 8))).double() for k in range(3)]
    x = torch.randn(5, 4, dtype=torch.float64)
    z, logdet, stages = run_flow(layers, x, keep=True)
    assert len(stages) == 4 and torch.equal(stages[0], x) and torch.equal(stages[-1], z)
    x_back, inverse_logdet = FlowSequence(layers).inverse(z)
    assert torch.allclose(x_back, x, atol=1e-12) and torch.allclose(inverse_logdet, -logdet, atol=1e-12)


def test_lu_factors_rebuild_the_matrix():
    W = random_rotation(5, torch.Generator().manual_seed(0)).double()
    layer = InvConv1x1LU.from_weight(W)
    P, L, U = layer.factors()
    assert torch.allclose(P @ L @ U, W, atol=1e-12)
    assert torch.equal(L, torch.tril(L)) and torch.equal(torch.diagonal(L), torch.ones(5, dtype=torch.float64))
    assert torch.equal(U, torch.triu(U))
    assert torch.allclose(torch.log(torch.diagonal(U).abs()).sum(), layer.log_abs_det())
