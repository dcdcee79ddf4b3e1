"""mdmtune.tuning.evaluation: encoding eval sets for a denoiser, and many schedules sampled and scored in one batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _model_builders import save_tiny_bert
from _sampling_support import Recording, native_denoiser

from mdmtune.core.schedules import beta, named
from mdmtune.data.evalsets import EvalRecord, parse_eval_set
from mdmtune.errors import InvalidInput
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings
from mdmtune.tuning.evaluation import encode_records, evaluate

GEN = 8


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    torch.set_num_threads(1)
    return native_denoiser(tmp_path_factory.mktemp("native"))


def completion(i: int, prompt: str, answer: str = "0") -> EvalRecord:
    return EvalRecord(id=f"c{i}", kind="completion", prompt=prompt, masked=None, answer=answer, line=i + 1)


def infill(i: int, masked: str) -> EvalRecord:
    return EvalRecord(id=f"i{i}", kind="infill", prompt=None, masked=masked, answer="", line=i + 1)


PROMPTS = ["12+34=", "7+8=", "100+200=", "5+5=", "31+4=", "9+99="]
RECORDS = [completion(i, p) for i, p in enumerate(PROMPTS)]


def test_completion_is_prompt_then_gen_length_masks_left_padded_to_one_length(denoiser):
    encoded = encode_records(denoiser, RECORDS, gen_length=GEN)
    width = max(len(p) for p in PROMPTS) + GEN
    assert encoded.ids.shape == (len(PROMPTS), width)
    assert encoded.gen_region == (width - GEN, GEN)
    for row, prompt in enumerate(PROMPTS):
        expected = denoiser.codec.encode(prompt) + [denoiser.mask_token_id] * GEN
        pad = width - len(expected)
        assert encoded.ids[row].tolist() == [denoiser.pad_token_id] * pad + expected
        assert encoded.attention_mask[row].tolist() == [0] * pad + [1] * len(expected)
    assert encoded.masked.tolist() == [GEN] * len(PROMPTS)


def test_infill_turns_each_mask_symbol_into_one_mask_token(denoiser):
    encoded = encode_records(denoiser, [infill(0, "1_3__6"), infill(1, "_2_"), infill(2, "__")])
    mask, pad = denoiser.mask_token_id, denoiser.pad_token_id
    assert encoded.ids[0].tolist() == [denoiser.codec.encode(c)[0] if c != "_" else mask for c in "1_3__6"]
    assert encoded.ids[1].tolist() == [pad] * 3 + [mask, denoiser.codec.encode("2")[0], mask]
    assert encoded.masked.tolist() == [3, 2, 2]
    assert encoded.lengths.tolist() == [6, 3, 2]
    with_symbol = encode_records(denoiser, [infill(0, "1?3??6")], mask_symbol="?")
    assert torch.equal(with_symbol.ids[0], encoded.ids[0])
    assert encoded.gen_region is None


@pytest.mark.parametrize(
    ("records", "kwargs", "field", "fragment"),
    [
        ([completion(0, "1+2=")], {}, "gen_length", "gen_length"),
        ([completion(0, "1+2=")], {"gen_length": 40}, "eval_set", "record 'c0' (line 1) is 44 tokens"),
        ([completion(3, "1_2=")], {"gen_length": 4}, "eval_set", "record 'c3' (line 4): the prompt contains"),
        ([completion(0, "1+2=x")], {"gen_length": 4}, "eval_set", "'x' is not in the model's alphabet"),
        ([infill(0, "1234")], {}, "eval_set", "no mask symbol '_'"),
        ([infill(5, "1_2?")], {"mask_symbol": "?"}, "eval_set", "record 'i5' (line 6): the text holds the mask"),
        ([completion(0, "1"), infill(1, "_")], {"gen_length": 2}, "eval_set", "all be completion or all infill"),
    ],
)
def test_bad_records_are_refused_naming_the_record(denoiser, records, kwargs, field, fragment):
    with pytest.raises(InvalidInput) as error:
        encode_records(denoiser, records, **kwargs)
    assert error.value.field == field
    assert fragment in str(error.value)


def _evaluate(denoiser, schedules, **kwargs):
    settings = kwargs.pop("settings", SamplerSettings("count", "random", 1.0, block_length=4))
    encoded = kwargs.pop("encoded", None) or encode_records(denoiser, RECORDS, gen_length=GEN)
    return evaluate(denoiser, encoded, schedules, 8, settings, "exact_match", **kwargs)


SCHEDULES = [named("linear"), named("cos2"), beta(1.0, 0.2), beta(0.4, 0.9)]


def test_a_schedules_outputs_do_not_depend_on_the_others_the_batch_size_or_the_record_subset(denoiser):
    together = _evaluate(denoiser, SCHEDULES, replicates=2, batch_size=7)
    alone = _evaluate(denoiser, [SCHEDULES[2]], replicates=2, batch_size=64)
    subset = _evaluate(denoiser, [SCHEDULES[2]], replicates=2, record_indices=[4, 1])
    assert together.outputs[2] == alone.outputs[0]
    assert subset.outputs[0] == [alone.outputs[0][4], alone.outputs[0][1]]
    assert together.scores.shape == (4, len(RECORDS), 2)
    assert subset.record_indices.tolist() == [4, 1]


def test_replicates_draw_differently_and_the_seed_decides(denoiser):
    first = _evaluate(denoiser, SCHEDULES[:1], replicates=3, seed=1)
    again = _evaluate(denoiser, SCHEDULES[:1], replicates=3, seed=1)
    other = _evaluate(denoiser, SCHEDULES[:1], replicates=3, seed=2)
    assert first.outputs == again.outputs
    assert first.outputs != other.outputs
    by_replicate = [[first.outputs[0][r][p] for r in range(len(RECORDS))] for p in range(3)]
    assert by_replicate[0] != by_replicate[1]


def test_scores_are_the_metric_of_the_decoded_generated_region(denoiser):
    """Answers set to a first run's outputs for even records: a second run scores exactly those 1 and the rest 0."""
    settings = SamplerSettings()  # temperature 0: deterministic
    first = _evaluate(denoiser, SCHEDULES[:2], settings=settings)
    target = first.outputs[1]
    records = [
        completion(i, r.prompt, target[i][0] if i % 2 == 0 else target[i][0] + "9") for i, r in enumerate(RECORDS)
    ]
    encoded = encode_records(denoiser, records, gen_length=GEN)
    second = _evaluate(denoiser, SCHEDULES[:2], settings=settings, encoded=encoded)
    assert second.scores[1, :, 0].tolist() == [1.0, 0.0] * 3
    assert second.mean_scores()[1] == 0.5
    for output in (o[0] for o in second.outputs[1]):
        assert "_" not in output and len(output) <= GEN


class Scripted(Recording):
    """Writes `script` at the end of every row, whatever the input: a model that ends its answer and then goes on."""

    def __init__(self, inner, script: list[int]) -> None:
        super().__init__(inner)
        self.script = script

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = torch.zeros(*ids.shape, self.vocab_size)
        for offset, token in enumerate(self.script, start=ids.shape[1] - len(self.script)):
            logits[:, offset, token] = 10.0
        return logits


def test_a_completion_ends_at_its_first_end_of_text_token(denoiser):
    """Generated "4", end-of-text, "2", padding: the answer is "4"; the "2" after the end does not count."""
    digit = denoiser.codec.encode
    script = [*digit("4"), denoiser.pad_token_id, *digit("2")] + [denoiser.pad_token_id] * (GEN - 3)
    records = [completion(0, "1+3=", "4"), completion(1, "1+3=", "42")]
    scripted = Scripted(denoiser, script)
    encoded = encode_records(scripted, records, gen_length=GEN)
    result = evaluate(scripted, encoded, [named("linear")], 8, SamplerSettings(), "exact_match")
    assert [o[0] for o in result.outputs[0]] == ["4", "4"]
    assert result.scores[0, :, 0].tolist() == [1.0, 0.0]


def test_infill_outputs_are_the_whole_record_with_the_blanks_filled(denoiser):
    texts = ["1_3__6=", "_+_", "99_"]
    encoded = encode_records(denoiser, [infill(i, t) for i, t in enumerate(texts)])
    result = evaluate(denoiser, encoded, SCHEDULES[:2], 4, SamplerSettings("ancestral", temperature=1.0), "exact_match")
    for s in range(2):
        for text, outputs in zip(texts, result.outputs[s], strict=True):
            output = outputs[0]
            kept = [(a, b) for a, b in zip(text, output, strict=False) if a != "_"]
            assert all(a == b for a, b in kept)


def test_nfe_is_model_calls_and_rows_pack_many_schedules_into_one_batch(denoiser):
    recording = Recording(denoiser)
    encoded = encode_records(recording, RECORDS, gen_length=GEN)
    result = evaluate(recording, encoded, SCHEDULES[:2], 8, SamplerSettings(), "exact_match", batch_size=12)
    assert result.nfe == len(recording.inputs)
    assert max(ids.shape[0] for ids, _ in recording.inputs) == 12  # 6 records x 2 schedules in one call
    assert result.row_nfe.shape == (2, len(RECORDS), 1)


def test_evaluation_arguments_are_checked_by_name(denoiser):
    encoded = encode_records(denoiser, RECORDS, gen_length=GEN)
    cases = [
        ({"record_indices": [6]}, "record_indices"),
        ({"replicates": 0}, "replicates"),
        ({"batch_size": 0}, "batch_size"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as error:
            evaluate(denoiser, encoded, SCHEDULES[:1], 8, SamplerSettings(), "exact_match", **kwargs)
        assert error.value.field == field
    with pytest.raises(InvalidInput) as error:
        evaluate(denoiser, encoded, SCHEDULES[:1], 8, SamplerSettings(), "no_such_metric")
    assert error.value.field == "metric"


def test_a_hugging_face_checkpoint_infills_its_own_mask_token_text(tmp_path):
    save_tiny_bert(tmp_path / "bert")
    bert = load_denoiser(tmp_path / "bert", device="cpu")
    data = b'{"id": 1, "masked": "the [MASK] sat on [MASK] mat", "answer": "the cat sat on the mat"}\n'
    records = parse_eval_set(data)
    encoded = encode_records(bert, records)
    assert int(encoded.masked[0]) == 2
    result = evaluate(bert, encoded, [named("linear")], 2, SamplerSettings(), "exact_match")
    words = result.outputs[0][0][0].split()
    assert len(words) == 6 and [words[0], *words[2:4], words[5]] == ["the", "sat", "on", "mat"]
    assert np.isin(result.scores, [0.0, 1.0]).all()
