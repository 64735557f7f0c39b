"""The pieces written once and shared: sampling, schedules, windows, the batched evaluation helper,
histories, the palette and the matrix-with-values primitive, the figures that moved out of lectures."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import pytest
import torch

from arflow.data.windows import RandomWindows, random_windows, windows
from arflow.evaluate.autoencoders import code_counts, usage_perplexity
from arflow.evaluate.batched import mean_over_batches
from arflow.models.sampling import adjust_logits, draw_categorical, inverse_cdf
from arflow.train.loop import History, fit
from arflow.train.schedules import cosine_factor


def test_inverse_cdf_picks_the_bin_of_each_uniform():
    logits = torch.log(torch.tensor([[0.25, 0.25, 0.5]])).expand(4, 3)
    u = torch.tensor([0.0, 0.24, 0.26, 0.99])
    assert inverse_cdf(logits, u).tolist() == [0, 0, 1, 2]
    assert inverse_cdf(logits, torch.ones(4)).tolist() == [2, 2, 2, 2]  # never past the last value


def test_inverse_cdf_takes_one_temperature_per_row():
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    u = torch.rand(6, generator=torch.Generator().manual_seed(1))
    temperatures = torch.tensor([0.3, 0.3, 1.0, 1.0, 3.0, 3.0])
    per_row = inverse_cdf(logits, u, temperatures)
    for t in (0.3, 1.0, 3.0):
        rows = temperatures == t
        assert torch.equal(per_row[rows], inverse_cdf(logits[rows], u[rows], t))
    with pytest.raises(ValueError, match="one positive value per row"):
        inverse_cdf(logits, u, torch.ones(5))
    with pytest.raises(ValueError, match="one positive value per row"):
        inverse_cdf(logits, u, torch.zeros(6))
    assert torch.equal(inverse_cdf(logits, u, torch.tensor(0.3)), inverse_cdf(logits, u, 0.3))  # 0-d: a float
    with pytest.raises(ValueError, match="one positive value per row"):  # only inverse_cdf takes one per row
        adjust_logits(logits, temperatures)


def test_temperature_and_top_k():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert torch.allclose(adjust_logits(logits, 2.0), logits / 2)
    top2 = adjust_logits(logits, 1.0, top_k=2)
    assert torch.isinf(top2[0, :2]).all() and torch.equal(top2[0, 2:], logits[0, 2:])
    draws = draw_categorical(logits.expand(500, 4), top_k=1, generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {3}
    with pytest.raises(ValueError, match="temperature"):
        draw_categorical(logits, temperature=0.0)


def test_one_cosine_schedule():
    assert cosine_factor(0, 100) == 1.0 and cosine_factor(100, 100) == pytest.approx(0.0)
    assert cosine_factor(50, 100) == pytest.approx(0.5)
    assert cosine_factor(0, 100, warmup=10) == pytest.approx(0.1)
    assert cosine_factor(1000, 100, warmup=10, floor=0.1) == pytest.approx(0.1)


def test_random_windows_can_pick_the_last_window():
    sequence = torch.arange(6)
    starts = {int(w[0]) for w in random_windows(sequence, 4, 200, torch.Generator().manual_seed(0))}
    assert starts == {0, 1, 2}
    batch = next(iter(RandomWindows(sequence, 4, 3, seed=0)))
    assert batch.shape == (3, 4)
    assert windows(torch.arange(10), 3).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_mean_over_batches_weights_by_batch_size():
    x = torch.arange(10.0)
    assert mean_over_batches(lambda b: b.mean(), x, batch_size=3) == pytest.approx(4.5)
    assert mean_over_batches(lambda b: (b[0] + b[1]).mean(), (x, x), batch_size=4) == pytest.approx(9.0)
    with pytest.raises(ValueError, match="no example"):
        mean_over_batches(lambda b: b.mean(), torch.zeros(0))


def test_code_usage_perplexity():
    assert usage_perplexity(code_counts(torch.tensor([[0, 1], [0, 1]]), 4)) == pytest.approx(2.0)
    assert usage_perplexity(torch.tensor([5, 0, 0])) == pytest.approx(1.0)


def test_the_loop_logs_every_scalar_the_loss_returns_and_calls_callbacks():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    data = [(torch.randn(4, 2),) for _ in range(3)]
    seen = []

    class Spy:
        def on_start(self, run):
            seen.append("start")

        def on_step(self, run):
            seen.append(run.step)

        def on_end(self, run):
            seen.append("end")

        def on_close(self, run):
            seen.append("close")

    def loss_fn(m, batch):
        out = m(batch[0])
        return {"loss": (out ** 2).mean(), "size": out.abs().mean(), "outputs": out}

    history = fit(model, loss_fn, data, steps=4, progress=False, callbacks=[Spy()])
    assert seen == ["start", 1, 2, 3, 4, "end", "close"]
    assert [s for s, _ in history.series["size"]] == [1, 2, 3, 4] and "outputs" not in history.series
    assert History.from_dict(history.as_dict()) == history
    assert history.table(["train", "size"])["step"] == [1, 2, 3, 4]


def test_draw_grid_values_and_the_figures_that_left_the_lectures():
    from arflow.models.vqvae import VQVAE
    from arflow.viz.primitives import draw_grid_values
    from arflow.viz.receptive_fields import draw_raster_past
    from arflow.viz.vq import draw_code_edit

    fig, ax = plt.subplots()
    ax.imshow(torch.eye(2).numpy())
    draw_grid_values(ax, torch.eye(2), color=lambda v: "white" if v else "black", outline=True)
    assert [t.get_text() for t in ax.texts] == ["1", "0", "0", "1"]
    assert [t.get_color() for t in ax.texts] == ["white", "black", "black", "white"]
    plt.close(fig)
    fig = draw_raster_past(4, (1, 1))
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes[0].texts) == 16
    plt.close(fig)
    vqvae = VQVAE(num_embeddings=8, embedding_dim=4, hidden=8).eval()
    fig = draw_code_edit(vqvae, torch.rand(2, 1, 28, 28), digit=1, row=2, col=3, code=5)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 3
    plt.close(fig)
