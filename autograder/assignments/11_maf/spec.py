"""What the grader needs to know about assignment 11_maf. SECRET: never released."""

from arflow.checks.maf import VISIBLE  # noqa: F401 - the visible grade cells, re-exported for the grader

ASSIGNMENT = "11_maf"
NOTEBOOK = "maf"
WEIGHTS = "maf.pth"
PROBES = "arflow/checks/maf_probes.py"
#: grade ids of the solution cells, in the notebook's order, and the name each must define.
SOLUTION_IDS = ("made_masks", "made", "maf_layer", "maf")
SOLUTION_NAMES = {"made_masks": "made_masks", "made": "MADE", "maf_layer": "MAFLayer", "maf": "MAF"}
#: hidden grade id -> (title, [(sub-check name, points)]).
PLAN = {
    "hidden_made_masks": ("made_masks", [
        ("autoregressive for random orderings and hidden sizes (0 to 3 hidden layers)", 1),
        ("every allowed dependency connected when each hidden layer has at least D - 1 units; every hidden unit "
         "connected", 1),
        ("0/1 masks of the right shapes, deterministic, and a bad ordering refused with ValueError", 1)]),
    "hidden_made": ("MADE", [
        ("mu and log_scale autoregressive by gradients for random orderings", 1),
        ("mu and log_scale depend on every earlier input (hidden layers of at least D - 1 units)", 1),
        ("still autoregressive after Adam steps", 1)]),
    "hidden_maf_layer": ("MAFLayer", [
        ("z is autoregressive in the layer's ordering", 1),
        ("log_det equals the brute-force log|det dz/dx| (autograd Jacobian)", 1),
        ("inverse(forward(x)) = x", 1),
        ("forward(inverse(z)) = z", 1)]),
    "hidden_maf": ("MAF", [
        ("log_prob = log N(z; 0, I) + brute-force log|det dz/dx| of the whole stack", 1),
        ("inverse undoes forward through the stack, both ways", 1),
        ("sample(n): shape (n, D), random, and forward(samples) is standard normal", 1)]),
    "hidden_trained_model": ("trained model (maf.pth)", [
        ("the density is exact on test digits: log_prob equals the change of variables with the brute-force "
         "Jacobian", 1),
        ("test bits/dim on the grader's digits below the threshold (counted only when the density is exact)", 4)]),
}
HIDDEN_IDS = tuple(PLAN)
