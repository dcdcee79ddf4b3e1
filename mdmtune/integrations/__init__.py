"""Adapters that let other tools run mdmtune's sampler (lm-eval: mdmtune.integrations.lm_eval_model)."""
