"""See the package docstring of copilot_quant."""
