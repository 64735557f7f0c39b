"""What the grader needs to know about assignment 10_ar (see :mod:`autograder.assignment`). SECRET: never released."""

from arflow.checks.pixelcnn import VISIBLE  # noqa: F401 - the visible grade cells, re-exported for the grader

ASSIGNMENT = "10_ar"
NOTEBOOK = "pixelcnn"
WEIGHTS = "pixelcnn.pth"
PROBES = "arflow/checks/pixelcnn_probes.py"
#: grade ids of the solution cells, in the notebook's order, and the name each must define.
SOLUTION_IDS = ("masked_conv", "pixelcnn", "loss_fn", "generate")
SOLUTION_NAMES = {"masked_conv": "MaskedConv2d", "pixelcnn": "PixelCNN", "loss_fn": "loss_fn", "generate": "generate"}

#: Calibrated with ``python -m autograder calibrate`` (reference + 10 %); see autograder/README.md.
REFERENCE_BPD = 1.2328  # measured: 600 steps, seed 0, on the 500 grader-only digits (autograder/heldout)
BPD_THRESHOLD = 1.36  # REFERENCE_BPD * 1.10, rounded

#: hidden grade id -> (title, [(sub-check name, points)]): the points of each hidden grade cell.
PLAN = {
    "hidden_masked_conv": ("MaskedConv2d", [("receptive field equals the mask (k = 3, 5, 7; both blind_center)", 1),
                                            ("outputs equal a convolution with the same kernel and bias", 1),
                                            ("the mask still holds after Adam steps", 1)]),
    "hidden_pixelcnn": ("PixelCNN", [("output shape (B, 256, H, W) and float32 for several image sizes", 1),
                                     ("strictly causal (no output depends on its own or later pixels)", 1),
                                     ("receptive field: first layer blind, later layers not", 1)]),
    "hidden_loss_fn": ("loss_fn", [("equals the reference on random logits", 1),
                                   ("targets round(255 x) for every intensity, including 0 and 1", 1)]),
    "hidden_generate": ("generate", [("shape (n, 1, H, W) and values k/255 in [0, 1]", 1),
                                     ("raster order, conditioning on the pixels already sampled", 1),
                                     ("real sampling: frequencies match the softmax, each image drawn on its own", 1)]),
    "hidden_trained_model": ("trained model (pixelcnn.pth)", [
        (f"causal, and test bits/dim below {BPD_THRESHOLD:.2f}", 5)]),
}
HIDDEN_IDS = tuple(PLAN)
