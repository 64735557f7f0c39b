"""An explorer: ipywidgets controls over a function that draws one matplotlib Figure, shown as ONE picture.

The figure is rendered to PNG bytes (by Agg, whatever the notebook's backend) and put into a single
``ipywidgets.Image``; every change of a control draws again and replaces the image's ``value`` in place.
There is no ``Output`` widget and no static copy: the picture above the fold is the live one, and a
notebook saved with its widget state holds the last picture (the image bytes are part of the state).

DOM hooks for browser tests: the image has the CSS class ``arflow-explorer-image``, every control
``arflow-explorer-control``, the whole box ``arflow-explorer``.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Mapping

import ipywidgets as widgets

IMAGE_CLASS = "arflow-explorer-image"
CONTROL_CLASS = "arflow-explorer-control"
BOX_CLASS = "arflow-explorer"
DPI = 80  # small PNGs: fast to render, to send to the browser and to save in the notebook


def figure_png(figure, dpi: int = DPI, pad_inches: float = 0.1, exact: bool = True) -> bytes:
    """PNG bytes of a matplotlib Figure (see :func:`render_png`); closes it."""
    return render_png(figure, dpi, pad_inches, exact)[0]


def render_png(figure, dpi: int = DPI, pad_inches: float = 0.1, exact: bool = True) -> tuple[bytes, bool]:
    """(PNG bytes, whether its content spilled over the canvas) of a matplotlib Figure, cropped to its
    content as the inline backend crops it; closes the figure.

    Rendered once by Agg (whatever the notebook's backend), then cropped to what was drawn, read from the
    rendered pixels (plus ``pad_inches``). Only a figure whose content spills over its canvas (a legend
    placed below the axes, say) is rendered again with ``bbox_inches="tight"``, which grows the canvas to
    fit: two passes instead of one, so explorer figures are laid out to fit their canvas. ``exact``
    asks matplotlib's tight box whether anything spills (it lays out every text again: a quarter of a
    redraw); without it that is asked only when ink touches the canvas edge. An explorer asks on its
    first picture and, when that fits, not for the next ones.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    if not isinstance(figure, Figure):
        raise TypeError(f"an explorer's drawing function must return a matplotlib Figure, got {type(figure).__name__}")
    buffer = io.BytesIO()
    try:
        figure.set_dpi(dpi)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        pixels = np.asarray(canvas.buffer_rgba())[:, :, :3]
        box = spilled = None
        if exact:  # matplotlib's tight box: does anything lie outside the canvas?
            box, spilled = _content_box(figure, canvas, dpi)
        inked = None if spilled else _inked_box(pixels, figure.get_facecolor())
        if inked is None and box is None:  # ink on the canvas edge: measure the content exactly
            box, spilled = _content_box(figure, canvas, dpi)
        if spilled:
            figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=pad_inches)
            return buffer.getvalue(), True
        if inked is None:
            x0, y0, x1, y1 = box
            height = pixels.shape[0]
            inked = (int(height - y1), int(np.ceil(height - y0)), int(x0), int(np.ceil(x1)))
        top, bottom, left, right = inked
        pad = int(round(pad_inches * dpi))
        height, width = pixels.shape[:2]
        cropped = pixels[max(0, top - pad):min(height, bottom + pad), max(0, left - pad):min(width, right + pad)]
        Image.fromarray(np.ascontiguousarray(cropped)).save(buffer, format="png", compress_level=3)
        return buffer.getvalue(), False
    finally:
        plt.close(figure)


def _inked_box(pixels, facecolor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) pixel rows and columns of everything not in the background colour, or
    None when something is drawn on the outermost pixels (the content may reach past the canvas).

    Reading the rendered pixels costs a millisecond; asking matplotlib for the tight bounding box lays out
    every text again (a quarter of a redraw), so that is done only when the pixels cannot tell.
    """
    import numpy as np

    background = np.array([round(255 * c) for c in facecolor[:3]], dtype=np.int16)
    ink = np.abs(pixels.astype(np.int16) - background).max(axis=2) > 8
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        return 0, pixels.shape[0], 0, pixels.shape[1]
    if rows[0] == 0 or cols[0] == 0 or rows[-1] == pixels.shape[0] - 1 or cols[-1] == pixels.shape[1] - 1:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _content_box(figure, canvas, dpi: int):
    """The tight box of a drawn figure's content in pixels (x0, y0, x1, y1), and whether it spills over."""
    width, height = canvas.get_width_height()
    box = figure.get_tightbbox(canvas.get_renderer())  # inches
    x0, y0, x1, y1 = (v * dpi for v in (box.x0, box.y0, box.x1, box.y1))
    return (x0, y0, x1, y1), x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1


def _render(figure, dpi: int):
    """Draw ``figure`` once with Agg: (canvas, tight box of the content in pixels, whether it spills over)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box, spilled = _content_box(figure, canvas, dpi)
    return canvas, box, spilled


def spills(figure, dpi: int = DPI) -> bool:
    """Whether the content of ``figure`` reaches past its canvas (then :func:`figure_png` renders it twice)."""
    return _render(figure, dpi)[2]


def _fit_labels(control: widgets.Widget) -> None:
    """Let descriptions and toggle-button labels take the width they need instead of being cut."""
    style = getattr(control, "style", None)
    if style is not None and hasattr(style, "description_width"):
        style.description_width = "initial"
    if isinstance(control, widgets.ToggleButtons):
        longest = max(len(str(label)) for label in control._options_labels)
        control.style.button_width = f"{max(8 * longest + 24, 48)}px"
    if isinstance(control, widgets.Checkbox):
        control.indent = False


class Explorer(widgets.VBox):
    """The explorer's box: ``children = [controls row, image]``.

    Attributes: ``image`` (the ``ipywidgets.Image``), ``controls`` (name -> control), ``draw``,
    ``draws`` (how many pictures were drawn), ``error`` (the message of the last failed drawing, or
    ``None``), ``cache`` (PNG bytes of the last ``cache_size`` states drawn: going back to a state
    shows its picture without drawing it again). :meth:`redraw` draws the picture for the controls'
    current values; changing any control's ``value`` calls it.
    """

    def __init__(self, draw: Callable[..., object], controls: Mapping[str, widgets.Widget],
                 applies: Mapping[str, Callable[[dict], bool]] | None = None, dpi: int = DPI,
                 cache_size: int = 64):
        unknown = set(applies or {}) - set(controls)
        if unknown:
            raise ValueError(f"`applies` names controls that do not exist: {sorted(unknown)}; "
                             f"the controls are {sorted(controls)}")
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                raise TypeError(f"control {name!r} must be an ipywidgets control with a value, got {type(control)}")
        self.draw = draw
        self.controls = dict(controls)
        self.applies = dict(applies or {})
        self.dpi = dpi
        self.draws = 0
        self.error: str | None = None
        self.cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        self._shown_in: int | None = None
        self._spills = False  # whether the first picture spilled over its canvas (then every one is measured)
        self.message = widgets.HTML(layout=widgets.Layout(display="none"))
        for control in self.controls.values():
            _fit_labels(control)
            control.add_class(CONTROL_CLASS)
        # natural size: a flex column would otherwise stretch the PNG to the page's width (blurred)
        self.image = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        self.image.add_class(IMAGE_CLASS)
        row = widgets.HBox([*self.controls.values(), self.message],
                           layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([row, self.image])
        self.add_class(BOX_CLASS)
        self.redraw()  # the first state, drawn at once
        for control in self.controls.values():
            control.observe(self._changed, names="value")

    def values(self) -> dict:
        """The controls' current values, by keyword of ``draw``."""
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, change) -> None:
        self.redraw()

    def redraw(self) -> bytes:
        """Disable the controls that do not apply, draw, and replace the image's bytes. Returns them.

        A drawing that fails leaves the last picture and shows the error above it (a callback's
        exception would otherwise vanish into the kernel's log).
        """
        values = self.values()
        for name, applies in self.applies.items():
            self.controls[name].disabled = not applies(values)
        key = tuple(sorted(values.items()))
        if key in self.cache:
            self.cache.move_to_end(key)
            self.image.value = self.cache[key]
            return self.cache[key]
        try:
            # the first picture is measured exactly; if it fits its canvas, later ones are cropped from their pixels
            png, spilled = render_png(self.draw(**values), self.dpi, exact=not self.draws or self._spills)
            if not self.draws:
                self._spills = spilled
        except Exception as err:  # noqa: BLE001 (shown to the reader and kept in self.error)
            self.error = f"{type(err).__name__}: {err}"
            self.message.value = f"<span style='color:#c00'>could not draw: {self.error}</span>"
            self.message.layout.display = None
            if not self.draws:
                raise  # the first state must draw: a broken explorer should fail its cell
            return self.image.value
        self.error = None
        self.message.layout.display = "none"
        self.image.value = png
        self.draws += 1
        self.cache[key] = png
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return png

    def show(self) -> Explorer:
        """Display the box (once per cell: the cell's own result display of it is then skipped)."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self._shown_in = getattr(shell, "execution_count", None)
        display(self._repr_mimebundle_(), raw=True)
        return self

    def _ipython_display_(self):
        # `explorer(...)` as the last line of a cell would otherwise show the same widget a second time
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and self._shown_in is not None and self._shown_in == shell.execution_count:
            return
        self.show()


def explorer(draw: Callable[..., object], static: bool | None = None, *,
             applies: Mapping[str, Callable[[dict], bool]] | None = None, dpi: int = DPI,
             **controls) -> Explorer:
    """Show an interactive explorer over ``draw(**values) -> matplotlib Figure`` and return its box.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control; the picture is drawn at
    once for their initial values and replaced in place whenever one changes. ``applies`` maps a
    control's name to ``values -> bool``: the control is disabled while it does not apply (for
    example the first-mask toggle when the gated model is picked). ``static`` is accepted for old
    callers and ignored: there is only ever one picture. (``applies`` and ``dpi`` are therefore
    not available as names of controls.)
    """
    del static
    if not controls:
        raise ValueError("an explorer needs at least one control (keyword=ipywidgets control)")
    return Explorer(draw, controls, applies=applies, dpi=dpi).show()
