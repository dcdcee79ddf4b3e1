"""One router per resource: health, artifacts (checkpoints, eval sets), tune (jobs)."""
