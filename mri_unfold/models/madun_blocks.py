"""Building blocks of MADUN's proximal mapping module (see :mod:`mri_unfold.models.madun`).

All convolutions are 3x3, stride 1, zero padding 1, so every block maps real CNN tensors
``(N, C, H, W)`` (float32/float64) to the same spatial size.  Parameters are initialised
from an explicit :class:`torch.Generator`; constructing a block never touches the global
RNG state.

Cross-stage memories (the CLM slot between RB1 and RB2) share one interface::

    h, state = memory(s, state)     # s, h: (N, C, H, W); state: None at the first stage

* :class:`ConvLSTMCell` — the paper's CLM (Eq. 12-13) in the authors' release form;
* :class:`PlusMemory` — Fig. 4(a) "Plus": ``h = s + h_prev``;
* :class:`ConcatMemory` — Fig. 4(b) "Concat": ``h = Conv([s, h_prev])``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Gate order of the fused ConvLSTM convolutions (output-channel blocks of size C).
GATE_ORDER = ("f", "i", "o", "j")

MEMORY_KINDS = ("none", "convlstm", "plus", "concat")


def zero_conv(cin: int, cout: int, *, bias: bool = True) -> nn.Conv2d:
    """A 3x3 ``nn.Conv2d(cin, cout, padding=1)`` with all-zero float32 parameters
    (weight ``(cout, cin, 3, 3)``, bias ``(cout,)``) on the default device (the CPU, or the
    meta device inside ``with torch.device("meta")`` — a size check without allocating),
    for :func:`init_conv_` to fill."""
    # built on the meta device so the constructor's own init draws nothing from the global RNG
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias, device="meta").to_empty(
        device=torch.get_default_device())
    with torch.no_grad():
        for p in conv.parameters():
            p.zero_()
    return conv


def seeded_conv(cin: int, cout: int, generator: torch.Generator, *, bias: bool = True,
                init: str = "default") -> nn.Conv2d:
    """A 3x3 ``nn.Conv2d(cin, cout, padding=1)`` initialised from ``generator``
    (:func:`init_conv_`); a float32 CPU module (move it with ``.to``)."""
    return init_conv_(zero_conv(cin, cout, bias=bias), generator, init)


def init_conv_(conv: nn.Conv2d, generator: torch.Generator, init: str = "default") -> nn.Conv2d:
    """(Re)initialise ``conv`` in place from ``generator`` and return it.

    Args:
        init: ``"default"`` — PyTorch's Conv2d default (Kaiming-uniform with ``a=sqrt(5)``,
            bias uniform in ``±1/sqrt(fan_in)``); ``"xavier"`` — Xavier-normal weight
            (the authors' ``conv_D`` / ``conv_G``), bias (if any) zero.
    """
    bias = conv.bias is not None
    cin = conv.in_channels
    with torch.no_grad():
        if init == "xavier":
            nn.init.xavier_normal_(conv.weight, generator=generator)
            if bias:
                conv.bias.zero_()
        elif init == "default":
            nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
            if bias:
                bound = 1.0 / math.sqrt(cin * 9)
                conv.bias.uniform_(-bound, bound, generator=generator)
        else:
            raise ValueError(f"init must be 'default' or 'xavier', got {init!r}")
    return conv


class ResidualBlock(nn.Module):
    """``x + conv2(relu(conv1(x)))`` with ``C -> C`` 3x3 convolutions (with bias).

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, generator: torch.Generator):
        super().__init__()
        self.conv1 = seeded_conv(channels, channels, generator)
        self.conv2 = seeded_conv(channels, channels, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (CLM) with fused gate convolutions, as in the authors' release.

    ``conv_x``: ``C -> 4C`` on the input ``s``; ``conv_h``: ``C -> 4C`` on the previous hidden
    state ``h``.  Output channels ``[g*C:(g+1)*C]`` belong to gate ``GATE_ORDER[g]``
    (f, i, o, j), i.e. the authors' separate ``conv_x{f,i,o,j}`` / ``conv_h{f,i,o,j}``
    concatenated along the output channels in that order.  Both convolutions have biases.

    * Later stages (``state = (h, c)``): ``f, i, o = sigmoid(Wx s + Wh h)``,
      ``j = tanh(Wx s + Wh h)``, ``c' = f * c + i * j``, ``h' = o * tanh(c')``.
    * First stage (``state is None``, release behaviour): ``c' = i * j``, ``h' = o * c'`` with
      the gates from ``conv_x`` only — no forget gate, no ``tanh`` on ``c'``.  The first
      stage's cell therefore has no ``conv_h`` (``first=True``), and the ``f`` block of its
      ``conv_x`` is computed but unused (kept for the uniform fused layout).

    Shapes: ``s``, ``h``, ``c``: real ``(N, C, H, W)``; returns ``(h', (h', c'))``.
    """

    def __init__(self, channels: int, generator: torch.Generator, *, first: bool):
        super().__init__()
        self.channels = channels
        self.first = first
        self.conv_x = seeded_conv(channels, 4 * channels, generator)
        self.conv_h = None if first else seeded_conv(channels, 4 * channels, generator)

    def forward(self, s: torch.Tensor, state):
        if state is None:
            _, gi, go, gj = self.conv_x(s).chunk(4, dim=1)
            c = torch.sigmoid(gi) * torch.tanh(gj)
            h = torch.sigmoid(go) * c
            return h, (h, c)
        if self.conv_h is None:
            raise RuntimeError("the first-stage ConvLSTM cell has no conv_h and cannot take a "
                               "previous state")
        h_prev, c_prev = state
        # one convolution over [s, h] with the stacked weights: the same gates as
        # conv_x(s) + conv_h(h) without materialising and adding two 4C-channel tensors
        weight = torch.cat([self.conv_x.weight, self.conv_h.weight], dim=1)
        bias = self.conv_x.bias + self.conv_h.bias
        gf, gi, go, gj = F.conv2d(torch.cat([s, h_prev], dim=1), weight, bias,
                                  padding=1).chunk(4, dim=1)
        c = torch.sigmoid(gf) * c_prev + torch.sigmoid(gi) * torch.tanh(gj)
        h = torch.sigmoid(go) * torch.tanh(c)
        return h, (h, c)


class PlusMemory(nn.Module):
    """Fig. 4(a) "Plus": ``h = s + h_prev`` (``h_prev = 0`` at the first stage); no parameters.

    Shapes: ``(N, C, H, W)``; returns ``(h, h)`` (the state carried is ``h``).
    """

    def forward(self, s: torch.Tensor, state):
        h = s if state is None else s + state
        return h, h


class ConcatMemory(nn.Module):
    """Fig. 4(b) "Concat": ``h = Conv([s, h_prev])``, one 3x3 ``2C -> C`` conv with bias
    (``h_prev = 0`` at the first stage, as the paper initialises memories to zero).

    Shapes: ``(N, C, H, W)``; returns ``(h, h)``.
    """

    def __init__(self, channels: int, generator: torch.Generator):
        super().__init__()
        self.conv = seeded_conv(2 * channels, channels, generator)

    def forward(self, s: torch.Tensor, state):
        prev = torch.zeros_like(s) if state is None else state
        h = self.conv(torch.cat([s, prev], dim=1))
        return h, h


def make_memory(kind: str, channels: int, generator: torch.Generator, *, first: bool):
    """The cross-stage memory module of one stage, or ``None`` for ``kind == "none"``."""
    if kind == "convlstm":
        return ConvLSTMCell(channels, generator, first=first)
    if kind == "plus":
        return PlusMemory()
    if kind == "concat":
        return ConcatMemory(channels, generator)
    if kind == "none":
        return None
    raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {kind!r}")
