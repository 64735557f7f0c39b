"""What a model can see, computed from its code: kernel masks, receptive fields analytically
(:mod:`~arflow.analysis.fields`) and by gradients (:mod:`~arflow.analysis.gradients`), side by
side so that each checks the other, and the change-of-variables maths of flows
(:mod:`~arflow.analysis.flows`). Depends on ``models``, ``data`` and ``utils`` only; draws nothing.
"""
