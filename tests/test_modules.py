"""The torch building blocks of :mod:`skae.modules`: shapes, weight tying, noise."""

import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.testing import assert_close

from skae.modules import (
    MLP,
    BatchNorm1d,
    ConvDecoder,
    ConvEncoder,
    GaussianNoise,
    MLPDecoder,
    MLPEncoder,
    ParameterAverage,
    TiedMLPDecoder,
    WeightNormLinear,
    build_decoder,
    build_encoder,
    random_shift,
)

SHAPES_MLP = [(10,), (8, 8), (7, 9), (3, 7, 9), (1, 8, 8)]
# (7, 9), (3, 7, 9), (2, 5, 11): not multiples of 2**2, padded by encoders, cropped by decoders
SHAPES_CONV = [(8, 8), (7, 9), (1, 8, 8), (3, 7, 9), (2, 5, 11), (1, 28, 28)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_mlp_layers_end_with_linear_without_activation():
    mlp = MLP([5, 8, 6, 3], "tanh")
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert mlp(torch.randn(4, 5)).shape == (4, 3)


def test_mlp_without_hidden_layers_is_one_linear_map():
    mlp = MLP([5, 3], "relu")
    assert [type(m) for m in mlp] == [nn.Linear]


@pytest.mark.parametrize("shape", SHAPES_MLP)
@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)])
def test_mlp_encoder_decoder_shapes(shape, hidden):
    enc = MLPEncoder(shape, hidden, 3)
    dec = MLPDecoder(3, hidden[::-1], shape)
    x = torch.randn(5, *shape)
    z = enc(x)
    assert z.shape == (5, 3)
    assert dec(z).shape == (5, *shape)


@pytest.mark.parametrize("shape", SHAPES_CONV)
@pytest.mark.parametrize("channels", [(4,), (4, 8)])
def test_conv_encoder_decoder_shapes(shape, channels):
    enc = ConvEncoder(shape, channels, 3)
    dec = ConvDecoder(3, channels, shape)
    x = torch.randn(2, *shape)
    z = enc(x)
    assert z.shape == (2, 3)
    out = dec(z)
    assert out.shape == (2, *shape)
    # trainable end to end through padding and cropping
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_conv_encoder_reads_every_pixel_of_an_odd_sized_input():
    # every pixel of a 7x9 image (including the last row and column) reaches the code
    enc = ConvEncoder((7, 9), (4, 8), 3)
    x = torch.randn(1, 7, 9, requires_grad=True)
    enc(x).sum().backward()
    assert (x.grad[0, -1, :] != 0).any() and (x.grad[0, :, -1] != 0).any()


@pytest.mark.parametrize("shape", [(10,), (4, 3, 2, 2)])
def test_conv_backbone_rejects_non_image_shapes(shape):
    with pytest.raises(ValueError, match=r"needs images of shape \(n, H, W\) or \(n, C, H, W\)"):
        ConvEncoder(shape, (4,), 2)
    with pytest.raises(ValueError, match=r"needs images of shape"):
        ConvDecoder(2, (4,), shape)


@pytest.mark.parametrize("backbone, kinds", [("mlp", (MLPEncoder, MLPDecoder)),
                                             ("conv", (ConvEncoder, ConvDecoder))])
def test_build_encoder_decoder_pick_backbone(backbone, kinds):
    enc = build_encoder(backbone, (6, 6), (4,), 2, "relu")
    dec = build_decoder(backbone, 2, (4,), (6, 6), "relu")
    assert isinstance(enc, kinds[0]) and isinstance(dec, kinds[1])
    assert dec(enc(torch.randn(3, 6, 6))).shape == (3, 6, 6)


# --- tied weights ----------------------------------------------------------------------------
def _tied(shape=(6,), hidden=(5, 4), n_out=3, activation="tanh"):
    enc = MLPEncoder(shape, hidden, n_out, activation)
    dec = build_decoder("mlp", n_out, hidden, shape, activation, tied_to=enc)
    return enc, dec


def test_tied_decoder_owns_only_biases():
    enc, dec = _tied()
    assert isinstance(dec, TiedMLPDecoder)
    enc_ids = {id(p) for p in enc.parameters()}
    dec_params = list(dec.parameters())
    assert not enc_ids & {id(p) for p in dec_params}
    # one bias per encoder linear, sized like that linear's input
    assert [tuple(p.shape) for p in dec_params] == [(4,), (5,), (6,)]
    # a model holding both counts every weight once
    both = nn.ModuleDict({"enc": enc, "dec": dec})
    n_enc = sum(p.numel() for p in enc.parameters())
    assert sum(p.numel() for p in both.parameters()) == n_enc + 4 + 5 + 6


def test_tied_decoder_computes_transposed_encoder_layers():
    enc, dec = _tied()
    z = torch.randn(7, 3)
    lins = enc.linears()[::-1]
    h = z
    for i, (lin, b) in enumerate(zip(lins, dec.biases, strict=True)):
        h = F.linear(h, lin.weight.t(), b)
        h = torch.tanh(h) if i < len(lins) - 1 else h
    assert_close(dec(z), h)


def test_tied_decoder_shares_encoder_storage_and_gradient():
    enc, dec = _tied()
    z = torch.randn(4, 3)
    before = dec(z).detach().clone()
    with torch.no_grad():
        enc.linears()[0].weight.mul_(2.0)  # edit the encoder in place ...
    assert not torch.allclose(dec(z), before)  # ... and the decoder sees it

    dec(z).square().sum().backward()  # the decoder alone: its gradient reaches the encoder
    for lin in enc.linears():
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_tied_decoder_reshapes_to_images():
    enc, dec = _tied(shape=(2, 3, 4), hidden=(8,))
    assert dec(enc(torch.randn(5, 2, 3, 4))).shape == (5, 2, 3, 4)


# --- GaussianNoise ---------------------------------------------------------------------------
def test_gaussian_noise_is_identity_in_eval_mode():
    noise = GaussianNoise(0.5).eval()
    x = torch.randn(100, 3)
    assert torch.equal(noise(x), x)


def test_gaussian_noise_adds_noise_of_given_std_in_training():
    noise = GaussianNoise(0.5).train()
    x = torch.randn(20_000, 5)
    diff = noise(x) - x
    assert diff.mean().abs() < 0.02
    assert diff.std().item() == pytest.approx(0.5, rel=0.03)
    assert torch.equal(GaussianNoise(0.0).train()(x), x)


def test_mlp_noise_layers_only_act_in_training():
    mlp = MLP([4, 8, 2], input_noise=0.3, hidden_noise=0.3)
    x = torch.randn(10, 4)
    mlp.eval()
    assert torch.equal(mlp(x), mlp(x))
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))


def test_mlp_batch_norm_normalizes_each_hidden_layer_before_its_activation():
    mlp = MLP([4, 8, 8, 2], batch_norm=True, hidden_noise=0.1)
    kinds = [type(m).__name__ for m in mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "GaussianNoise"] * 2 + ["Linear"]
    out = nn.Sequential(*list(mlp)[:2])(torch.randn(50, 4) * 5 + 3)  # the minibatch statistics
    assert_close(out.mean(dim=0), torch.zeros(8), atol=1e-5, rtol=0)
    assert_close(out.std(dim=0, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)


def test_batch_norm_of_one_row_in_training_uses_the_running_statistics():
    bn = BatchNorm1d(3)
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(4.0)
    x = torch.tensor([[3.0, 1.0, -1.0]])
    assert_close(bn.train()(x), torch.tensor([[1.0, 0.0, -1.0]]), atol=1e-4, rtol=0)
    assert_close(bn.train()(x), bn.eval()(x))


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_build_encoder_passes_hidden_noise_and_batch_norm(backbone):
    shape = (8, 8) if backbone == "conv" else (6,)
    encoder = build_encoder(backbone, shape, (4, 4), 3, "relu", hidden_noise=0.2,
                            batch_norm=True)
    kinds = [type(m).__name__ for m in encoder.modules()]
    assert kinds.count("GaussianNoise") == 2
    assert kinds.count("BatchNorm2d" if backbone == "conv" else "BatchNorm1d") == 2
    assert encoder(torch.rand(5, *shape)).shape == (5, 3)
    plain = [type(m).__name__ for m in build_encoder(backbone, shape, (4, 4), 3, "relu").modules()]
    assert not {"GaussianNoise", "BatchNorm1d", "BatchNorm2d"} & set(plain)


@pytest.mark.parametrize("bias", [True, False])
def test_weight_norm_linear_is_the_normalized_weight_with_its_gradients(bias):
    torch.manual_seed(0)
    layer = WeightNormLinear(7, 5, bias=bias)
    x = torch.randn(4, 7)
    # at initialization, g = ||v||: a plain linear layer with the weight v
    assert_close(layer(x), F.linear(x, layer.weight_v, layer.bias))
    with torch.no_grad():
        layer.weight_g.mul_(torch.linspace(0.5, 2.0, 5).unsqueeze(1))
    # the forward pass scales the outputs: the same as the normalized weight matrix
    out = layer(x)
    v = layer.weight_v
    reference = F.linear(x, layer.weight_g * v / v.norm(dim=1, keepdim=True), layer.bias)
    assert_close(out, reference)
    assert_close(out, F.linear(x, layer.weight, layer.bias))
    x.requires_grad_(True)
    out, reference = layer(x), F.linear(x, layer.weight, layer.bias)
    params = [x, *layer.parameters()]
    grads = torch.autograd.grad(out.square().sum(), params)
    expected = torch.autograd.grad(reference.square().sum(), params)
    for grad, want in zip(grads, expected):
        assert_close(grad, want)
    assert_close(pickle.loads(pickle.dumps(layer))(x), out)


def test_weight_norm_linear_backward_passes_gradcheck():
    from skae.modules import _WeightNormLinearFn

    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)  # any leading dims
    v = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    g = torch.rand(5, 1, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_WeightNormLinearFn.apply, (x, v, g, b))
    assert torch.autograd.gradcheck(_WeightNormLinearFn.apply, (x, v, g, None))


def test_weight_norm_linear_data_init_standardizes_its_outputs():
    torch.manual_seed(0)
    layer = WeightNormLinear(6, 4)
    x = 3.0 * torch.randn(200, 6) + 1.0
    out = layer.init_from_data(x)
    assert_close(out, layer(x))  # the returned batch is the initialized layer's output
    assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert_close(out.std(0, unbiased=False), torch.ones(4), atol=1e-5, rtol=0)


def test_weight_norm_linear_fixed_scale_gets_no_gradient():
    layer = WeightNormLinear(3, 2, train_scale=False)
    layer(torch.randn(5, 3)).sum().backward()
    assert not layer.weight_g.requires_grad and layer.weight_g.grad is None
    assert layer.weight_v.grad is not None and layer.bias.grad is not None


def test_parameter_average_is_a_warmed_up_exponential_average():
    source = nn.Linear(2, 1)
    average = ParameterAverage(source)
    assert average.steps() == 0 and not any(p.requires_grad for p in average.parameters())
    values = [1.0, 3.0, -2.0, 5.0]
    decay = 0.5
    expected = None
    for t, value in enumerate(values, start=1):
        with torch.no_grad():
            source.weight.fill_(value)
        average.update(source, decay)
        weight = 1.0 if t == 1 else max(1 - decay, 9 / (10 + t))
        expected = value if expected is None else expected + weight * (value - expected)
        assert_close(average.module.weight, torch.full((1, 2), expected))
    assert average.steps() == len(values) and int(average.n_averaged) == len(values)
    # the count travels with the state dict (warm start, persistence)
    restored = ParameterAverage(nn.Linear(2, 1))
    restored.load_state_dict(average.state_dict())
    assert restored.steps() == len(values)
    assert_close(restored.module.weight, average.module.weight)


def test_parameter_average_long_run_forgets_at_the_decay_rate():
    source, decay = nn.Linear(1, 1, bias=False), 0.9
    average = ParameterAverage(source)
    for _ in range(200):  # the warm-up (9 / (10 + t)) ends at t = 80
        average.update(source, decay)
    with torch.no_grad():
        source.weight.fill_(1.0)
        average.module.weight.fill_(0.0)
    average.update(source, decay)
    assert_close(average.module.weight, torch.full((1, 1), 1 - decay))


def test_parameter_average_averages_batch_norm_statistics_and_copies_its_count():
    source = nn.BatchNorm1d(2)
    average = ParameterAverage(source)
    for value in (1.0, 3.0):
        source.running_mean.fill_(value)
        source.num_batches_tracked.fill_(int(value))
        average.update(source, 0.5)
    # step 1 takes the value, step 2 moves by max(0.5, 9 / 12) = 0.75 towards the new one
    assert_close(average.module.running_mean, torch.full((2,), 1.0 + 0.75 * 2.0))
    assert int(average.module.num_batches_tracked) == 3


def test_parameter_average_updates_from_the_children_of_its_container():
    first, second = nn.Linear(2, 3), nn.BatchNorm1d(3)
    average = ParameterAverage(nn.ModuleDict({"a": first, "b": second}))
    with torch.no_grad():
        first.weight.fill_(2.0)
        second.bias.fill_(-1.0)
        second.running_mean.fill_(4.0)
    average.update((first, second), decay=0.5)  # the first update copies
    assert_close(average.module["a"].weight, first.weight)
    assert_close(average.module["b"].bias, second.bias)
    assert_close(average.module["b"].running_mean, second.running_mean)
    with pytest.raises(ValueError):  # a source with other parameters is refused
        average.update((first,), decay=0.5)


def test_parameter_average_restores_a_saved_state_in_place():
    source = nn.BatchNorm1d(2)
    average = ParameterAverage(source)
    with torch.no_grad():
        source.weight.fill_(2.0)
        source.running_mean.fill_(1.0)
    average.update(source, 0.5)
    saved = average.state()
    tensors = [average.module.weight, average.module.running_mean, average.n_averaged]
    before = [t.clone() for t in tensors]
    with torch.no_grad():
        source.weight.fill_(-3.0)
        source.running_mean.fill_(5.0)
    for _ in range(3):
        average.update(source, 0.5)
    assert average.steps() == 4 and not torch.equal(average.module.weight, before[0])
    average.restore(saved)
    # the same tensors (a recorded CUDA graph updates them), back to their values
    assert [average.module.weight, average.module.running_mean, average.n_averaged] == tensors
    for tensor, value in zip(tensors, before):
        assert torch.equal(tensor, value)
    assert average.steps() == 1
    average.update(source, 0.5)  # and it averages on from there: step 2 moves by 9 / 12
    assert_close(average.module.weight, torch.full((2,), 2.0 + 0.75 * (-3.0 - 2.0)))


@pytest.mark.parametrize("shape", [(28, 28), (2, 12, 10)])
def test_random_shift_translates_each_image_by_its_own_offset_within_max_shift(shape):
    # one bright pixel per image, away from the border: a shift moves it and keeps its mass
    n, max_shift = 200, 2.0
    x = torch.zeros(n, *shape)
    h, w = shape[-2:]
    x[..., h // 2, w // 2] = 1.0
    torch.manual_seed(0)
    out = random_shift(x, max_shift)
    assert out.shape == x.shape
    images = out.reshape(n, -1, h, w)
    assert_close(images.sum(dim=(2, 3)), torch.ones(n, images.shape[1]))
    rows = (images.sum(dim=3) * torch.arange(h)).sum(dim=2) - h // 2
    cols = (images.sum(dim=2) * torch.arange(w)).sum(dim=2) - w // 2
    for offset in (rows, cols):
        assert offset.abs().max() <= max_shift + 1e-5
        assert offset.abs().max() > 0.8 * max_shift  # the whole range is drawn, both ways
        assert (offset > 0).any() and (offset < 0).any()
        assert_close(offset[:, 0], offset[:, -1])  # the channels of an image move together
    assert len(torch.unique(rows[:, 0].round(decimals=4))) > n // 2  # one offset per image


def test_random_shift_of_zero_is_the_identity():
    x = torch.rand(3, 1, 8, 8)
    assert_close(random_shift(x, 0.0), x)
    assert_close(random_shift(x, 0.0, 0.0), x)


@pytest.mark.parametrize("shape", [(28, 28), (12, 10)])
def test_random_shift_with_max_rotation_turns_each_image_about_its_centre(shape):
    # one bright pixel 4 pixels right of the centre: a turn keeps its distance to the centre
    # (in pixels, a non-square image too: no shear) and moves it by the angle drawn
    n, max_rotation = 300, 30.0
    h, w = shape
    x = torch.zeros(n, h, w)
    x[:, h // 2, w // 2 + 4] = 1.0
    torch.manual_seed(0)
    out = random_shift(x, 0.0, max_rotation)
    assert out.shape == x.shape
    mass = out.sum(dim=(1, 2))
    centre_y, centre_x = (h - 1) / 2, (w - 1) / 2
    dy = (out.sum(dim=2) * torch.arange(h)).sum(dim=1) / mass - centre_y
    dx = (out.sum(dim=1) * torch.arange(w)).sum(dim=1) / mass - centre_x
    start_y, start_x = h // 2 - centre_y, w // 2 + 4 - centre_x
    radius = (start_y ** 2 + start_x ** 2) ** 0.5
    assert_close(torch.hypot(dx, dy), torch.full((n,), radius), atol=0.15, rtol=0)
    turn = torch.rad2deg(torch.atan2(dy, dx) - torch.atan2(torch.tensor(start_y),
                                                           torch.tensor(start_x)))
    assert turn.abs().max() <= max_rotation + 1.0
    assert turn.abs().max() > 0.8 * max_rotation  # the whole range is drawn, both ways
    assert (turn > 5).any() and (turn < -5).any()
    # max_rotation=0 draws no angle: the shifts alone reproduce the former offsets
    torch.manual_seed(1)
    shifted = random_shift(x, 2.0)
    torch.manual_seed(1)
    assert_close(random_shift(x, 2.0, 0.0), shifted)


def _centroids(images, rows, cols):
    """Centres of mass (row, column) of each image's pixels within ``rows`` x ``cols``."""
    part = images[:, rows, cols]
    mass = part.sum(dim=(1, 2))
    r = (part.sum(dim=2) * torch.arange(rows.start, rows.stop)).sum(dim=1) / mass
    c = (part.sum(dim=1) * torch.arange(cols.start, cols.stop)).sum(dim=1) / mass
    return torch.stack([r, c], dim=1)


@pytest.mark.parametrize("shape", [(28, 28), (20, 24)])
def test_random_shift_with_max_warp_bends_each_image_its_own_way(shape):
    # two bright pixels in opposite corners: a shift moves both alike, the warp each its own way
    n, max_warp = 300, 2.0
    h, w = shape
    x = torch.zeros(n, 1, h, w)
    x[:, :, 5, 5] = x[:, :, h - 6, w - 6] = 1.0
    top, bottom = (slice(0, h // 2), slice(0, w // 2)), (slice(h // 2, h), slice(w // 2, w))
    start = torch.tensor([[5.0, 5.0], [h - 6.0, w - 6.0]])

    def moves(out):  # (n, 2 pixels, 2 axes): how far each bright pixel moved
        return torch.stack([_centroids(out[:, 0], *top), _centroids(out[:, 0], *bottom)],
                           dim=1) - start

    torch.manual_seed(0)
    warped = random_shift(x, 0.0, 0.0, max_warp)
    assert warped.shape == x.shape
    move = moves(warped)
    # within the largest move of a grid point (bicubic interpolation overshoots a little)
    assert move.abs().max() <= 1.3 * max_warp
    assert move.abs().max() > 0.7 * max_warp and (move > 0.5).any() and (move < -0.5).any()
    apart = (move[:, 0] - move[:, 1]).abs().amax(dim=1)
    assert (apart > 0.5).float().mean() > 0.5  # the two pixels move apart in most images
    assert torch.corrcoef(move[:, :, 0].T)[0, 1].abs() < 0.3  # far apart: unrelated moves
    # a shift alone moves the two pixels alike
    torch.manual_seed(0)
    shifted = moves(random_shift(x, 2.0))
    assert_close(shifted[:, 0], shifted[:, 1], atol=0.05, rtol=0)
    # max_warp=0 draws no offsets: the shifts and turns alone reproduce the former draws
    torch.manual_seed(1)
    moved = random_shift(x, 2.0, 10.0)
    torch.manual_seed(1)
    assert_close(random_shift(x, 2.0, 10.0, 0.0), moved)
