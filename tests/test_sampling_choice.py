"""The pieces of one sampling step: Gumbel-max draws, confidence scores, per-row top-k, and seed derivation."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from mdmtune.sampling import choice
from mdmtune.sampling.choice import choose_tokens, confidence, top_k_per_row
from mdmtune.sampling.seeds import LazyGumbel, derive_seed, gumbel_noise, seed_words, step_keys, uniform_noise

LOGITS = torch.tensor([[2.0, 0.5, -1.0, 1.0, 0.0]])
MASK = 4


def _draws(temperature: float, n: int = 20_000) -> np.ndarray:
    keys = torch.tensor([derive_seed(7, 0, 1)])
    counters = torch.arange(n)[:, None] * LOGITS.shape[1] + torch.arange(LOGITS.shape[1])[None, :]
    gumbel = gumbel_noise(keys[:, None], counters)
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


def _splitmix64_reference(key: int, count: int) -> np.ndarray:
    """SplitMix64 as published (Steele, Lea, Flood 2014), in numpy uint64: the first `count` outputs of `key`."""
    state = np.uint64(key)
    out = np.empty(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(count):
            state = state + np.uint64(0x9E3779B97F4A7C15)
            z = state
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            out[i] = z ^ (z >> np.uint64(31))
    return out


def test_uniform_noise_is_splitmix64_in_int64_tensors():
    """The tensor version (int64 with wrap-around and masked shifts) equals the published uint64 algorithm."""
    for key in (0, 12345, derive_seed(3, 4, 5), 2**63 - 1):
        expected = (_splitmix64_reference(key, 64) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        got = uniform_noise(torch.tensor([key]), torch.arange(64))
        assert got.dtype == torch.float64
        assert np.array_equal(got.numpy(), expected)


def test_uniform_noise_is_uniform_and_keys_give_independent_streams():
    u = uniform_noise(torch.tensor([derive_seed(1, 2, 0)]), torch.arange(50_000)).numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    v = uniform_noise(torch.tensor([derive_seed(1, 3, 0)]), torch.arange(50_000)).numpy()
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.02


def test_step_keys_are_derive_seed_vectorized_and_differ_by_seed_step_and_stream():
    seeds = [0, 1, 2, 3, 2**63, 2**64 - 1]
    words = seed_words(seeds, torch.device("cpu"))
    keys = [step_keys(words, step, stream).tolist() for step in range(4) for stream in (0, 1)]
    assert keys == [[derive_seed(s, step, stream) for s in seeds] for step in range(4) for stream in (0, 1)]
    assert len({k for row in keys for k in row}) == 48


def test_large_vocabularies_are_processed_in_row_chunks_with_the_same_result(monkeypatch):
    """Chunking (forced down to 2 rows at a time) and lazily computed Gumbel noise change no token and no score."""
    logits = torch.randn(9, 5, generator=torch.Generator().manual_seed(0))
    keys = torch.tensor([derive_seed(i, 3, 1) for i in range(9)])
    slots = torch.arange(9)
    whole = gumbel_noise(keys[:, None], slots[:, None] * 5 + torch.arange(5)[None, :])
    expected_tokens = choose_tokens(logits, 0.8, whole, MASK)
    expected_scores = confidence(logits, expected_tokens, "low_confidence")
    monkeypatch.setattr(choice, "_CHUNK_ELEMENTS", 10)
    tokens = choose_tokens(logits, 0.8, LazyGumbel(keys, slots, 5), MASK)
    assert torch.equal(tokens, expected_tokens)
    assert torch.equal(confidence(logits, tokens, "low_confidence"), expected_scores)
