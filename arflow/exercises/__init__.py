"""Write-and-check exercises of the lectures (ungraded): one check per exercise, one module per concept.

A lecture's exercise cell (tagged ``exercise``, first line ``# exercise: NAME``) holds a stub the student
fills in; the next cell calls ``check_NAME(...)``, which runs the library's own kinds of test on the
student's code (causality by gradients, round trips, brute-force Jacobians, a numpy nearest-neighbour
search, the library's implementation on random inputs) and prints one line ``[NAME] correct: ...``,
``[NAME] not right yet: ...`` (with what went wrong, in the student's terms) or ``[NAME] not written
yet: ...``. The solutions live outside ``lectures/``, in ``exercises/solutions/``;
:mod:`arflow.exercises.fill` writes a copy of a lecture with them filled in.
"""

from arflow.exercises import attention, causal_conv, chain_rule, flows, gated_masks, quantizer
from arflow.exercises.attention import check_causal_attention, check_strided_pattern
from arflow.exercises.causal_conv import check_causal_conv
from arflow.exercises.chain_rule import check_chain_rule
from arflow.exercises.core import Verdict, evaluate
from arflow.exercises.flows import check_coupling, check_sinh_flow
from arflow.exercises.gated_masks import check_gated_masks
from arflow.exercises.quantizer import check_quantizer

__all__ = ["VERIFIERS", "Verdict", "check_causal_attention", "check_causal_conv", "check_chain_rule", "check_coupling",
           "check_gated_masks", "check_quantizer", "check_sinh_flow", "check_strided_pattern", "evaluate"]

#: exercise name (the ``# exercise: NAME`` marker) -> the function that verifies an answer (raises or returns)
VERIFIERS = {
    "chain_rule": chain_rule.verify,
    "causal_conv": causal_conv.verify,
    "gated_masks": gated_masks.verify,
    "quantizer": quantizer.verify,
    "causal_attention": attention.verify_causal_attention,
    "strided_pattern": attention.verify_strided_pattern,
    "sinh_flow": flows.verify_sinh_flow,
    "coupling": flows.verify_coupling,
}
