"""Explorers show ONE picture, replace it in place, disable controls that do not apply, and draw what
the models say: coupling masks from the flow's own layers, temperature sets precomputed once."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from arflow.benchmarks import explorers as bench  # noqa: E402
from arflow.models.coupling import Coupling  # noqa: E402
from arflow.models.glow import Glow  # noqa: E402
from arflow.models.realnvp import RealNVP  # noqa: E402
from arflow.models.sampling import adjust_logits  # noqa: E402
from arflow.viz import coupling_masks as cm  # noqa: E402
from arflow.viz import temperature as temp  # noqa: E402
from arflow.viz.explorer import CONTROL_CLASS, IMAGE_CLASS, Explorer, explorer, figure_png, spills  # noqa: E402

torch.set_num_threads(1)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture()
def shell():
    """An IPython shell, so that ``display`` is captured as a notebook would receive it."""
    return InteractiveShell.instance()


def square(size: int, colour: str):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0], [size], color=colour)
    ax.set(ylim=(0, 10), title=f"{colour} {size}", xlabel="x", ylabel="size")
    return fig


def shown_pictures(outputs) -> tuple[int, int]:
    """(widget views, static images) among captured display outputs."""
    views = sum(WIDGET_VIEW in out.data for out in outputs)
    images = sum("image/png" in out.data for out in outputs)
    return views, images


def test_one_picture_replaced_in_place(shell):
    size = widgets.IntSlider(3, 1, 9, description="size")
    colour = widgets.Dropdown(options=["red", "blue"], value="red", description="colour")
    with capture_output() as captured:
        box = explorer(square, size=size, colour=colour)
    assert shown_pictures(captured.outputs) == (1, 0) and len(captured.outputs) == 1
    assert plt.get_fignums() == []  # no figure left open for the inline backend to show again
    assert isinstance(box, Explorer) and box.children[1] is box.image
    assert IMAGE_CLASS in box.image._dom_classes
    assert all(CONTROL_CLASS in c._dom_classes for c in (size, colour))
    first = box.image.value
    assert bytes(first).startswith(b"\x89PNG") and box.draws == 1
    size.value = 7
    assert box.image.value != first and box.draws == 2
    box.cache.clear()
    size.value = 3  # drawn again (cache cleared): the same bytes as the first picture
    assert box.image.value == first and box.draws == 3
    colour.value = "blue"
    colour.value = "red"  # from the cache, no drawing
    assert box.image.value == first and box.draws == 4


def test_the_cells_result_is_not_a_second_copy(shell):
    with capture_output() as captured:
        box = explorer(square, size=widgets.IntSlider(3, 1, 9), colour=widgets.Dropdown(options=["red"]))
        shell.display_formatter.format(box)  # what the cell's result display does with the returned box
        box._ipython_display_()
    assert len(captured.outputs) == 1
    shell.execution_count += 1  # a later cell may show it again
    with capture_output() as captured:
        box._ipython_display_()
    assert shown_pictures(captured.outputs) == (1, 0)


def test_a_failed_redraw_keeps_the_picture_and_says_why(shell):
    def draw(size: int):
        if size > 5:
            raise ValueError("too big")
        return square(size, "red")

    size = widgets.IntSlider(3, 1, 9)
    with capture_output():
        box = explorer(draw, size=size)
    first = box.image.value
    size.value = 8
    assert box.image.value == first and box.error == "ValueError: too big"
    assert "too big" in box.message.value and box.message.layout.display is None
    size.value = 4
    assert box.error is None and box.message.layout.display == "none"
    with pytest.raises(ValueError, match="too big"), capture_output():
        explorer(draw, size=widgets.IntSlider(8, 1, 9))  # a first state that fails, fails its cell
    with pytest.raises(ValueError, match="nope"), capture_output():
        explorer(draw, applies={"nope": lambda v: True}, size=widgets.IntSlider(3, 1, 9))
    with pytest.raises(ValueError, match="at least one control"):
        explorer(draw)
    with pytest.raises(TypeError, match="must return a matplotlib Figure"), capture_output():
        explorer(lambda size: None, size=widgets.IntSlider(3, 1, 9))


def test_figure_png_crops_like_the_inline_backend():
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.plot([0, 1])
    ax.legend(["a line"], loc="upper center", bbox_to_anchor=(0.5, -0.3))  # below the canvas
    spill = figure_png(fig)
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.plot([0, 1])
    inside = figure_png(fig)
    import io

    from PIL import Image

    tall, short = (Image.open(io.BytesIO(png)).size for png in (spill, inside))
    assert tall[1] > short[1] and short[0] < 3 * 80  # grown for the legend; cropped to the content


# ----------------------------------------------------------------------------- every explorer of the course
CASES = {case.name: case for case in bench.cases(small=True)}


@pytest.mark.parametrize("name", list(CASES))
def test_every_course_explorer_shows_one_picture_that_follows_its_control(shell, name):
    case = CASES[name]
    with capture_output() as captured:
        box = case.build()
    assert shown_pictures(captured.outputs) == (1, 0), f"{name}: expected exactly one live picture"
    assert plt.get_fignums() == []
    for key, value in (case.setup or {}).items():
        box.controls[key].value = value
    control = box.controls[case.control]
    first, start = box.image.value, control.value
    other = next(v for v in bench.control_values(box, case) if v != start)
    control.value = other
    assert box.error is None and box.image.value != first, f"{name}: moving {case.control} changed nothing"
    box.cache.clear()
    control.value = start
    assert box.image.value == first, f"{name}: the same state drew a different picture"
    assert not spills(box.draw(**box.values())), f"{name}: lay the figure out inside its canvas (one render pass)"
    plt.close("all")


def test_controls_that_do_not_apply_are_disabled():
    from arflow.viz.attention import sparse_explorer
    from arflow.viz.receptive_fields import receptive_field_explorer

    with capture_output():
        fields = receptive_field_explorer((12, 12))
        sparse = sparse_explorer(side=8)
    kind, mask = fields.controls["kind"], fields.controls["mask_type"]
    assert not mask.disabled
    kind.value = "gated"
    assert mask.disabled  # the gated model has no first-mask type
    kind.value = "masked"
    assert not mask.disabled
    sparse.controls["pattern"].value = "dense"
    assert sparse.controls["stride"].disabled
    sparse.controls["pattern"].value = "fixed"
    assert not sparse.controls["stride"].disabled
    labels = [label for label, _ in kind.options]
    assert max(map(len, labels)) <= 14, "toggle labels must fit their buttons"
    width = int(kind.style.button_width.removesuffix("px"))
    assert width >= 8 * max(map(len, labels))


# ----------------------------------------------------------------------------- coupling masks
def test_coupling_masks_are_the_flows_own_and_alternate():
    torch.manual_seed(0)
    flow = RealNVP((1, 8, 8), n_scales=2, n_couplings=3, hidden=4)
    records = cm.coupling_masks(flow)
    layers = [m for m in flow.modules() if isinstance(m, Coupling)]
    assert [r["layer"] for r in records] == layers
    for record in records:
        assert torch.equal(record["mask"], record["layer"].mask.expand(record["mask"].shape).bool())
    shapes = [tuple(r["mask"].shape) for r in records]
    assert shapes == [(1, 8, 8)] * 3 + [(4, 4, 4)] * 3 + [(2, 4, 4)] * 4
    for a, b in zip(records, records[1:]):
        if a["mask"].shape == b["mask"].shape:
            assert torch.equal(b["mask"], ~a["mask"]), "successive couplings of a stage must alternate"
    # the first checkerboard, in image pixels, is the checkerboard; after the split, half the pixels are gone
    assert (records[0]["pixels"] == records[0]["mask"][0].numpy()).all()
    assert (records[-1]["pixels"] == 2).sum() == 32
    with pytest.raises(ValueError, match="mixes entries"):
        cm.coupling_masks(Glow((1, 8, 8), n_levels=2, n_steps=1, hidden=4))


def test_coupling_mask_positions_follow_the_real_flow():
    """A fresh RealNVP's couplings start as the identity; feed it distinct pixel values and read, from the
    input each coupling really receives, which pixel each entry holds: it must match ``positions``."""
    flow = RealNVP((1, 8, 8), n_scales=2, n_couplings=2, hidden=4)
    records = cm.coupling_masks(flow)
    x = (torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8) + 0.5) / 64
    logits = flow.layers[0](x)[0].flatten()
    seen = []
    hooks = [r["layer"].register_forward_pre_hook(lambda module, args: seen.append(args[0][0].clone()))
             for r in records]
    with torch.no_grad():
        flow(x)
    for hook in hooks:
        hook.remove()
    for record, received in zip(records, seen):
        pixel_of_entry = (received.flatten()[:, None] == logits[None]).float().argmax(1)
        assert torch.equal(pixel_of_entry, record["positions"].flatten())


def test_coupling_mask_frame_says_what_it_shows():
    flow = RealNVP((1, 8, 8), n_scales=2, n_couplings=2, hidden=4)
    records = cm.coupling_masks(flow)
    fig = cm.draw_coupling_mask(records, 0)
    title = fig._suptitle.get_text()
    assert "checkerboard" in title and "the next keeps the complement: True" in title
    assert fig.axes[-1].get_xlabel() == "column (pixels)"
    plt.close(fig)
    with pytest.raises(ValueError, match="coupling must lie"):
        cm.draw_coupling_mask(records, len(records))


# ----------------------------------------------------------------------------- temperatures
def test_flow_temperature_explorer_picks_the_precomputed_set(shell):
    torch.manual_seed(0)
    flow = RealNVP((1, 8, 8), n_scales=2, n_couplings=1, hidden=4)
    with capture_output():
        box = temp.flow_temperature_explorer(flow, temperatures=(0.5, 1.0), n=4)
    assert list(box.samples) == [0.5, 1.0] and box.controls["temperature"].value == 1.0
    eps = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    for t in (0.5, 1.0):
        assert torch.allclose(box.samples[t], flow.decode(t * eps).clamp(0, 1).detach())
        box.controls["temperature"].value = t
        fig = box.draw(**box.values())
        shown = fig.axes[0].get_images()[0].get_array()
        assert (shown == temp.mosaic(box.samples[t], 2)).all() and f"T = {t:g}" in fig.axes[0].get_title()
        assert box.image.value == figure_png(fig)
    with pytest.raises(KeyError, match="no samples precomputed"):
        temp.draw_image_samples(box.samples, 0.7)


def test_pixelcnn_temperatures_share_the_uniforms():
    from arflow.models.gated_pixelcnn import GatedPixelCNN

    torch.manual_seed(0)
    model = GatedPixelCNN(n_values=4, channels=4, n_layers=2, kernel_size=3).eval()
    samples = temp.pixelcnn_samples(model, temperatures=(0.5, 2.0), n=2, image_size=(5, 5), seed=3)
    u = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(3))
    for t in (0.5, 2.0):
        assert torch.equal(samples[t], model.sample(2, (5, 5), uniforms=u, temperature=t))


def test_gpt_temperature_sets_and_distributions():
    from arflow.models.gpt import GPT

    torch.manual_seed(0)
    gpt = GPT(vocab_size=256, block_size=16, d_model=16, n_heads=2, n_layers=1).eval()
    samples = temp.gpt_samples(gpt, "ab", 5, temperatures=(0.5, 2.0))
    with torch.no_grad():
        logits = gpt(torch.tensor([[97, 98]]))[:, -1]
    entropies = []
    for t in (0.5, 2.0):
        probs = torch.softmax(adjust_logits(logits, t), -1)[0]
        assert torch.allclose(samples[t]["probs"], probs) and len(samples[t]["text"].encode()) >= 1
        entropies.append(float(-(probs * probs.log()).sum()))
    assert entropies[0] < entropies[1]  # a higher temperature flattens the distribution
    fig = temp.draw_text_sample(samples, 2.0, "ab")
    assert "T = 2" in fig.axes[0].get_title(loc="left") and fig.axes[1].get_xlabel() == "probability"
    plt.close(fig)


def test_precompute_rejects_bad_temperatures():
    with pytest.raises(ValueError, match="> 0"):
        temp.precompute_samples(lambda t: t, [0.0, 1.0])
    with pytest.raises(ValueError, match="repeat"):
        temp.precompute_samples(lambda t: t, [1.0, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        temp.precompute_samples(lambda t: t, [])


def test_in_a_real_kernel_an_explorer_cell_shows_one_widget_and_no_static_figure():
    """The inline backend shows every figure left open at the end of a cell; an explorer leaves none,
    and its returned box, as the cell's result, is not displayed a second time."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\nfrom arflow.viz.receptive_fields import "
                                          "causal_stack_explorer"),
                nbformat.v4.new_code_cell("causal_stack_explorer()"),
                nbformat.v4.new_code_cell("box = causal_stack_explorer()\nbox.controls['n_layers'].value = 2\nbox")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells[1:]:
        kinds = [(out.output_type, sorted(out.get("data", {}))) for out in cell.outputs]
        assert len(cell.outputs) == 1 and WIDGET_VIEW in cell.outputs[0].data, kinds
        assert not any("image/png" in out.get("data", {}) for out in cell.outputs), kinds
