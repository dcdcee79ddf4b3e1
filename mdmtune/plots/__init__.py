"""The project's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global state).

One module per subject: `core` (energy landscape, schedule curves), `toy` (the exact toy). Every figure is a pure
function of its arguments, so `scripts/make_figures.py` redraws the committed PNGs byte for byte.
"""
