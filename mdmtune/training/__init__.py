"""Training the project's reference MDM on a built-in testbed (`mdmtune train`): the loop and its config.

Apart from the schedule math and the samplers because only `mdmtune train` and the shipped examples' retrain commands
need it. `config` imports no torch, so the CLI can describe its options without loading it.
"""
