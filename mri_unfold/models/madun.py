"""MADUN — Memory-Augmented Deep Unfolding Network (Song, Chen, Zhang, ACM MM 2021) and
its ablations, generic over the measurement operator Φ.

Stage ``k`` (``k = 1..K``), written for an operator ``op`` (images real or complex
``(N, 1, H, W)``; the CNN sees ``to_cnn(.)``, ``I = 1`` or ``2`` channels)::

    r      = x - ρ Φ^HΦ x + ρ Φ^H y                     # GDM (Eq. 5); Φ^H y computed once
    f      = conv_D( to_cnn(r) [‖ z] )                    # Conv1 (PMM) or Conv3 (HSM, Eq. 11)
    s      = RB1(f)
    h, st  = memory(s, st)     (or h = s without CLM)    # ConvLSTM (CLM) / Plus / Concat
    o      = RB2(h)
    x      = r + from_cnn( conv_G(o) )                   # residual output (Eq. 7/11/14/15)
    z      = o (HSM, Eq. 10) | f (∗HSM) | s (◦HSM)       # memory for the next stage

with ``z(0) = fe(to_cnn(Φ^H y))`` (Conv0, Eq. 16) and the memory state empty at stage 1.
``conv_D`` (``I [+C] -> C``) and ``conv_G`` (``C -> I``) have no bias; all convolutions
are 3x3 on the whole image.  ρ is initialised to 0.5 (the authors' release; the paper
text says 1).  Registered variants (``build(name, ...)``):

===================  =====  ==========  ==========================================
name                 HSM    memory      paper
===================  =====  ==========  ==========================================
``madun``            yes    ConvLSTM    MAPMM, Eq. 15 (Table 1 (f))
``madun_pmm``        no     —           PMM, Eq. 7 (Table 1 (a))
``madun_hsm``        yes    —           PMM+HSM, Eq. 11 (Table 1 (e))
``madun_clm``        no     ConvLSTM    PMM+CLM, Eq. 14 (Table 1 (b); Table 2 "CLM")
``madun_plus``       no     Plus        Fig. 4(a), Table 2 "Plus"
``madun_concat``     no     Concat      Fig. 4(b), Table 2 "Concat"
``madun_hsm_conv3``  ∗HSM   —           z(k) = Conv3's output (Table 1 (c))
``madun_hsm_rb1``    ◦HSM   —           z(k) = RB1's output (Table 1 (d))
===================  =====  ==========  ==========================================
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .common import (INITS, check_image_channels, check_num_phases, check_operator_fits,
                     from_cnn, initial_estimate, to_cnn)
from .madun_blocks import (GATE_ORDER, MEMORY_KINDS, ResidualBlock, init_conv_, make_memory,
                           zero_conv)
from .registry import register_model

__all__ = ["MADUNFamily", "MADUN", "MADUNPMM", "MADUNHSM", "MADUNCLM", "MADUNPlus",
           "MADUNConcat", "MADUNHSMConv3", "MADUNHSMRB1", "HSM_TAPS",
           "convert_official_state_dict"]

#: Initial value of every stage's step ρ(k) in the authors' release.
RHO_INIT = 0.5

#: Where the HSM memory z(k) is taken inside a stage: RB2's output (the paper's HSM, Eq. 10),
#: Conv3's output (∗HSM, Table 1 (c)) or RB1's output (◦HSM, Table 1 (d)).
HSM_TAPS = ("rb2", "conv3", "rb1")


class MADUNStage(nn.Module):
    """One unfolded stage (GDM + (MA)PMM).

    Parameters (float32): ``rho`` ``(1,)``; ``conv_D`` ``(C, I[+C], 3, 3)``; ``rb1``,
    ``rb2``; ``memory`` (or none); ``conv_G`` ``(I, C, 3, 3)`` (``I`` = image channels).
    ``rb1``, ``memory`` and ``rb2`` are drawn from ``generator``; ``conv_D`` / ``conv_G``
    start at zero and get their Xavier-normal values from :meth:`init_head_`, which
    :class:`MADUNFamily` calls with its separate head stream.  ``tap`` (one of
    :data:`HSM_TAPS`) names the tensor handed to the next stage as its memory ``z``.
    """

    def __init__(self, channels: int, image_channels: int, hsm: bool, memory: str,
                 generator: torch.Generator, first: bool, tap: str = "rb2"):
        super().__init__()
        if tap not in HSM_TAPS:  # pragma: no cover - class definition error
            raise ValueError(f"tap must be one of {HSM_TAPS}, got {tap!r}")
        self.channels, self.hsm, self.tap = channels, hsm, tap
        self.rho = nn.Parameter(torch.tensor([RHO_INIT]))
        cin = image_channels + (channels if hsm else 0)
        self.conv_D = zero_conv(cin, channels, bias=False)
        self.rb1 = ResidualBlock(channels, generator)
        self.memory = make_memory(memory, channels, generator, first=first)
        self.rb2 = ResidualBlock(channels, generator)
        self.conv_G = zero_conv(channels, image_channels, bias=False)

    def init_head_(self, generator: torch.Generator) -> None:
        """Draw ``conv_D`` then ``conv_G`` (Xavier-normal, as the authors) from ``generator``."""
        init_conv_(self.conv_D, generator, "xavier")
        init_conv_(self.conv_G, generator, "xavier")

    def forward(self, x, pty, z, state, op):
        """``x``, ``pty``: images ``(N, 1, H, W)`` in ``op``'s domain; ``z``: ``(N, C, H, W)``
        or ``None``.  Returns ``(x_next, z_next, state_next)``."""
        r = x - self.rho * op.normal(x) + self.rho * pty
        t = to_cnn(r)
        f = self.conv_D(torch.cat([t, z], dim=1) if self.hsm else t)
        s = self.rb1(f)
        h, state = self.memory(s, state) if self.memory is not None else (s, state)
        o = self.rb2(h)
        z_next = o if self.tap == "rb2" else f if self.tap == "conv3" else s
        return r + from_cnn(self.conv_G(o), r.is_complex()), z_next, state


class MADUNFamily(nn.Module):
    """MADUN and its ablations; subclasses fix ``HSM`` (bool) and ``MEMORY`` (a kind in
    ``madun_blocks.MEMORY_KINDS``).

    Args:
        num_stages: K, the number of stages (25 in the paper).
        channels: C, feature maps (32 in the paper).
        image_channels: CNN channels of the image, 1 (real, default) or 2 (complex).  Every
            parameter is created in ``__init__``; an operator of the other kind raises
            ``ValueError``.
        init: ``"adjoint"`` — ``x(0) = Φ^H y`` (the paper); ``"linear"`` — ``op.linear_init(y)``.
            ``z(0) = fe(Φ^H y)`` in both cases (Eq. 16).
        seed: seed of the private generators initialising the weights (``None``: random).
            The global RNG is never used.  One generator draws the stages' ``rb1``, memory
            and ``rb2``, then the seed of a second "head" stream that draws the
            image-channel-dependent ``fe``, then each stage's ``conv_D`` and ``conv_G``
            (so the other weights do not depend on ``image_channels``).

    Attributes:
        grad_checkpoint (bool): recompute each stage in backward (``torch.utils.checkpoint``).

    Call: ``model(y, op)`` -> ``x`` (``op``'s image domain, ``(N, 1, H, W)``);
    ``model(y, op, return_aux=True)`` -> ``(x, {"sym": [], "phases": [x(1), ..., x(K)]})``.
    """

    HSM: bool = True
    MEMORY: str = "convlstm"
    HSM_TAP: str = "rb2"

    def __init__(self, num_stages: int = 25, channels: int = 32, image_channels: int = 1,
                 init: str = "adjoint", seed: int | None = None):
        super().__init__()
        _check_config(num_stages, channels, image_channels, init, seed)
        if self.MEMORY not in MEMORY_KINDS:  # pragma: no cover - class definition error
            raise ValueError(f"MEMORY must be one of {MEMORY_KINDS}, got {self.MEMORY!r}")
        self.config = dict(num_stages=num_stages, channels=channels,
                           image_channels=image_channels, init=init, seed=seed)
        self.num_stages, self.channels, self.init = int(num_stages), int(channels), init
        self.grad_checkpoint = False
        gen = torch.Generator()
        if seed is None:
            gen.seed()  # non-deterministic, private generator
        else:
            gen.manual_seed(int(seed))
        self.image_channels = image_channels
        # Conv0 (Eq. 16), HSM variants only
        self.register_module("fe", zero_conv(image_channels, self.channels) if self.HSM else None)
        self.stages = nn.ModuleList(
            MADUNStage(self.channels, image_channels, self.HSM, self.MEMORY, gen,
                       first=(k == 0), tap=self.HSM_TAP)
            for k in range(self.num_stages))
        # the image-channel-dependent convs use their own stream (seeded from the main one)
        head = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=gen,
                                                               device="cpu")))
        if self.fe is not None:
            init_conv_(self.fe, head)
        for stage in self.stages:
            stage.init_head_(head)

    @classmethod
    def image_channels_source(cls) -> tuple[str, int]:
        """``(state-dict key, axis)`` whose size is ``image_channels`` (the output channels of
        stage 0's ``conv_G``); used by :func:`~mri_unfold.models.resolve_config`."""
        return "stages.0.conv_G.weight", 0

    # ------------------------------------------------------------------ forward
    def forward(self, y: torch.Tensor, op, return_aux: bool = False):
        """Reconstruct from measurements ``y`` (``op``'s measurement domain).

        Returns ``x`` ``(N, 1, H, W)`` (real float for real-domain ``op``, complex otherwise),
        or ``(x, aux)`` with ``return_aux=True``.

        Raises:
            ValueError: ``op``'s image domain needs the other ``image_channels``.
        """
        check_operator_fits(self, op)
        pty = op.adjoint(y)
        x = pty if self.init == "adjoint" else initial_estimate(y, op, self.init)
        z = self.fe(to_cnn(pty)) if self.HSM else None
        state, phases = None, []
        use_ckpt = self.grad_checkpoint and torch.is_grad_enabled()
        for stage in self.stages:
            if use_ckpt:
                x, z, state = checkpoint(stage, x, pty, z, state, op, use_reentrant=False)
            else:
                x, z, state = stage(x, pty, z, state, op)
            phases.append(x)
        return (x, {"sym": [], "phases": phases}) if return_aux else x


def _check_config(num_stages, channels, image_channels, init, seed) -> None:
    def pos_int(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    check_num_phases(num_stages, "num_stages")
    if not pos_int(channels):
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    check_image_channels(image_channels)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")


def _variant(name: str, cls_name: str, hsm: bool, memory: str, doc: str, tap: str = "rb2"):
    cls = type(cls_name, (MADUNFamily,), {"HSM": hsm, "MEMORY": memory, "HSM_TAP": tap,
                                          "__doc__": doc, "__module__": __name__})
    return register_model(name)(cls)


MADUN = _variant("madun", "MADUN", True, "convlstm",
                 "Full MADUN: GDM + MAPMM (HSM and CLM), Eq. 15.")
MADUNPMM = _variant("madun_pmm", "MADUNPMM", False, "none", "Ablation: plain PMM, Eq. 7.")
MADUNHSM = _variant("madun_hsm", "MADUNHSM", True, "none", "Ablation: PMM + HSM, Eq. 11.")
MADUNCLM = _variant("madun_clm", "MADUNCLM", False, "convlstm", "Ablation: PMM + CLM, Eq. 14.")
MADUNPlus = _variant("madun_plus", "MADUNPlus", False, "plus",
                     "CLM alternative of Fig. 4(a): PMM + additive memory h = s + h_prev.")
MADUNConcat = _variant("madun_concat", "MADUNConcat", False, "concat",
                       "CLM alternative of Fig. 4(b): PMM + h = Conv([s, h_prev]).")
MADUNHSMConv3 = _variant("madun_hsm_conv3", "MADUNHSMConv3", True, "none",
                         "Ablation ∗HSM (Table 1 (c)): PMM + HSM whose memory z(k) is the "
                         "output of Conv3 (conv_D) instead of RB2.", tap="conv3")
MADUNHSMRB1 = _variant("madun_hsm_rb1", "MADUNHSMRB1", True, "none",
                       "Ablation ◦HSM (Table 1 (d)): PMM + HSM whose memory z(k) is the "
                       "output of RB1 instead of RB2.", tap="rb1")


# ---------------------------------------------------------------------- authors' checkpoints
def _official_layout(num_stages: int, c: int, ic: int) -> list[tuple[str, tuple, str | None]]:
    """(authors' key, expected shape, our key or None when dropped) in the authors' order."""
    conv, bias = (c, c, 3, 3), (c,)
    rows = []
    for k in range(num_stages):
        a, o = f"fcs.{k}.", f"stages.{k}."
        rows += [(a + "lambda_step", (1,), o + "rho"),
                 (a + "conv_D", (c, c + ic, 3, 3), o + "conv_D.weight"),
                 (a + "conv_G", (ic, c, 3, 3), o + "conv_G.weight")]
        for rb in ("1", "2"):
            for cv in ("1", "2"):
                for p, shape in (("weight", conv), ("bias", bias)):
                    rows.append((f"{a}RB{rb}.conv{cv}.{p}", shape, f"{o}rb{rb}.conv{cv}.{p}"))
        for src in ("x", "h"):
            for g in GATE_ORDER:
                for p, shape in (("weight", conv), ("bias", bias)):
                    dst = None if (src == "h" and k == 0) else f"{o}memory.conv_{src}.{p}"
                    rows.append((f"{a}ConvLSTM.conv_{src}{g}.{p}", shape, dst))
    rows += [("fe.weight", (c, ic, 3, 3), "fe.weight"), ("fe.bias", (c,), "fe.bias")]
    return rows


def convert_official_state_dict(sd: Mapping) -> tuple[dict, dict]:
    """Convert the authors' MADUN state_dict to ours.

    Accepts the key layout of the authors' ``MADUN`` (optionally saved from
    ``nn.DataParallel``, i.e. with a ``module.`` prefix): ``fcs.{k}.lambda_step``,
    ``fcs.{k}.conv_D``, ``fcs.{k}.conv_G``, ``fcs.{k}.RB{1,2}.conv{1,2}.{weight,bias}``,
    ``fcs.{k}.ConvLSTM.conv_{x,h}{f,i,o,j}.{weight,bias}``, ``fe.{weight,bias}``.  The
    eight gate convolutions of each stage are concatenated (order f, i, o, j) into our fused
    ``memory.conv_x`` / ``memory.conv_h``; the first stage's ``conv_h*`` (never used by the
    release) are shape-checked and dropped.

    Returns:
        ``(state_dict, config)`` — tensors keyed for :class:`MADUN` and
        ``{"num_stages": K, "channels": C, "image_channels": I}`` for ``build("madun", ...)``.
    Raises:
        ValueError: not a MADUN state_dict, missing/unexpected keys, or a shape mismatch
            (the message names the first offending key).
    """
    if not isinstance(sd, Mapping):
        raise ValueError(f"expected a state_dict mapping, got {type(sd).__name__}")
    src = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    stage_ids = {int(m.group(1)) for k in src if (m := re.match(r"fcs\.(\d+)\.", k))}
    if not stage_ids or "fe.weight" not in src:
        raise ValueError("not an official MADUN state_dict: needs keys 'fcs.<k>.…' and "
                         f"'fe.weight' (got e.g. {sorted(src)[:3]})")
    num_stages = max(stage_ids) + 1
    fe_w = src["fe.weight"]
    if not torch.is_tensor(fe_w) or fe_w.ndim != 4:
        raise ValueError(f"official MADUN key 'fe.weight' must be a (C, I, 3, 3) tensor, got "
                         f"{tuple(getattr(fe_w, 'shape', ())) or type(fe_w).__name__}")
    c, ic = int(fe_w.shape[0]), int(fe_w.shape[1])
    layout = _official_layout(num_stages, c, ic)
    for key, shape, _ in layout:
        if key not in src:
            raise ValueError(f"official MADUN state_dict: missing key {key!r} (expected shape "
                             f"{shape}; inferred num_stages={num_stages}, channels={c})")
        v = src[key]
        if not torch.is_tensor(v) or tuple(v.shape) != shape:
            got = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
            raise ValueError(f"official MADUN state_dict: key {key!r} has shape {got}, expected "
                             f"{shape} (inferred num_stages={num_stages}, channels={c})")
    extra = sorted(set(src) - {key for key, _, _ in layout})
    if extra:
        raise ValueError(f"official MADUN state_dict: unexpected key(s) {extra[:5]}")
    parts: dict[str, list] = {}
    for key, _, dst in layout:
        if dst is not None:
            parts.setdefault(dst, []).append(src[key].detach())
    out = {dst: (ts[0] if len(ts) == 1 else torch.cat(ts, 0)).clone().contiguous()
           for dst, ts in parts.items()}
    return out, {"num_stages": num_stages, "channels": c, "image_channels": ic}
