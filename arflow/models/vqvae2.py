"""VQ-VAE-2 (Razavi et al., 2019): two levels of discrete codes, and PixelCNN priors over both.

Stage 1, the hierarchical autoencoder (for 28x28 digits)::

    x (B,1,28,28) --enc_b--> h_b (B,C,7,7) --enc_t--> z_t (B,D,4,4) --quantize--> top codes (B,4,4)
    [h_b, dec_t(q_t)] --1x1--> z_b (B,D,7,7) --quantize--> bottom codes (B,7,7)
    [q_b, up(q_t)] --decoder--> x_hat (B,1,28,28)

The top level sees a coarser grid (4x4): it is meant for global structure (which digit, its
slant), while the bottom codes (7x7), chosen *knowing* the top, fill in local detail. On 28x28
digits that split does not happen by itself (a 7x7 grid of 32 codes can hold the whole digit);
``top_only_weight > 0`` adds a second reconstruction loss, of the image decoded from the top codes
alone (bottom vectors zero), which with a small bottom codebook makes the top carry the digit.
That top then also carries the stroke's thickness. ``top_restyle > 0`` hides it from the top level:
in training, the top encoder reads a copy of the digit whose strokes were randomly thickened or
thinned (:func:`restyle_strokes`), so only the bottom codes can say how thick the strokes are.

Stage 2, the priors (Gated PixelCNNs over code indices, :mod:`arflow.models.gated_pixelcnn`):
``p(top)`` unconditional on the 4x4 grid, and ``p(bottom | top)`` on the 7x7 grid conditioned on
the top codes through a spatial map (:func:`top_condition`). Generation: top, then bottom, then
the decoder (:meth:`HierarchicalPrior.sample`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vector_quantizer import VectorQuantizerEMA
from arflow.models.vqvae import ResBlock, check_images, decoder_7_to_28, encoder_28_to_7

TOP, BOTTOM = (4, 4), (7, 7)


def change_stroke_width(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Thicken or thin each digit's strokes: x (B, 1, H, W) in [0, 1], amount (B,) in [-1, 1] -> (B, 1, H, W).

    amount > 0 blends the image toward its 3x3 dilation (a grey max filter: strokes about two pixels
    wider at 1), amount < 0 toward its 3x3 erosion (thinner). Where the strokes are stays put.
    """
    a = amount.to(x).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(a > 0, x + a * (dilated - x), x - a * (eroded - x))


def restyle_strokes(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`change_stroke_width` by a random amount per image, uniform in [-strength, strength] (capped at 1)."""
    amount = (torch.rand(len(x), generator=generator, device=x.device) * 2 - 1) * strength
    return change_stroke_width(x, amount.clamp(-1, 1))


class VQVAE2(nn.Module):
    """Two-level VQ-VAE: top codes (B, 4, 4) in [0, K_top), bottom codes (B, 7, 7) in [0, K_bottom)."""

    def __init__(self, num_embeddings_top: int = 32, num_embeddings_bottom: int = 32, embedding_dim: int = 16,
                 hidden: int = 64, commitment_cost: float = 0.25, decay: float = 0.99,
                 reseed_threshold: float = 0.1, top_only_weight: float = 0.0, top_restyle: float = 0.0):
        super().__init__()
        if top_only_weight < 0 or top_restyle < 0:
            raise ValueError(f"top_only_weight and top_restyle must be >= 0, got {top_only_weight}, {top_restyle}")
        d = embedding_dim
        self.top_only_weight, self.top_restyle = top_only_weight, top_restyle
        self.enc_b = encoder_28_to_7(1, hidden, hidden)
        # 7x7 -> 4x4 (stride 2, padding 1, kernel 3)
        self.enc_t = nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 3, stride=2, padding=1),
                                   ResBlock(hidden), nn.ReLU(), nn.Conv2d(hidden, d, 1))
        self.vq_t = VectorQuantizerEMA(num_embeddings_top, d, commitment_cost, decay=decay,
                                       reseed_threshold=reseed_threshold)
        # 4x4 -> 7x7: what the top codes say about the bottom grid, given to the bottom encoder
        self.dec_t = nn.Sequential(nn.Conv2d(d, hidden, 3, padding=1), ResBlock(hidden), nn.ReLU(),
                                   nn.ConvTranspose2d(hidden, d, 3, stride=2, padding=1))
        self.pre_b = nn.Conv2d(hidden + d, d, 1)
        self.vq_b = VectorQuantizerEMA(num_embeddings_bottom, d, commitment_cost, decay=decay,
                                       reseed_threshold=reseed_threshold)
        self.up_t = nn.ConvTranspose2d(d, d, 3, stride=2, padding=1)
        self.decoder = decoder_7_to_28(2 * d, hidden)
        self.num_embeddings_top = num_embeddings_top
        self.num_embeddings_bottom = num_embeddings_bottom

    def _decode_vectors(self, q_t: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([q_b, self.up_t(q_t)], dim=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, 1, 28, 28) -> dict: ``x_hat`` (unclamped), ``top``/``bottom`` (the two quantizers'
        dicts), ``recon_loss`` (MSE per pixel), ``total_loss``."""
        check_images(x)
        h_b = self.enc_b(x)
        if self.training and self.top_restyle:
            # the top level sees strokes of a random width: their width is left to the bottom codes
            top = self.vq_t(self.enc_t(self.enc_b(restyle_strokes(x, self.top_restyle))))
        else:
            top = self.vq_t(self.enc_t(h_b))
        z_b = self.pre_b(torch.cat([h_b, self.dec_t(top["quantize"])], dim=1))
        bottom = self.vq_b(z_b)
        x_hat = self._decode_vectors(top["quantize"], bottom["quantize"])
        recon = F.mse_loss(x_hat, x)
        out = {"x_hat": x_hat, "top": top, "bottom": bottom, "recon_loss": recon,
               "total_loss": recon + top["loss"] + bottom["loss"]}
        if self.top_only_weight:
            # the decoder must also draw the digit from the top codes alone (bottom vectors zero):
            # the top level then has to carry what the digit is, the bottom what the top leaves out
            x_top = self._decode_vectors(top["quantize"], torch.zeros_like(bottom["quantize"]))
            out["top_only_loss"] = F.mse_loss(x_top, x)
            out["total_loss"] = out["total_loss"] + self.top_only_weight * out["top_only_loss"]
        return out

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) -> (top codes (B, 4, 4), bottom codes (B, 7, 7)), never updating the codebooks."""
        was = self.training
        self.eval()
        try:
            out = self(x)
        finally:
            self.train(was)
        return out["top"]["indices"], out["bottom"]["indices"]

    @torch.no_grad()
    def decode(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """Top codes (B, 4, 4) and bottom codes (B, 7, 7) -> images (B, 1, 28, 28) in [0, 1]."""
        if top.shape[1:] != TOP or bottom.shape[1:] != BOTTOM or len(top) != len(bottom):
            raise ValueError(f"expected top codes (B, 4, 4) and bottom codes (B, 7, 7), got "
                             f"{tuple(top.shape)} and {tuple(bottom.shape)}")
        return self._decode_vectors(self.vq_t.lookup(top), self.vq_b.lookup(bottom)).clamp(0, 1)

    @torch.no_grad()
    def decode_top(self, top: torch.Tensor) -> torch.Tensor:
        """Top codes (B, 4, 4) alone -> images (B, 1, 28, 28) in [0, 1], the bottom vectors set to zero:
        what the ``top_only_weight`` term trains the decoder to draw (blurred, but the digit)."""
        if top.shape[1:] != TOP:
            raise ValueError(f"expected top codes (B, 4, 4), got {tuple(top.shape)}")
        q_t = self.vq_t.lookup(top)
        return self._decode_vectors(q_t, torch.zeros(len(top), q_t.shape[1], *BOTTOM)).clamp(0, 1)


def top_condition(top: torch.Tensor, num_embeddings_top: int) -> torch.Tensor:
    """The bottom prior's conditioning map: top codes (B, 4, 4) -> one-hot, upsampled (B, K_top, 7, 7).

    Nearest-neighbour upsampling: bottom position (i, j) sees the top code above it,
    (floor(4 i / 7), floor(4 j / 7)). The map is a fixed function of the top codes, so the prior
    needs nothing from the autoencoder.
    """
    if top.dtype != torch.long or top.ndim != 3:
        raise ValueError(f"top must be long codes of shape (B, H, W), got {tuple(top.shape)} {top.dtype}")
    one_hot = F.one_hot(top, num_embeddings_top).permute(0, 3, 1, 2).float()
    return F.interpolate(one_hot, size=BOTTOM, mode="nearest")


class HierarchicalPrior(nn.Module):
    """p(top) p(bottom | top): two Gated PixelCNNs over code indices."""

    def __init__(self, num_embeddings_top: int = 32, num_embeddings_bottom: int = 32, channels: int = 32,
                 n_layers: int = 4, kernel_size: int = 3):
        super().__init__()
        self.num_embeddings_top = num_embeddings_top
        self.top = GatedPixelCNN(num_embeddings_top, channels, n_layers, kernel_size, input="index")
        self.bottom = GatedPixelCNN(num_embeddings_bottom, channels, n_layers, kernel_size, input="index",
                                    cond_channels=num_embeddings_top)

    def nll(self, top: torch.Tensor, bottom: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL per code in nats of the top (B, 4, 4) and of the bottom (B, 7, 7) given the top."""
        return self.top.nll(top), self.bottom.nll(bottom, cond=top_condition(top, self.num_embeddings_top))

    def bits_per_image(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """-log2 p(top, bottom) per image (scalar, mean over the batch), in bits."""
        nll_t, nll_b = self.nll(top, bottom)
        return (nll_t * top[0].numel() + nll_b * bottom[0].numel()) / torch.log(torch.tensor(2.0))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: top codes (n, 4, 4) first, then bottom codes (n, 7, 7) given them."""
        top = self.top.sample(n, TOP, generator=generator, device=device)
        bottom = self.bottom.sample(n, BOTTOM, cond=top_condition(top, self.num_embeddings_top),
                                    generator=generator, device=device)
        return top, bottom
