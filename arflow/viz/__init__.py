"""Every figure of the course: one palette (:mod:`~arflow.viz.palette`), shared primitives
(:mod:`~arflow.viz.primitives`), then the plots and explorers of each topic. Each function
returns its matplotlib Figure (tests run headless). Nothing below ``viz`` imports it.
"""
