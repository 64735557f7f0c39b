"""Shipped checkpoints: every one loads strictly into today's code and still measures what its manifest says."""

from __future__ import annotations

import json
import math

import pytest
import torch

from arflow.train import checkpoints
from arflow.train.checkpoints import CHECKPOINT_DIR
from arflow.train.loop import History
from arflow.train.recipe import Recipe

MANIFESTS = checkpoints.all_manifests()
REQUIRED = {"name", "model", "config", "requires", "data", "command", "train_seconds", "metric", "value",
            "check_n", "check_value", "sha256", "bytes"}


def test_every_recipe_has_a_checkpoint_and_every_checkpoint_a_recipe():
    recipes = checkpoints.load_recipes()
    assert sorted(recipes) == sorted(MANIFESTS), "run `make checkpoints` (or train the missing ones)"
    for name in recipes:
        assert (CHECKPOINT_DIR / f"{name}.pt").exists()


def test_checkpoints_stay_small():
    total = sum(p.stat().st_size for p in CHECKPOINT_DIR.glob("*.pt"))
    assert total < 30e6, f"shipped checkpoints take {total / 1e6:.1f} MB; keep them well under 30 MB"


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_checkpoint_loads_and_re_measures_its_metric(name):
    manifest = MANIFESTS[name]
    assert REQUIRED <= set(manifest), f"manifest of {name} lacks {REQUIRED - set(manifest)}"
    assert manifest["command"] == f"python -m arflow.train.checkpoints train {name}"
    model = checkpoints.load_checkpoint(name)  # strict load, sha256 checked
    recipe = checkpoints.get_recipe(name)
    assert manifest["requires"] == list(recipe.requires)
    assert manifest["config"] == json.loads(json.dumps(recipe.config)), (
        f"{name} was trained with another config than its recipe has today; retrain it ({manifest['command']})")
    value = checkpoints.measure(recipe, model, manifest["check_n"])
    assert value == pytest.approx(manifest["check_value"], abs=recipe.tolerance), (
        f"{name}: {manifest['metric']} re-measured {value:.4f}, manifest says {manifest['check_value']:.4f}")


# Every model the lectures sample from records what its samples show (arflow.evaluate.judges).
GENERATIVE = {"realnvp_mnist", "glow_mnist", "realnvp_mnist_vd", "glow_mnist_vd",
              "gated_pixelcnn_mnist", "gated_pixelcnn_mnist_cond", "wavenet_signal",
              "dalle_mnist", "prior_vqvae_mnist", "prior_vqvae2_mnist", "vqvae2_mnist", "vqvae2_mnist_plain"}


def test_every_generative_checkpoint_records_what_its_samples_show():
    missing = sorted(name for name in GENERATIVE if "samples" not in MANIFESTS[name])
    assert not missing, f"no 'samples' in the manifests of {missing}; run python -m arflow.train.checkpoints remeasure"
    assert all(checkpoints.get_recipe(name).judge is not None for name in GENERATIVE)


@pytest.mark.parametrize("name", sorted(GENERATIVE))
def test_checkpoint_samples_show_what_its_manifest_says(name):
    """The samples are drawn again from the same seeds. Fractions may move by a sample or two
    (another number of threads can flip a draw at a boundary), the class spread by a little more."""
    recorded = MANIFESTS[name]["samples"]
    fresh = checkpoints.judge(checkpoints.get_recipe(name), checkpoints.load_checkpoint(name))
    assert set(fresh) == set(recorded)
    for key, value in recorded.items():
        tolerance = 0.15 if key == "spread_bits" else 0.04
        assert fresh[key] == pytest.approx(value, abs=tolerance), (
            f"{name}: {key} {fresh[key]:.3f}, manifest {value:.3f}")


# --------------------------------------------------------------- the mechanism, on a toy recipe
@pytest.fixture
def toy_recipe(monkeypatch):
    def build(config):
        torch.manual_seed(config["init_seed"])
        return torch.nn.Linear(2, 1)

    def train(model, config, inputs, fast):
        with torch.no_grad():
            model.weight.fill_(1.0 if not fast else 0.5)
        history = History()
        history.log("fast", 1, float(fast))
        return history

    def evaluate(model, limit, inputs):
        x = torch.ones(limit or 10, 2)
        return float(model(x).mean())

    recipe = Recipe("toy_linear", build, train, evaluate, model_config={"init_seed": 3}, metric="mean output")
    checkpoints.load_recipes()  # the real recipes too, whichever test runs first
    monkeypatch.setitem(checkpoints.RECIPES, "toy_linear", recipe)
    monkeypatch.setattr(checkpoints, "load_recipes", lambda: checkpoints.RECIPES)
    return recipe


def test_train_and_save_then_load(tmp_path, toy_recipe):
    manifest = checkpoints.train_and_save("toy_linear", directory=tmp_path, progress=False, device="cpu")
    assert json.loads((tmp_path / "toy_linear.json").read_text()) == manifest
    assert manifest["trained_on"] == "cpu"  # where the model trained
    assert manifest["value"] == pytest.approx(2.0 + toy_recipe.build(toy_recipe.model_config).bias.item())
    model = checkpoints.load_checkpoint("toy_linear", directory=tmp_path)
    assert torch.equal(model.weight, torch.ones(1, 2))


def test_a_recipe_not_marked_any_device_is_refused_off_the_cpu(tmp_path, toy_recipe):
    checkpoints.check_trains_on(["toy_linear"], torch.device("cpu"))
    with pytest.raises(ValueError, match=r"\['toy_linear'\] train on the CPU only.*gated_pixelcnn_mnist"):
        checkpoints.check_trains_on(["toy_linear"], torch.device("meta"))
    with pytest.raises(ValueError, match="CPU only"):
        checkpoints.train_and_save("toy_linear", directory=tmp_path, progress=False, device="meta")
    assert not (tmp_path / "toy_linear.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot happen")
def test_training_on_an_absent_gpu_is_refused_before_anything_trains(tmp_path, toy_recipe, capsys):
    with pytest.raises(SystemExit):
        checkpoints.main(["train", "toy_linear", "--device", "cuda"])
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["gated_pixelcnn_mnist_cond", "wavenet_signal"])
def test_a_recipe_marked_any_device_trains_with_the_batches_fit_moves(name):
    """Their loss functions no longer move batches themselves (fit does): a few fast-mode steps run,
    with labels where the model takes them, and change the weights."""
    recipe = checkpoints.get_recipe(name)
    assert recipe.any_device
    model = recipe.build(recipe.model_config)
    before = [p.detach().clone() for p in model.parameters()]
    history = recipe.train(model, {**recipe.training_config, "batch_size": 4}, {}, True)  # small: quick
    assert len(history.train) >= 3 and all(math.isfinite(v) for _, v in history.train)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_tampered_checkpoint_is_refused(tmp_path, toy_recipe):
    checkpoints.train_and_save("toy_linear", directory=tmp_path, progress=False)
    torch.save({"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}, tmp_path / "toy_linear.pt")
    with pytest.raises(ValueError, match="sha256 differs"):
        checkpoints.load_checkpoint("toy_linear", directory=tmp_path)


def test_missing_checkpoint_says_how_to_train_it(tmp_path, toy_recipe):
    with pytest.raises(FileNotFoundError, match="python -m arflow.train.checkpoints train toy_linear"):
        checkpoints.load_checkpoint("toy_linear", directory=tmp_path)


def test_load_or_train_trains_in_fast_mode_without_touching_the_shipped_file(tmp_path, toy_recipe, monkeypatch):
    monkeypatch.setenv("ARFLOW_FAST", "1")
    trained = checkpoints.load_or_train("toy_linear", train=True)
    assert torch.equal(trained.model.weight, torch.full((1, 2), 0.5)) and trained.history.series["fast"] == [(1, 1.0)]
    assert trained.manifest["trained_now"] and "toy_linear" in trained.summary()
    assert not (CHECKPOINT_DIR / "toy_linear.pt").exists()


def test_unknown_recipe_lists_the_known_ones(toy_recipe):
    with pytest.raises(KeyError, match="toy_linear"):
        checkpoints.get_recipe("no_such_model")


def test_remeasure_updates_only_the_metric(tmp_path, toy_recipe):
    checkpoints.train_and_save("toy_linear", directory=tmp_path, progress=False)
    manifest_path = tmp_path / "toy_linear.json"
    stale = json.loads(manifest_path.read_text())
    stale_values = {key: stale[key] for key in ("value", "check_value", "sha256")}
    stale.update(value=-1.0, check_value=-1.0)
    manifest_path.write_text(json.dumps(stale))
    fresh = checkpoints.remeasure("toy_linear", directory=tmp_path)
    assert {key: fresh[key] for key in ("value", "check_value", "sha256")} == stale_values


def test_load_or_train_returns_the_shipped_model_manifest_and_history():
    trained = checkpoints.load_or_train("vae_factorized")
    assert trained.manifest == MANIFESTS["vae_factorized"]
    assert [s for s, _ in trained.history.series["kl"]][:3] == [8, 16, 24]  # the former model buffer
    assert "vae_factorized" in trained.summary()


# --------------------------------------------------------------- requirements and training order
def test_every_requirement_is_a_recipe_and_make_checkpoints_trains_requirements_first():
    recipes = checkpoints.load_recipes()
    order = checkpoints.training_order()
    assert sorted(order) == sorted(recipes)
    for name, recipe in recipes.items():
        for required in recipe.requires:
            assert order.index(required) < order.index(name), f"{required} must be trained before {name}"
    for before, after in (("dvae_mnist", "dalle_mnist"), ("vqvae_mnist", "prior_vqvae_mnist"),
                          ("vqvae2_mnist", "prior_vqvae2_mnist")):
        assert order.index(before) < order.index(after)
    assert checkpoints.training_order(["dalle_mnist", "dvae_mnist"]) == ["dvae_mnist", "dalle_mnist"]


def test_training_order_refuses_cycles_and_unknown_requirements(monkeypatch):
    def recipe(name, requires):
        return Recipe(name, lambda c: torch.nn.Linear(1, 1), None, None, requires=requires)

    fake = {"a": recipe("a", ("b",)), "b": recipe("b", ("a",)), "c": recipe("c", ("nowhere",))}
    monkeypatch.setattr(checkpoints, "load_recipes", lambda: fake)
    with pytest.raises(ValueError, match="cycle"):
        checkpoints.training_order(["a"])
    with pytest.raises(ValueError, match="nowhere"):
        checkpoints.training_order(["c"])


def test_the_registry_is_an_explicit_list():
    from arflow.train import recipes

    assert [r.name for r in recipes.RECIPES] == list(checkpoints.load_recipes())
