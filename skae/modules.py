"""Pure ``torch.nn`` building blocks: MLP and convolutional encoders/decoders.

Nothing here knows about scikit-learn. Shapes: an encoder maps ``(n, *input_shape)`` to
``(n, n_outputs)``; a decoder maps ``(n, n_inputs)`` back to ``(n, *output_shape)``.
``input_shape`` is ``(d,)`` for tabular data and ``(H, W)`` or ``(C, H, W)`` for images.
"""

import copy
import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ACTIVATIONS",
    "GaussianNoise",
    "MLP",
    "MLPEncoder",
    "MLPDecoder",
    "TiedMLPDecoder",
    "WeightNormLinear",
    "BatchNorm1d",
    "ParameterAverage",
    "ConvEncoder",
    "ConvDecoder",
    "build_encoder",
    "build_decoder",
    "random_shift",
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "softplus": nn.Softplus,
}


class GaussianNoise(nn.Module):
    """Adds ``N(0, std^2)`` noise in training mode; the identity in eval mode."""

    def __init__(self, std):
        super().__init__()
        self.std = float(std)

    def forward(self, x):
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x

    def extra_repr(self):
        return f"std={self.std}"


class BatchNorm1d(nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` that normalizes a minibatch of one row by its running
    statistics (as in eval mode) instead of failing: a fit's last minibatch may hold one row."""

    def forward(self, x):
        if self.training and len(x) == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


def _hidden_block(activation, n_features, *, hidden_noise=0.0, batch_norm=False, conv=False):
    """What follows a hidden layer: ``[batch norm,] activation[, Gaussian noise]``."""
    layers = []
    if batch_norm:
        layers.append(nn.BatchNorm2d(n_features) if conv else BatchNorm1d(n_features))
    layers.append(ACTIVATIONS[activation]())
    if hidden_noise:
        layers.append(GaussianNoise(hidden_noise))
    return layers


class MLP(nn.Sequential):
    """``Linear -> activation`` for each hidden size, then a final ``Linear`` (no activation).

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, hidden_1, ..., n_out)``.
    activation : str
        Key of :data:`ACTIVATIONS`.
    input_noise, hidden_noise : float
        Standard deviation of Gaussian noise added (in training only) to the input and to
        every hidden activation (the Improved-GAN discriminator's regularizer).
    weight_norm : bool
        Weight-normalize every linear layer (Salimans & Kingma, 2016).
    batch_norm : bool
        Batch-normalize every hidden layer, before its activation (Ioffe & Szegedy, 2015).
    """

    def __init__(self, sizes, activation="relu", *, input_noise=0.0, hidden_noise=0.0,
                 weight_norm=False, batch_norm=False):
        layers = []
        if input_noise:
            layers.append(GaussianNoise(input_noise))
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(n_in, n_out)
            if weight_norm:
                linear = WeightNormLinear(n_in, n_out)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers += _hidden_block(activation, n_out, hidden_noise=hidden_noise,
                                        batch_norm=batch_norm)
        super().__init__(*layers)


class MLPEncoder(nn.Module):
    """Flattens the input and applies an :class:`MLP` (``hidden_noise``, ``batch_norm``: its
    options)."""

    def __init__(self, input_shape, hidden_layer_sizes, n_outputs, activation="relu", *,
                 hidden_noise=0.0, batch_norm=False):
        super().__init__()
        n_in = math.prod(input_shape)
        self.mlp = MLP([n_in, *hidden_layer_sizes, n_outputs], activation,
                       hidden_noise=hidden_noise, batch_norm=batch_norm)

    def forward(self, x):
        return self.mlp(x.flatten(1))

    def linears(self):
        return [m for m in self.mlp if isinstance(m, nn.Linear)]


class MLPDecoder(nn.Module):
    """An :class:`MLP` whose output is reshaped to ``output_shape``."""

    def __init__(self, n_inputs, hidden_layer_sizes, output_shape, activation="relu"):
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.mlp = MLP([n_inputs, *hidden_layer_sizes, math.prod(output_shape)], activation)

    def forward(self, z):
        return self.mlp(z).reshape(-1, *self.output_shape)


class TiedMLPDecoder(nn.Module):
    """Decoder sharing the encoder's weights, transposed, in reverse order (own biases)."""

    def __init__(self, encoder, output_shape, activation="relu"):
        super().__init__()
        self.output_shape = tuple(output_shape)
        # A plain list: the weights belong to (and are optimized through) the encoder.
        self._encoder = [encoder]
        self.activation = ACTIVATIONS[activation]()
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(lin.in_features)) for lin in reversed(encoder.linears())]
        )

    def forward(self, z):
        linears = list(reversed(self._encoder[0].linears()))
        h = z
        for i, (lin, bias) in enumerate(zip(linears, self.biases)):
            h = F.linear(h, lin.weight.t(), bias)
            if i < len(linears) - 1:
                h = self.activation(h)
        return h.reshape(-1, *self.output_shape)


def _image_dims(input_shape):
    if len(input_shape) == 2:
        return 1, *input_shape
    if len(input_shape) == 3:
        return tuple(input_shape)
    raise ValueError(
        "the convolutional backbone needs images of shape (n, H, W) or (n, C, H, W); "
        f"got samples of shape {tuple(input_shape)}"
    )


def _padded(size, n_layers):
    step = 2**n_layers
    return -(-size // step) * step


class ConvEncoder(nn.Module):
    """``Conv2d(k=4, s=2, p=1) -> activation`` per entry of ``channels``, then a ``Linear``
    (``hidden_noise``, ``batch_norm``: as in :class:`MLP`, after each convolution).

    Inputs whose height or width is not a multiple of ``2 ** len(channels)`` are zero-padded.
    """

    def __init__(self, input_shape, channels, n_outputs, activation="relu", *,
                 hidden_noise=0.0, batch_norm=False):
        super().__init__()
        c, h, w = _image_dims(input_shape)
        self.input_shape = tuple(input_shape)
        n = len(channels)
        self.pad = (0, _padded(w, n) - w, 0, _padded(h, n) - h)
        layers = []
        for c_out in channels:
            layers += [nn.Conv2d(c, c_out, 4, 2, 1),
                       *_hidden_block(activation, c_out, hidden_noise=hidden_noise,
                                      batch_norm=batch_norm, conv=True)]
            c = c_out
        self.conv = nn.Sequential(*layers)
        self.flat_shape = (c, _padded(h, n) // 2**n, _padded(w, n) // 2**n)
        self.linear = nn.Linear(math.prod(self.flat_shape), n_outputs)

    def forward(self, x):
        if len(self.input_shape) == 2:
            x = x.unsqueeze(1)
        x = F.pad(x, self.pad)
        return self.linear(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: ``Linear``, then ``ConvTranspose2d`` layers, cropped."""

    def __init__(self, n_inputs, channels, output_shape, activation="relu"):
        super().__init__()
        c_img, h, w = _image_dims(output_shape)
        self.output_shape = tuple(output_shape)
        self.hw = (h, w)
        n = len(channels)
        channels = list(channels)
        self.flat_shape = (channels[-1], _padded(h, n) // 2**n, _padded(w, n) // 2**n)
        self.linear = nn.Sequential(
            nn.Linear(n_inputs, math.prod(self.flat_shape)), ACTIVATIONS[activation]()
        )
        layers = []
        outs = channels[-2::-1] + [c_img]
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], outs)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
            if i < n - 1:
                layers.append(ACTIVATIONS[activation]())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        x = self.deconv(self.linear(z).reshape(-1, *self.flat_shape))
        x = x[..., : self.hw[0], : self.hw[1]]
        return x.reshape(-1, *self.output_shape)


def build_encoder(backbone, input_shape, hidden_layer_sizes, n_outputs, activation, *,
                  hidden_noise=0.0, batch_norm=False):
    """The encoder of ``backbone`` (``"mlp"`` or ``"conv"``); ``hidden_noise`` and
    ``batch_norm`` follow each hidden layer (see :class:`MLP`)."""
    options = {"hidden_noise": hidden_noise, "batch_norm": batch_norm}
    if backbone == "conv":
        return ConvEncoder(input_shape, hidden_layer_sizes, n_outputs, activation, **options)
    return MLPEncoder(input_shape, hidden_layer_sizes, n_outputs, activation, **options)


def build_decoder(backbone, n_inputs, hidden_layer_sizes, output_shape, activation,
                  tied_to=None):
    """The decoder mirroring ``build_encoder``'s (``tied_to``: an MLP encoder to share)."""
    if backbone == "conv":
        return ConvDecoder(n_inputs, hidden_layer_sizes, output_shape, activation)
    if tied_to is not None:
        return TiedMLPDecoder(tied_to, output_shape, activation)
    return MLPDecoder(n_inputs, tuple(hidden_layer_sizes)[::-1], output_shape, activation)


#: the elastic warp of :func:`random_shift` moves the points of a ``WARP_GRID x WARP_GRID``
#: grid spread over the image (its corners on the corner pixels) and interpolates between them
WARP_GRID = 4


def random_shift(x, max_shift, max_rotation=0.0, max_warp=0.0):
    """Each image of ``x`` translated (and rotated, and warped) by its own random draw,
    bilinearly, zeros filling in.

    The offsets along the height and the width are uniform in ``[-max_shift, max_shift]``
    pixels (fractions of a pixel too); with ``max_rotation > 0`` each image also turns about
    its centre by an angle uniform in ``[-max_rotation, max_rotation]`` degrees (0 draws no
    angle, so that the shifts alone draw the same offsets as before). With ``max_warp > 0``
    each image is also warped elastically (after Simard et al., 2003): each point of a
    :data:`WARP_GRID` x :data:`WARP_GRID` grid over the image moves by its own offsets,
    uniform in ``[-max_warp, max_warp]`` pixels along each axis, and the pixels between move
    as bicubic interpolation of those offsets says, so strokes bend and thicken locally where
    a shift or a turn moves the whole image (0 draws no offsets). ``x`` is ``(n, H, W)`` or
    ``(n, C, H, W)``; the result has its shape.
    """
    images = x if x.dim() == 4 else x.unsqueeze(1)
    n, _, h, w = images.shape
    offset = (2 * torch.rand(n, 2, 1, dtype=x.dtype, device=x.device) - 1) * max_shift
    # affine_grid's coordinates run over [-1, 1]: one pixel is 2 / size (scalars, not a tensor
    # copied from the host, so that a CUDA graph can record the step)
    offset = torch.cat([offset[:, :1] * (2.0 / w), offset[:, 1:] * (2.0 / h)], dim=1)
    if max_rotation:
        angle = (2 * torch.rand(n, dtype=x.dtype, device=x.device) - 1) * (
            max_rotation * math.pi / 180.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # in pixels, so that a rectangular image turns without shearing: x' = cos x - sin y
        # (w/h and h/w rescale between the normalized axes)
        linear = torch.stack([torch.stack([cos, -sin * (h / w)], dim=1),
                              torch.stack([sin * (w / h), cos], dim=1)], dim=1)
    else:
        linear = torch.eye(2, dtype=x.dtype, device=x.device).expand(n, 2, 2)
    theta = torch.cat([linear, offset], dim=2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    if max_warp:
        points = (2 * torch.rand(n, 2, WARP_GRID, WARP_GRID, dtype=x.dtype, device=x.device)
                  - 1) * max_warp
        field = F.interpolate(points, size=(h, w), mode="bicubic", align_corners=True)
        # (x, y) offsets in pixels to the grid's normalized coordinates, as the shifts above
        grid = grid + torch.stack([field[:, 0] * (2.0 / w), field[:, 1] * (2.0 / h)], dim=-1)
    shifted = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    return shifted.view_as(x)


class _WeightNormLinearFn(torch.autograd.Function):
    """``y = (x v^T) * g / ||v|| + b`` with a hand-written backward pass.

    Autograd through the row norms would pass over the whole weight matrix three more times
    (divide, multiply, add); here the norm's gradient joins the matrix product's in one fused
    ``addcmul_``. ``g`` has shape ``(out, 1)``, ``b`` is ``(out,)`` or None.
    """

    @staticmethod
    def forward(ctx, x, v, g, b):
        norm = torch.linalg.vector_norm(v, dim=1).clamp_min(1e-12)
        scale = g.squeeze(1) / norm
        out = F.linear(x, v)
        ctx.save_for_backward(x, v, g, norm, out)
        return out * scale if b is None else torch.addcmul(b, out, scale)

    @staticmethod
    def backward(ctx, grad):
        x, v, g, norm, out = ctx.saved_tensors
        g = g.squeeze(1)
        grad_out = grad * (g / norm)
        grad_x = grad_v = grad_g = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.matmul(v)
        # as 2-D (rows, features): x and y may have leading dimensions
        grad_2d, x_2d = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # d loss / d scale, per output unit; scale = g / ||v||
            grad_scale = (grad_2d * out.reshape(-1, out.shape[-1])).sum(0)
            if ctx.needs_input_grad[2]:
                grad_g = (grad_scale / norm).unsqueeze(1)
            if ctx.needs_input_grad[1]:
                grad_v = grad_out.reshape(-1, grad.shape[-1]).t().matmul(x_2d)
                # d ||v_i|| / d v_i = v_i / ||v_i||, d scale_i / d ||v_i|| = -g_i / ||v_i||^2
                grad_v.addcmul_(v, (-grad_scale * g / norm.pow(3)).unsqueeze(1))
        if ctx.needs_input_grad[3]:
            grad_b = grad_2d.sum(0)
        return grad_x, grad_v, grad_g, grad_b


class WeightNormLinear(nn.Module):
    """Weight-normalized linear layer, ``y = x (g * v / ||v||)^T + b`` (Salimans & Kingma, 2016).

    ``g`` (one scale per output unit) starts at the norm of ``v``'s rows, so the initial
    layer equals a default ``nn.Linear``. Unlike ``torch.nn.utils.parametrizations
    .weight_norm``, whose modules refuse to pickle, it pickles, as estimators must.

    The forward pass scales the outputs, ``y = (x v^T) * g / ||v|| + b``, as the paper
    suggests, rather than building the normalized weight matrix: the element-wise work is then
    per output row instead of per weight (30 MNIST epochs of the Improved-GAN model on one CPU
    thread took 1164 s instead of 1994 s, see the benchmarks), and fewer kernels run on a GPU.
    """

    def __init__(self, in_features, out_features, bias=True, *, train_scale=True):
        super().__init__()
        linear = nn.Linear(in_features, out_features, bias=bias)
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(linear.weight.detach())
        self.weight_g = nn.Parameter(linear.weight.detach().norm(dim=1, keepdim=True),
                                     requires_grad=train_scale)
        self.bias = linear.bias

    @torch.no_grad()
    def init_from_data(self, x):
        """Data-dependent initialization (Salimans & Kingma, 2016, section 2.2).

        Sets ``g`` and ``b`` so that the outputs on the batch ``x`` have zero mean and unit
        variance per unit, and returns those outputs (the next layer's init batch).
        """
        out = self(x).reshape(-1, self.out_features)
        mean, std = out.mean(0), out.std(0, unbiased=False).clamp_min(1e-6)
        self.weight_g.div_(std.unsqueeze(1))
        if self.bias is not None:
            self.bias.sub_(mean).div_(std)
        return self(x)

    @property
    def weight(self):
        """The effective weight matrix ``g * v / ||v||``."""
        return self.weight_g * F.normalize(self.weight_v, dim=1)

    def forward(self, x):
        return _WeightNormLinearFn.apply(x, self.weight_v, self.weight_g, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class ParameterAverage(nn.Module):
    """A copy of ``module`` whose parameters are a running average of the original's.

    :meth:`update`, after each training step, moves the copy towards the current parameters
    by ``w_t = max(1 - decay, 9 / (10 + t))`` at step ``t`` (Polyak averaging, as the
    Improved-GAN authors' code uses for testing, with the warm-up of common EMA
    implementations): early on the average spans about the last tenth of the steps, so a
    short run is not dragged back to its first weights; later, about the last
    ``1 / (1 - decay)`` steps. Floating-point buffers (batch-norm statistics) are averaged
    with the same weights, so that they match the averaged weights; the others are copied.
    Call the copy (``average.module``) to predict with the averaged weights.
    """

    def __init__(self, module):
        super().__init__()
        self.module = copy.deepcopy(module).requires_grad_(False)
        self.register_buffer("n_averaged", torch.zeros((), dtype=torch.long))
        self._steps = None  # host copy of n_averaged: no device read per step

    def steps(self):
        """Number of updates so far (0: the copy does not hold an average yet)."""
        if self._steps is None:
            self._steps = int(self.n_averaged)
        return self._steps

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._steps = None

    def _tensors(self):
        return [*self.module.parameters(), *self.module.buffers(), self.n_averaged]

    @torch.no_grad()
    def state(self):
        """A copy of the average as it is now (weights, buffers, step count), for
        :meth:`restore`."""
        return [t.detach().clone() for t in self._tensors()]

    @torch.no_grad()
    def restore(self, state):
        """Go back to ``state`` (from :meth:`state`), undoing the updates since, in place (a
        recorded CUDA graph that updates the average goes on updating the same tensors)."""
        for tensor, saved in zip(self._tensors(), state, strict=True):
            tensor.copy_(saved)
        self._steps = None

    @torch.no_grad()
    def update(self, source, decay):
        """Average in the current parameters of ``source``.

        ``source`` is a module shaped like ``module``, or a sequence of modules whose
        parameters, one after the other, are those of ``module`` (e.g. the children of the
        :class:`~torch.nn.ModuleDict` it was copied from), so no container is built per step.

        The step count and the weight stay on the device (no read back per step, and the same
        work on every call, so that a recorded CUDA graph of the step replays it correctly).
        """
        self.n_averaged.add_(1)
        t = self.n_averaged.to(torch.float64)
        weight = torch.where(t == 1, 1.0, torch.clamp(9.0 / (10.0 + t), min=1.0 - decay))
        sources = tuple(source) if isinstance(source, (list, tuple)) else (source,)
        weights = {}
        theirs_all = itertools.chain.from_iterable(s.parameters() for s in sources)
        for mine, theirs in zip(self.module.parameters(), theirs_all, strict=True):
            if mine.dtype not in weights:
                weights[mine.dtype] = weight.to(mine.dtype)
            mine.lerp_(theirs, weights[mine.dtype])
        theirs_all = itertools.chain.from_iterable(s.buffers() for s in sources)
        for buffer, theirs in zip(self.module.buffers(), theirs_all, strict=True):
            if buffer.is_floating_point():
                buffer.lerp_(theirs, weight.to(buffer.dtype))
            else:
                buffer.copy_(theirs)
        self._steps = None  # the host copy is read again when asked for
