"""An explorer: ipywidgets controls over a function that draws one matplotlib Figure."""

from __future__ import annotations

from collections.abc import Callable


def explorer(draw: Callable[..., object], static: bool = True, **controls):
    """An interactive explorer over ``draw(**values) -> matplotlib Figure``.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control. The drawing function
    is called once statically with the controls' initial values and its figure displayed, so
    the notebook reads well where no kernel runs; then the widgets are displayed, and every
    change redraws into an output area.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    initial = {name: control.value for name, control in controls.items()}
    if static:
        figure = draw(**initial)
        display(figure)
        plt.close(figure)
    output = widgets.Output()

    def redraw(**values):
        with output:
            output.clear_output(wait=True)
            figure = draw(**values)
            display(figure)
            plt.close(figure)

    widgets.interactive_output(redraw, controls)
    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                        output])
    display(box)
    return box
