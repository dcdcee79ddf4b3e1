"""The paper's mathematics: schedules, plans, energies and the exact toy. Pure numpy/scipy/torch."""
