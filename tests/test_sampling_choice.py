"""The pieces of one sampling step: Gumbel-max draws, confidence scores, per-row top-k, and seed derivation."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from mdmtune.sampling.choice import choose_tokens, confidence, top_k_per_row
from mdmtune.sampling.seeds import derive_seed, step_noise

LOGITS = torch.tensor([[2.0, 0.5, -1.0, 1.0, 0.0]])
MASK = 4


def _draws(temperature: float, n: int = 20_000) -> np.ndarray:
    _, gumbel = step_noise(row_seed=7, step=0, slots=n, vocab=LOGITS.shape[1], uniforms=False, gumbel=True)
    return choose_tokens(LOGITS.expand(n, -1), temperature, gumbel, MASK).numpy()


def _expected(temperature: float) -> np.ndarray:
    """softmax(logits / T) with the mask token removed (it is never written)."""
    scaled = LOGITS[0].double().numpy() / temperature
    scaled[MASK] = -np.inf
    p = np.exp(scaled - scaled.max())
    return p / p.sum()


def test_gumbel_max_draws_follow_the_tempered_softmax():
    """Chi-square goodness of fit at T = 1 and T = 0.5 (fixed seed: the p-value is a fixed number, > 0.001)."""
    for temperature in (1.0, 0.5):
        counts = np.bincount(_draws(temperature), minlength=LOGITS.shape[1])
        expected = _expected(temperature)
        assert counts[MASK] == 0
        keep = expected > 0
        assert stats.chisquare(counts[keep], expected[keep] * counts.sum()).pvalue > 1e-3


def test_temperature_zero_is_the_argmax_except_the_mask_token():
    logits = torch.tensor([[0.0, 1.0, 3.0], [5.0, 2.0, 1.0]])
    assert choose_tokens(logits, 0.0, None, mask_token_id=0).tolist() == [2, 1]


def test_confidences_are_probability_margin_and_negative_entropy():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    p = torch.softmax(logits.double(), dim=-1).numpy()
    tokens = torch.tensor([1, 2])
    assert np.allclose(confidence(logits, tokens, "low_confidence").numpy(), [p[0, 1], p[1, 2]], rtol=0, atol=1e-15)
    top = np.sort(p, axis=1)
    assert np.allclose(confidence(logits, None, "margin").numpy(), top[:, -1] - top[:, -2], atol=1e-15)
    assert np.allclose(confidence(logits, None, "entropy").numpy(), (p * np.log(p)).sum(axis=1), atol=1e-15)


def test_top_k_per_row_takes_each_rows_own_count_and_breaks_ties_to_the_left():
    scores = torch.tensor([[0.1, 0.9, 0.5, -np.inf], [0.3, 0.3, 0.3, 0.2]], dtype=torch.float64)
    chosen = top_k_per_row(scores, torch.tensor([2, 2]))
    assert chosen.tolist() == [[False, True, True, False], [True, True, False, False]]
    assert top_k_per_row(scores, torch.tensor([0, 4])).sum(dim=1).tolist() == [0, 4]


def test_derived_seeds_depend_on_every_part_and_its_order():
    seeds = {derive_seed(s, r, p) for s in range(3) for r in range(20) for p in range(3)}
    assert len(seeds) == 180
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert all(0 <= s < 2**63 for s in seeds)


def test_step_noise_is_a_function_of_seed_step_and_slot_only():
    u1, g1 = step_noise(5, 3, 6, 4, True, True)
    u2, g2 = step_noise(5, 3, 6, 4, True, True)
    u3, _ = step_noise(5, 4, 6, 4, True, False)
    assert torch.equal(u1, u2) and torch.equal(g1, g2)
    assert not torch.equal(u1, u3)
    assert u1.dtype == g1.dtype == torch.float64
