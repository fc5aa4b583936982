"""The straightforward reference layout the benchmarks compare the fast paths against.

This is a plain implementation of the authors' computation, written for this project and
kept only as a yardstick (it is checked against the golden vectors of the authors' code in
``tests/test_benchmark_reference.py``):

* :class:`ConvBlockSampling` — block CS done with convolutions, as in the MADUN release:
  ``Φx`` is a stride-``B`` convolution with the ``M`` filters ``Φ[m].reshape(B, B)``,
  ``Φ^T y`` the matching stride-``B`` transposed convolution (no Gram matrix);
* :class:`ReferenceMADUN` — the authors' module layout and parameter names
  (``fcs.{k}.lambda_step``, ``conv_D``, ``conv_G``, ``RB{1,2}.conv{1,2}``, and **eight
  separate** ConvLSTM gate convolutions ``ConvLSTM.conv_{x,h}{f,i,o,j}``), fp32,
  contiguous NCHW; it loads an authors' state dict strictly;
* :class:`ReferenceISTA` — ISTA-Net / ISTA-Net+ / FISTA-Net phase by phase with raw
  ``F.conv2d`` calls (authors' names ``fcs.{k}.conv_D``, ``conv1_forward``, ...).

Networks follow the project's model contract ``net(y, op) -> x`` (``(N, 1, H, W)``) so the
benchmark can run them with any operator; complex images reach the CNN through
:func:`mri_unfold.models.common.to_cnn` / ``from_cnn`` as in the package.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mri_unfold.models.common import from_blocks, from_cnn, to_blocks, to_cnn
from mri_unfold.models.madun_blocks import GATE_ORDER
from mri_unfold.operators.base import LinearOperator

__all__ = ["ConvBlockSampling", "ReferenceMADUN", "ReferenceISTA", "reference_for"]


# ---------------------------------------------------------------------- operator
class ConvBlockSampling(LinearOperator):
    """Block CS by convolution: ``(N, 1, H, W)`` -> ``(N, M, H/B, W/B)`` and back.

    Args:
        phi: ``(M, B²)`` float32 sampling matrix (row-major blocks).
        qinit: optional ``(B², M)`` linear initialiser.
    """

    complex_domain = False

    def __init__(self, phi: torch.Tensor, qinit: torch.Tensor | None = None):
        super().__init__()
        m, n = phi.shape
        b = int(round(n ** 0.5))
        self.block_size = b
        self.register_buffer("phi_weight", phi.detach().float().reshape(m, 1, b, b).clone())
        self.register_buffer("qinit_weight", None if qinit is None else
                             qinit.detach().float().T.reshape(m, 1, b, b).clone())

    @classmethod
    def like(cls, op) -> "ConvBlockSampling":
        """The conv form of a :class:`~mri_unfold.operators.GaussianBlockCS`."""
        return cls(op.phi, getattr(op, "qinit", None)).to(op.phi.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.phi_weight, stride=self.block_size)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(y, self.phi_weight, stride=self.block_size)

    def linear_init(self, y: torch.Tensor) -> torch.Tensor:
        if self.qinit_weight is None:
            return super().linear_init(y)
        return F.conv_transpose2d(y, self.qinit_weight, stride=self.block_size)


# ---------------------------------------------------------------------- MADUN
def _conv3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.conv2 = _conv3(c, c), _conv3(c, c)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class _ConvLSTM(nn.Module):
    """Eight separate gate convolutions ``conv_x{f,i,o,j}``, ``conv_h{f,i,o,j}``."""

    def __init__(self, c: int):
        super().__init__()
        for src in ("x", "h"):
            for g in GATE_ORDER:
                self.add_module(f"conv_{src}{g}", _conv3(c, c))

    def forward(self, s, state):
        if state is None:  # release: first stage uses the input gates only
            c = torch.sigmoid(self.conv_xi(s)) * torch.tanh(self.conv_xj(s))
            h = torch.sigmoid(self.conv_xo(s)) * c
            return h, (h, c)
        h_prev, c_prev = state
        f = torch.sigmoid(self.conv_xf(s) + self.conv_hf(h_prev))
        i = torch.sigmoid(self.conv_xi(s) + self.conv_hi(h_prev))
        o = torch.sigmoid(self.conv_xo(s) + self.conv_ho(h_prev))
        j = torch.tanh(self.conv_xj(s) + self.conv_hj(h_prev))
        c = f * c_prev + i * j
        h = o * torch.tanh(c)
        return h, (h, c)


class _MADUNStage(nn.Module):
    def __init__(self, c: int, ic: int):
        super().__init__()
        self.lambda_step = nn.Parameter(torch.tensor([0.5]))
        self.conv_D = nn.Parameter(torch.zeros(c, c + ic, 3, 3))
        self.conv_G = nn.Parameter(torch.zeros(ic, c, 3, 3))
        self.RB1, self.RB2 = _ResBlock(c), _ResBlock(c)
        self.ConvLSTM = _ConvLSTM(c)

    def forward(self, x, pty, z, state, op):
        r = x - self.lambda_step * op.normal(x) + self.lambda_step * pty
        f = F.conv2d(torch.cat([to_cnn(r), z], dim=1), self.conv_D, padding=1)
        h, state = self.ConvLSTM(self.RB1(f), state)
        z = self.RB2(h)
        return r + from_cnn(F.conv2d(z, self.conv_G, padding=1), r.is_complex()), z, state


class ReferenceMADUN(nn.Module):
    """MADUN (HSM + ConvLSTM) in the authors' layout; ``net(y, op) -> x`` ``(N, 1, H, W)``.

    Args:
        num_stages, channels, image_channels: K, C and I (1 real, 2 complex).
    """

    def __init__(self, num_stages: int, channels: int, image_channels: int = 1):
        super().__init__()
        self.fcs = nn.ModuleList(_MADUNStage(channels, image_channels)
                                 for _ in range(num_stages))
        self.fe = _conv3(image_channels, channels)

    @classmethod
    def from_authors_state_dict(cls, sd) -> "ReferenceMADUN":
        """Build and strictly load an authors' state dict (``module.`` prefixes allowed)."""
        sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
        k = 1 + max(int(key.split(".")[1]) for key in sd if key.startswith("fcs."))
        c, ic = sd["fe.weight"].shape[:2]
        net = cls(k, int(c), int(ic))
        net.load_state_dict(sd)
        return net

    @classmethod
    def from_model(cls, model) -> "ReferenceMADUN":
        """The same weights as a package ``MADUN`` (fused gates split in f, i, o, j order;
        the first stage's unused ``conv_h*`` are zero)."""
        c, ic = model.channels, model.image_channels
        net = cls(model.num_stages, c, ic)
        sd = {"fe.weight": model.fe.weight, "fe.bias": model.fe.bias}
        for k, st in enumerate(model.stages):
            a = f"fcs.{k}."
            sd[a + "lambda_step"], sd[a + "conv_D"] = st.rho, st.conv_D.weight
            sd[a + "conv_G"] = st.conv_G.weight
            for rb in ("1", "2"):
                for cv in ("1", "2"):
                    conv = getattr(getattr(st, f"rb{rb}"), f"conv{cv}")
                    sd[f"{a}RB{rb}.conv{cv}.weight"] = conv.weight
                    sd[f"{a}RB{rb}.conv{cv}.bias"] = conv.bias
            for src in ("x", "h"):
                conv = getattr(st.memory, f"conv_{src}")
                for g, name in enumerate(GATE_ORDER):
                    for p in ("weight", "bias"):
                        key = f"{a}ConvLSTM.conv_{src}{name}.{p}"
                        if conv is None:
                            sd[key] = torch.zeros_like(net.state_dict()[key])
                        else:
                            sd[key] = getattr(conv, p)[g * c:(g + 1) * c]
        net.load_state_dict({k: v.detach().clone() for k, v in sd.items()})
        return net.to(model.fe.weight.device)

    def forward(self, y, op):
        pty = op.adjoint(y)
        x, z, state = pty, self.fe(to_cnn(pty)), None
        for stage in self.fcs:
            x, z, state = stage(x, pty, z, state, op)
        return x


# ---------------------------------------------------------------------- ISTA family
class _IstaPhase(nn.Module):
    def __init__(self, c: int, ic: int, plus: bool, momentum: bool):
        super().__init__()
        self.lambda_step = nn.Parameter(torch.tensor([0.5]))
        self.soft_thr = nn.Parameter(torch.tensor([0.01]))
        cin = c if plus else ic
        if plus:
            self.conv_D = nn.Parameter(torch.zeros(c, ic, 3, 3))
        self.conv1_forward = nn.Parameter(torch.zeros(c, cin, 3, 3))
        self.conv2_forward = nn.Parameter(torch.zeros(c, c, 3, 3))
        self.conv1_backward = nn.Parameter(torch.zeros(c, c, 3, 3))
        self.conv2_backward = nn.Parameter(torch.zeros(cin, c, 3, 3))
        if plus:
            self.conv_G = nn.Parameter(torch.zeros(ic, c, 3, 3))
        if momentum:
            self.momentum = nn.Parameter(torch.zeros(1))
        self.plus = plus

    def prox(self, t):
        d = F.conv2d(t, self.conv_D, padding=1) if self.plus else t
        f = F.conv2d(F.relu(F.conv2d(d, self.conv1_forward, padding=1)), self.conv2_forward,
                     padding=1)
        s = torch.mul(torch.sign(f), F.relu(torch.abs(f) - self.soft_thr))  # the authors' form
        g = F.conv2d(F.relu(F.conv2d(s, self.conv1_backward, padding=1)), self.conv2_backward,
                     padding=1)
        return t + F.conv2d(g, self.conv_G, padding=1) if self.plus else g


_OURS_TO_AUTHORS = {"step": "lambda_step", "threshold": "soft_thr", "conv_d": "conv_D",
                    "conv_f1": "conv1_forward", "conv_f2": "conv2_forward",
                    "conv_g1": "conv1_backward", "conv_g2": "conv2_backward",
                    "conv_out": "conv_G", "momentum": "momentum"}


class ReferenceISTA(nn.Module):
    """ISTA-Net (``plus=False``), ISTA-Net+ (``plus=True``) or FISTA-Net (``fista=True``)
    phase by phase; ``net(y, op) -> x`` ``(N, 1, H, W)``.

    Args:
        blockwise: run the CNN on every ``op.block_size`` block as its own image.
        init: ``"linear"`` (``op.linear_init``) or ``"adjoint"``.
    """

    def __init__(self, num_phases: int, channels: int, image_channels: int = 1, *,
                 plus: bool = True, fista: bool = False, blockwise: bool = False,
                 init: str = "adjoint"):
        super().__init__()
        self.fcs = nn.ModuleList(_IstaPhase(channels, image_channels, plus, fista and k > 0)
                                 for k in range(num_phases))
        self.fista, self.blockwise, self.init = fista, blockwise, init

    @classmethod
    def from_model(cls, model) -> "ReferenceISTA":
        """The same weights and config as a package ISTA-Net / ISTA-Net+ / FISTA-Net."""
        cfg = model.config
        net = cls(model.num_phases, model.channels, model.image_channels,
                  plus=model.arch == "ista_net_plus", fista=model.arch == "fista_net",
                  blockwise=cfg["blockwise"], init=cfg["init"])
        sd = {}
        for key, v in model.state_dict().items():
            _, k, name = key.split(".")
            sd[f"fcs.{k}.{_OURS_TO_AUTHORS[name]}"] = v.detach().clone()
        net.load_state_dict(sd)
        return net.to(next(model.parameters()).device)

    def forward(self, y, op):
        pty = op.adjoint(y)
        x = op.linear_init(y) if self.init == "linear" else pty
        x_prev = x
        for k, phase in enumerate(self.fcs):
            z = x + phase.momentum * (x - x_prev) if (self.fista and k > 0) else x
            r = z - phase.lambda_step * op.normal(z) + phase.lambda_step * pty
            t = to_cnn(r)
            n, _, h, w = t.shape
            if self.blockwise:
                t = to_blocks(t, op.block_size)
            t = phase.prox(t)
            if self.blockwise:
                t = from_blocks(t, n, h, w)
            x_prev, x = x, from_cnn(t, r.is_complex())
        return x


def reference_for(model, op):
    """``(reference network, reference operator)`` with the weights of a package model:
    block-CS operators become :class:`ConvBlockSampling`, other operators are used as they
    are (an FFT is an FFT)."""
    net = (ReferenceMADUN.from_model(model) if hasattr(model, "stages")
           else ReferenceISTA.from_model(model))
    ref_op = ConvBlockSampling.like(op) if hasattr(op, "phi") else op
    return net.eval() if not model.training else net, ref_op
