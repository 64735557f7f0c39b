"""Interactive explorers of the lectures: drawing functions (tested headless) and their widgets."""
