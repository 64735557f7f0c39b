"""Checkpoints of the VQ-VAE lecture (``lectures/03_vqvae.ipynb``), and its precomputed curves.

- ``vae_factorized``, ``vae_pixelcnn``: VAEs on binarized MNIST with a weak and an autoregressive
  decoder (posterior collapse); their histories hold the KL and reconstruction terms.
- ``vqvae_mnist``: VQ-VAE, 7x7 grid of 64 codes (EMA codebook, dead codes re-seeded).
- ``prior_vqvae_mnist``: Gated PixelCNN prior over its 7x7 code grids (requires ``vqvae_mnist``).
- ``vqvae2_mnist``: two-level VQ-VAE-2 (top 4x4 of 32 codes, bottom 7x7 of only 4 codes), trained to
  decode the digit from the top codes alone too, its top level reading strokes of random width: the
  top level carries which digit it is (and its slant), the bottom level how thick its strokes are.
- ``vqvae2_mnist_plain``: the same without that term and with 32 bottom codes: the contrast, whose
  bottom level holds the whole digit and whose top codes only change the stroke.
- ``prior_vqvae2_mnist``: p(top) and p(bottom | top), two Gated PixelCNNs (requires ``vqvae2_mnist``).

``python -m arflow.train.recipes.vqvae curves`` reruns the stage-1 experiments (the commitment
cost sweep, codebook loss against EMA, dead-code re-seeding) and writes their curves to
``checkpoints/vqvae_curves/stage1.json`` (a sub-folder: not a checkpoint manifest).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from arflow.data import make_loader
from arflow.evaluate.autoencoders import (
    embedded_digits,
    encode_split,
    prior2_bits_per_image,
    prior_bits_per_code,
    reconstruction_mse,
    reconstruction_mse_on_test,
    vae_negative_elbo,
)
from arflow.evaluate.judges import judge_code_prior, judge_top_swap
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vae import VAE
from arflow.models.vqvae import VQVAE
from arflow.models.vqvae2 import VQVAE2, HierarchicalPrior
from arflow.train.callbacks import CodeUsage
from arflow.train.checkpoints import CHECKPOINT_DIR, digit_classifier
from arflow.train.loop import History, fit
from arflow.train.recipe import Recipe
from arflow.train.schedules import cosine

DATA = "embedded MNIST subset (4,000 train / 500 test)"
CURVES_PATH = CHECKPOINT_DIR / "vqvae_curves" / "stage1.json"


# ----------------------------------------------------------------------------- VAEs (posterior collapse)
VAE_MODEL = {"latent_dim": 16, "hidden": 16, "cond_channels": 8, "pixelcnn_channels": 16, "pixelcnn_layers": 4}
VAE_TRAINING = {"steps": 400, "batch_size": 16, "lr": 1e-3}


def build_vae(config: dict) -> VAE:
    return VAE(config["latent_dim"], config["decoder"], config["hidden"], config["cond_channels"],
               config["pixelcnn_channels"], config["pixelcnn_layers"])


def train_vae(model: VAE, config: dict, inputs: dict, fast: bool) -> History:
    """Adam on the negative ELBO; the history logs its two terms, ``kl`` and ``recon``, every step."""
    steps = 10 if fast else config["steps"]
    loader = make_loader(embedded_digits("train", 64 if fast else None, binary=True), batch_size=config["batch_size"],
                         seed=0)

    def negative_elbo(net, batch):
        out = net(batch[0])
        return {"loss": out["loss"], "kl": out["kl"], "recon": out["recon"]}

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, negative_elbo, loader, steps, optimizer=optimizer, desc=f"VAE ({model.decoder_kind} decoder)")


def _vae(decoder: str) -> Recipe:
    return Recipe(name=f"vae_{decoder}", build=build_vae, train=train_vae,
                  evaluate=lambda model, limit, inputs: vae_negative_elbo(model, limit),
                  model_config={**VAE_MODEL, "decoder": decoder}, training_config=VAE_TRAINING,
                  metric="test negative ELBO (nats/image)", data="embedded MNIST subset, binarized (pixel >= 128)",
                  tolerance=0.01)


VAE_FACTORIZED, VAE_PIXELCNN = _vae("factorized"), _vae("pixelcnn")


# ----------------------------------------------------------------------------- VQ-VAE
VQVAE_MODEL = {"num_embeddings": 64, "embedding_dim": 16, "hidden": 32, "commitment_cost": 0.25, "ema": True,
               "decay": 0.99, "reseed_threshold": 0.1}
VQVAE_TRAINING = {"steps": 800, "batch_size": 32, "lr": 2e-3}


def build_vqvae(config: dict) -> VQVAE:
    return VQVAE(config["num_embeddings"], config["embedding_dim"], config["hidden"], config["commitment_cost"],
                 config["ema"], config["decay"], config["reseed_threshold"])


def vqvae_loss(model: VQVAE, batch) -> dict:
    """The VQ-VAE's total loss, with what the lecture plots: ``recon`` (MSE per pixel), ``commitment``,
    ``perplexity`` and ``used`` (codes used in the batch), and the one-hot ``encodings``."""
    out = model(batch[0])
    return {"loss": out["total_loss"], "recon": out["recon_loss"], "commitment": out["commitment_loss"],
            "perplexity": out["perplexity"], "used": out["encodings"].flatten(0, -2).sum(0).gt(0).sum(),
            "encodings": out["encodings"]}


def fit_vqvae(model: VQVAE, x: torch.Tensor, steps: int, batch_size: int = 64, lr: float = 2e-3,
              log_every: int = 10, progress: bool = True, desc: str = "VQ-VAE") -> History:
    """Adam on images ``x`` (N, 1, 28, 28). The history holds per step ``recon``, ``commitment``,
    ``perplexity`` and ``used``, and every ``log_every`` steps ``dead`` and ``reseeded`` (:class:`CodeUsage`)."""
    if len(x) == 0:
        raise ValueError("x is empty; expected training images")
    loader = make_loader(x, batch_size=batch_size, seed=0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    usage = CodeUsage(model.quantizer, model.num_embeddings, log_every)
    return fit(model, vqvae_loss, loader, steps, optimizer=optimizer, callbacks=[usage], progress=progress,
               desc=desc)


def train_vqvae(model: VQVAE, config: dict, inputs: dict, fast: bool) -> History:
    x = embedded_digits("train", 256 if fast else None)
    return fit_vqvae(model, x, 10 if fast else config["steps"], config["batch_size"], config["lr"])


VQVAE_RECIPE = Recipe(name="vqvae_mnist", build=build_vqvae, train=train_vqvae,
                      evaluate=lambda model, limit, inputs: reconstruction_mse_on_test(model, limit),
                      model_config=VQVAE_MODEL, training_config=VQVAE_TRAINING,
                      metric="test reconstruction MSE per pixel (intensities in [0, 1])", data=DATA, tolerance=1e-4)


# ----------------------------------------------------------------------------- prior over the 7x7 codes
def build_prior(config: dict) -> GatedPixelCNN:
    return GatedPixelCNN(config["n_codes"], config["channels"], config["n_layers"], config["kernel_size"],
                         input="index")


def train_prior(model: GatedPixelCNN, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a cosine learning rate on the codes of the train digits under ``inputs["vqvae_mnist"]``."""
    codes = encode_split(inputs["vqvae_mnist"], "train", 256 if fast else None)
    steps = 10 if fast else config["steps"]
    loader = make_loader(codes, batch_size=config["batch_size"], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda net, batch: net.nll(batch[0]), loader, steps, optimizer=optimizer,
               scheduler=cosine(optimizer, steps), desc="PixelCNN prior over codes")


PRIOR = Recipe(name="prior_vqvae_mnist", build=build_prior, train=train_prior,
               evaluate=lambda model, limit, inputs: prior_bits_per_code(model, inputs["vqvae_mnist"], limit),
               model_config={"n_codes": VQVAE_MODEL["num_embeddings"], "channels": 32, "n_layers": 5,
                             "kernel_size": 3},
               training_config={"steps": 800, "batch_size": 64, "lr": 3e-3}, requires=("vqvae_mnist",),
               metric="test bits per code (7x7 grid of 64 codes)", data=DATA + ", encoded by vqvae_mnist",
               judge=lambda model, inputs: judge_code_prior(model, inputs["vqvae_mnist"], digit_classifier()))


# ----------------------------------------------------------------------------- VQ-VAE-2
VQVAE2_PLAIN_MODEL = {"num_embeddings_top": 32, "num_embeddings_bottom": 32, "embedding_dim": 16, "hidden": 32,
                      "commitment_cost": 0.25, "decay": 0.99, "reseed_threshold": 0.1}
# The hierarchy that works as the slides say: a bottom codebook of 4 codes (2 bits per 4x4 cell, too
# little to draw a digit alone), a second reconstruction from the top codes alone (weight 1), and a
# top level that reads strokes of random width in training (top_restyle 1.5: a third of the digits
# fully dilated or eroded): the top carries the digit, the bottom how thick its strokes are.
VQVAE2_MODEL = {**VQVAE2_PLAIN_MODEL, "num_embeddings_bottom": 4, "top_only_weight": 1.0, "top_restyle": 1.5}
VQVAE2_PLAIN_TRAINING = {"steps": 800, "batch_size": 32, "lr": 2e-3}
VQVAE2_TRAINING = {**VQVAE2_PLAIN_TRAINING, "steps": 1600}


def build_vqvae2(config: dict) -> VQVAE2:
    return VQVAE2(config["num_embeddings_top"], config["num_embeddings_bottom"], config["embedding_dim"],
                  config["hidden"], config["commitment_cost"], config["decay"], config["reseed_threshold"],
                  top_only_weight=config.get("top_only_weight", 0.0), top_restyle=config.get("top_restyle", 0.0))


def train_vqvae2(model: VQVAE2, config: dict, inputs: dict, fast: bool) -> History:
    loader = make_loader(embedded_digits("train", 256 if fast else None), batch_size=config["batch_size"], seed=0)
    return fit(model, lambda net, batch: net(batch[0])["total_loss"], loader, 10 if fast else config["steps"],
               lr=config["lr"], desc="VQ-VAE-2")


def _vqvae2_recipe(name: str, model_config: dict, training_config: dict) -> Recipe:
    return Recipe(name=name, build=build_vqvae2, train=train_vqvae2,
                  evaluate=lambda model, limit, inputs: reconstruction_mse_on_test(model, limit),
                  judge=lambda model, inputs: judge_top_swap(model, digit_classifier()),
                  model_config=model_config, training_config=training_config,
                  metric="test reconstruction MSE per pixel (intensities in [0, 1])", data=DATA, tolerance=1e-4)


VQVAE2_RECIPE = _vqvae2_recipe("vqvae2_mnist", VQVAE2_MODEL, VQVAE2_TRAINING)
VQVAE2_PLAIN = _vqvae2_recipe("vqvae2_mnist_plain", VQVAE2_PLAIN_MODEL, VQVAE2_PLAIN_TRAINING)


def build_prior2(config: dict) -> HierarchicalPrior:
    return HierarchicalPrior(config["n_codes_top"], config["n_codes_bottom"], config["channels"], config["n_layers"],
                             config["kernel_size"])


def train_prior2(model: HierarchicalPrior, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a cosine learning rate on the (top, bottom) codes under ``inputs["vqvae2_mnist"]``."""
    top, bottom = encode_split(inputs["vqvae2_mnist"], "train", 256 if fast else None)
    steps = 10 if fast else config["steps"]
    loader = DataLoader(TensorDataset(top, bottom), batch_size=config["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda net, batch: sum(net.nll(batch[0], batch[1])), loader, steps, optimizer=optimizer,
               scheduler=cosine(optimizer, steps), desc="VQ-VAE-2 priors")


PRIOR2 = Recipe(name="prior_vqvae2_mnist", build=build_prior2, train=train_prior2,
                evaluate=lambda model, limit, inputs: prior2_bits_per_image(model, inputs["vqvae2_mnist"], limit),
                model_config={"n_codes_top": VQVAE2_MODEL["num_embeddings_top"],
                              "n_codes_bottom": VQVAE2_MODEL["num_embeddings_bottom"], "channels": 32,
                              "n_layers": 4, "kernel_size": 3},
                training_config={"steps": 800, "batch_size": 64, "lr": 3e-3}, requires=("vqvae2_mnist",),
                metric="test bits per image (top 4x4 + bottom 7x7 codes)", data=DATA + ", encoded by vqvae2_mnist",
                tolerance=0.01,
                judge=lambda model, inputs: judge_code_prior(model, inputs["vqvae2_mnist"], digit_classifier()))

RECIPES = [VAE_FACTORIZED, VAE_PIXELCNN, VQVAE_RECIPE, PRIOR, VQVAE2_RECIPE, PRIOR2, VQVAE2_PLAIN]


# ----------------------------------------------------------------------------- stage-1 experiments (curves)
def window_means(history: History, name: str, every: int) -> list[float]:
    """The series ``name`` averaged over consecutive windows of ``every`` steps (the last may be shorter)."""
    values = [v for _, v in history.series[name]]
    return [sum(values[i:i + every]) / len(values[i:i + every]) for i in range(0, len(values), every)]


def stage1_experiments(steps: int = 300, fast: bool = False, progress: bool = True) -> dict:
    """Short VQ-VAE runs that the lecture compares; returns {run name: {"config": ..., "curves": ...}}.

    - ``beta=...``: the commitment cost sweep (EMA codebook, re-seeding on);
    - ``codebook loss`` / ``EMA``: the two ways of learning the codebook (no re-seeding);
    - ``EMA + re-seeding``: the dead-code remedy (compare with ``EMA``).

    The curves are lists over logged steps (every steps // 40): ``step``, ``recon``, ``commitment``,
    ``perplexity``, ``used`` (means since the previous log), ``dead`` and ``reseeded``.
    """
    x = embedded_digits("train", 256 if fast else None)
    base = {**VQVAE_MODEL, **VQVAE_TRAINING, "reseed_threshold": 0.0}
    runs = {
        "codebook loss": {**base, "ema": False},
        "EMA": base,
        "EMA + re-seeding": {**base, "reseed_threshold": 0.1},
        **{f"beta={b:g}": {**base, "reseed_threshold": 0.1, "commitment_cost": b} for b in (0.05, 1.0)},
    }
    every = max(1, steps // 40)
    results = {}
    for name, config in runs.items():
        torch.manual_seed(0)
        model = build_vqvae(config)
        began = time.perf_counter()
        history = fit_vqvae(model, x, steps, config["batch_size"], config["lr"], log_every=every, progress=progress,
                            desc=name)
        curves = {"step": [s for s, _ in history.series["dead"]],
                  **{k: window_means(history, k, every) for k in ("recon", "commitment", "perplexity", "used")},
                  "dead": [int(v) for _, v in history.series["dead"]],
                  "reseeded": [int(v) for _, v in history.series["reseeded"]]}
        curves["seconds"] = round(time.perf_counter() - began, 1)
        curves["test_mse"] = reconstruction_mse(model, embedded_digits("test", 200 if fast else None))
        results[name] = {"config": config, "curves": curves}
    # beta=0.25 is the "EMA + re-seeding" run
    results["beta=0.25"] = results["EMA + re-seeding"]
    return results


def stage1_curves(rerun: bool = False, steps: int = 300, fast: bool = False) -> dict:
    """The stage-1 runs the lecture compares: read from ``CURVES_PATH`` (saved by the ``curves``
    command), or run again now when ``rerun`` (``steps`` each, a tenth of them in ``fast`` mode)."""
    if rerun:
        return stage1_experiments(steps=max(1, steps // 10) if fast else steps, fast=fast)
    return json.loads(CURVES_PATH.read_text())["runs"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arflow.train.recipes.vqvae")
    parser.add_argument("what", choices=["curves"], help="curves: rerun the stage-1 experiments")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=CURVES_PATH)
    args = parser.parse_args(argv)
    results = stage1_experiments(args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = f"python -m arflow.train.recipes.vqvae curves --steps {args.steps}"
    args.out.write_text(json.dumps({"command": command, "torch_threads": torch.get_num_threads(),
                                    "runs": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
