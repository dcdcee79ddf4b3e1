"""The unit the tuner repeats: sample an eval set under many schedules at once and score every output.

Two steps, because encoding is paid once per job and sampling once per batch of trials:
- `encode_records(denoiser, records, gen_length=..., mask_symbol=...) -> EncodedSet`: token ids for every record,
  as the tokenizer's own `__call__` encodes the text by default (its special tokens included, mdmtune.models.template):
  completion = prefix + prompt tokens + gen_length mask tokens + suffix, infill = the text with each mask symbol one
  mask token. All records are left-padded to one common length (pad_token_id, attention mask 0), so a record's
  input is the same whatever batch it lands in.
- `evaluate(denoiser, encoded, schedules, steps, settings, metric, ...) -> Evaluation`: rows (schedule x record x
  replicate) packed into batches of `batch_size`, schedules varying fastest, so one model batch holds many trials.
  The seed of a (record, replicate) is derive_seed(seed, record index, replicate): the same for every schedule
  (common random numbers) and for every subset of records (the tuner's growing rungs reuse the draws).
- `evaluate_decoder(denoiser, encoded, parameters, settings, metric, ...)`: the same for an adaptive decoder
  (settings.decoder threshold or entropy), one row per (parameter value, record, replicate): many thresholds share
  each model batch, and a record's seed is the one a schedule gets (so decoders and schedules are paired).
Outputs are the generated region (completion) or the whole record (infill: the metric sees the filled-in text),
decoded by denoiser.codec.decode, which drops special tokens. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from mdmtune.core.schedules import Schedule, alpha_grids, check_steps
from mdmtune.data.evalsets import EvalRecord, EvalSet, where
from mdmtune.errors import InvalidInput
from mdmtune.metrics import Metric, get_metric, score_outputs
from mdmtune.models.base import Denoiser
from mdmtune.models.template import NO_TEMPLATE, Template, learn_template
from mdmtune.sampling import SampleOutput, SamplerSettings, derive_seed, sample, sample_adaptive, sample_hybrid

BatchHook = Callable[[int, int], None]
"""on_batch(rows_done, rows_total), called after every model batch; raising from it stops the evaluation."""


@dataclass(frozen=True)
class EncodedSet:
    """An eval set as model input: ids [R, L] left-padded to one length, and where each record generates.

    attention_mask [R, L] (1 = real token) is None when no record is padded. lengths [R]: real tokens per record;
    masked [R]: tokens each record generates. gen_region: (L - len(suffix) - gen_length, gen_length) for completion,
    None for infill. template: the special tokens wrapped around every record (add_special_tokens says whether they
    were asked for).
    """

    records: tuple[EvalRecord, ...]
    kind: str
    ids: torch.Tensor
    attention_mask: torch.Tensor | None
    lengths: np.ndarray
    masked: np.ndarray
    gen_length: int | None
    template: Template = NO_TEMPLATE
    add_special_tokens: bool = True

    @property
    def gen_region(self) -> tuple[int, int] | None:
        if self.gen_length is None:
            return None
        return (self.ids.shape[1] - len(self.template.suffix) - self.gen_length, self.gen_length)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class Evaluation:
    """Scores and outputs of S schedules on R records x P replicates.

    scores [S, R, P]: per-record metric scores (NaN for a set-level metric); set_scores [S, P]: the metric's
    aggregate over the records, per replicate; outputs[s][r][p]: decoded text; row_nfe [S, R, P]: model calls each
    row took part in; nfe: model calls actually run (one per (sub-)batch call); record_indices [R]: which records
    of the EncodedSet were used, in order.
    """

    scores: np.ndarray
    set_scores: np.ndarray
    outputs: list[list[list[str]]]
    nfe: int
    row_nfe: np.ndarray
    record_indices: np.ndarray

    def mean_scores(self) -> np.ndarray:
        """The score of each schedule [S]: the metric's set score, averaged over replicates."""
        return self.set_scores.mean(axis=1)


def _encode_text(encode: Callable[[str], list[int]], text: str, record: EvalRecord) -> list[int]:
    try:
        return list(encode(text))
    except InvalidInput as error:
        raise InvalidInput("eval_set", f"{where(record)}: {error.message}") from None


def record_text(denoiser: Denoiser, record: EvalRecord, mask_symbol: str | None = None, chat: bool = False) -> str:
    """The text a record conditions on, as the tokenizer will read it.

    Completion: the prompt, or the chat rendered by the tokenizer's chat template (`messages`, or the prompt as one
    user turn when `chat` is on). Infill: the masked text with each mask symbol written as the tokenizer's own mask
    token, so the whole text is tokenized in one piece exactly as the tokenizer's `__call__` would.
    """
    codec = denoiser.codec
    if record.kind == "completion":
        if record.messages is None and not chat:
            return record.prompt or ""
        messages = [dict(m) for m in record.messages or [{"role": "user", "content": record.prompt or ""}]]
        render = getattr(codec, "render_chat", None)
        if render is None:
            raise InvalidInput("chat_template", "this checkpoint's tokenizer has no chat template (only hf ones do)")
        try:
            return str(render(messages))
        except InvalidInput as error:
            raise InvalidInput(error.field, f"{where(record)}: {error.message}") from None
    symbol = codec.mask_token if mask_symbol is None else mask_symbol
    if not codec.mask_token:
        raise InvalidInput("eval_set", "the model's mask id is no token of its tokenizer: infill texts cannot name it")
    text = record.masked or ""
    if symbol not in text:
        raise InvalidInput("eval_set", f"{where(record)}: no mask symbol {symbol!r} in the masked text")
    if symbol != codec.mask_token and codec.mask_token in text:
        raise InvalidInput("eval_set", f"{where(record)}: the text holds the mask token besides {symbol!r}")
    return text.replace(symbol, codec.mask_token)


def _content(denoiser: Denoiser, record: EvalRecord, text: str, mask_symbol: str | None) -> list[int]:
    """The record's text tokens (no special tokens); InvalidInput naming the record where the mask tokens are off.

    Completion: the prompt must not hold the mask token. Infill: each mask symbol must have become exactly one mask
    token.
    """
    mask_id = denoiser.mask_token_id
    content = _encode_text(denoiser.codec.encode, text, record)
    if record.kind == "completion":
        if mask_id in content:
            raise InvalidInput("eval_set", f"{where(record)}: the prompt contains the mask token")
        return content
    symbol = denoiser.codec.mask_token if mask_symbol is None else mask_symbol
    expected = (record.masked or "").count(symbol)
    if content.count(mask_id) != expected:
        raise InvalidInput(
            "eval_set",
            f"{where(record)}: {expected} mask symbols became {content.count(mask_id)} mask tokens; the tokenizer "
            "merges the mask symbol with its neighbours",
        )
    return content


def encode_records(
    denoiser: Denoiser,
    records: EvalSet | Sequence[EvalRecord],
    *,
    gen_length: int | None = None,
    mask_symbol: str | None = None,
    add_special_tokens: bool = True,
    chat_template: bool = False,
) -> EncodedSet:
    """Encode every record for `denoiser`; lengths (special tokens included) are checked against the model's maximum.

    add_special_tokens True: the tokenizer's own template (mdmtune.models.template), as its `__call__` encodes by
    default; False: the texts' tokens alone. chat_template: completion prompts become one user turn of the chat
    template (records with `messages` always use it).
    """
    items = tuple(records.records if isinstance(records, EvalSet) else records)
    if not items:
        raise InvalidInput("eval_set", "no records to encode")
    kind = items[0].kind
    if any(r.kind != kind for r in items):
        raise InvalidInput("eval_set", "records of one set must all be completion or all infill")
    if kind == "completion" and (
        isinstance(gen_length, bool) or not isinstance(gen_length, (int, np.integer)) or gen_length < 1
    ):
        raise InvalidInput("gen_length", f"completion records need an integer gen_length >= 1, got {gen_length!r}")
    if mask_symbol is not None and not mask_symbol:
        raise InvalidInput("mask_symbol", "must be a non-empty text")
    if chat_template and kind != "completion":
        raise InvalidInput("chat_template", "applies to completion records only")
    texts = [record_text(denoiser, r, mask_symbol, chat_template) for r in items]
    contents = [_content(denoiser, r, text, mask_symbol) for r, text in zip(items, texts, strict=True)]
    template = _template(denoiser, items, texts, contents) if add_special_tokens else NO_TEMPLATE
    generated = [denoiser.mask_token_id] * int(gen_length) if kind == "completion" else []  # type: ignore[arg-type]
    encoded = [template.wrap(content + generated) for content in contents]
    limit = getattr(denoiser, "max_length", None)
    for record, ids in zip(items, encoded, strict=True):
        if limit is not None and len(ids) > limit:
            raise InvalidInput("eval_set", f"{where(record)} is {len(ids)} tokens, over the model's maximum {limit}")
    padded = _pad(denoiser, items, kind, encoded, int(gen_length) if kind == "completion" else None)  # type: ignore[arg-type]
    return replace(padded, template=template, add_special_tokens=bool(add_special_tokens))


def _template(
    denoiser: Denoiser, items: tuple[EvalRecord, ...], texts: list[str], contents: list[list[int]]
) -> Template:
    """The tokenizer's template, learned from the records' own texts: completion = prefix + prompt + generated region
    + suffix, infill = prefix + text + suffix (mdmtune.models.template)."""
    encode_default = getattr(denoiser.codec, "encode_default", None)
    if encode_default is None:
        return NO_TEMPLATE
    fulls = [_encode_text(encode_default, text, record) for record, text in zip(items, texts, strict=True)]
    return learn_template(list(zip(fulls, contents, strict=True)), encode_default(""))


def _pad(
    denoiser: Denoiser, items: tuple[EvalRecord, ...], kind: str, encoded: list[list[int]], gen_length: int | None
) -> EncodedSet:
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
    width = int(lengths.max())
    ids = torch.full((len(encoded), width), denoiser.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, tokens in enumerate(encoded):
        if tokens:
            ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        attention[row, width - len(tokens) :] = 1
    masked = (ids == denoiser.mask_token_id).sum(dim=1).numpy()
    padded = bool((lengths < width).any())
    return EncodedSet(items, kind, ids, attention if padded else None, lengths, masked, gen_length)


def _alphas(schedules: Sequence[Schedule] | np.ndarray, steps: int) -> np.ndarray:
    check_steps(steps)
    if isinstance(schedules, np.ndarray):
        if schedules.ndim != 2 or schedules.shape[1] != steps + 1:
            raise InvalidInput("schedules", f"alpha grids must have shape (S, {steps + 1}), got {schedules.shape}")
        return schedules.astype(np.float64)
    if not schedules:
        raise InvalidInput("schedules", "need at least one schedule")
    return alpha_grids(list(schedules), steps)


def _indices(record_indices: Sequence[int] | np.ndarray | None, total: int) -> np.ndarray:
    if record_indices is None:
        return np.arange(total)
    indices = np.asarray(record_indices, dtype=np.int64).reshape(-1)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= total:
        raise InvalidInput("record_indices", f"must be a non-empty list of indices in [0, {total})")
    return indices


def _positive(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInput(field, f"must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _Rows:
    """Every (record position, replicate, variant) row of one evaluation, variants fastest, with what each row samples
    from: its record's index in the EncodedSet, its seed, its attention mask. A variant is a schedule or a decoder's
    parameter value; a (record, replicate) has the same seed under every variant (common random numbers)."""

    indices: np.ndarray
    table: np.ndarray
    records: np.ndarray
    seeds: list[int]
    attention: torch.Tensor | None

    @classmethod
    def build(cls, encoded: EncodedSet, indices: np.ndarray, replicates: int, variants: int, seed: int) -> _Rows:
        grid = np.stack(np.meshgrid(np.arange(len(indices)), np.arange(replicates), np.arange(variants), indexing="ij"))
        table = grid.reshape(3, -1).T
        records = indices[table[:, 0]]
        seeds = [derive_seed(seed, int(r), int(p)) for r, p in zip(records, table[:, 1], strict=True)]
        attention = None if encoded.attention_mask is None else encoded.attention_mask[records]
        return cls(indices, table, records, seeds, attention)

    def __len__(self) -> int:
        return len(self.table)


@dataclass(frozen=True)
class _Run:
    """One evaluation under way: the model, the encoded set, every row, and each row's decoded text
    texts[variant][record position][replicate] and model calls row_nfe [V, R, P], filled in as batches finish."""

    denoiser: Denoiser
    encoded: EncodedSet
    rows: _Rows
    texts: list[list[list[str]]]
    row_nfe: np.ndarray

    @classmethod
    def start(cls, denoiser: Denoiser, encoded: EncodedSet, rows: _Rows, variants: int, replicates: int) -> _Run:
        texts = [[[""] * replicates for _ in rows.indices] for _ in range(variants)]
        return cls(denoiser, encoded, rows, texts, np.zeros((variants, len(rows.indices), replicates), dtype=np.int64))

    def inputs(self, part: slice) -> tuple[torch.Tensor, list[int], torch.Tensor | None]:
        """The ids [B, L], seeds and attention mask of the rows `part`, as the samplers take them."""
        attention = None if self.rows.attention is None else self.rows.attention[part]
        return self.encoded.ids[self.rows.records[part]], self.rows.seeds[part], attention

    def put(self, part: slice, result: SampleOutput) -> None:
        """Decode the rows `part` from a sampling result whose i-th row is the part's i-th."""
        records = self.rows.records[part]
        for offset, (position, replicate, which) in enumerate(self.rows.table[part]):
            text = _decode(self.denoiser, self.encoded, int(records[offset]), result.ids[offset])
            self.texts[which][position][replicate] = text
            self.row_nfe[which, position, replicate] = result.row_nfe[offset]

    def scored(self, metric: Metric, nfe: int) -> Evaluation:
        scores, set_scores = _score(metric, self.encoded, self.rows.indices, self.texts)
        return Evaluation(scores, set_scores, self.texts, nfe, self.row_nfe, self.rows.indices)


def _prepare(
    denoiser: Denoiser,
    encoded: EncodedSet,
    metric: Metric | str,
    record_indices: Sequence[int] | np.ndarray | None,
    replicates: int,
    variants: int,
    seed: int,
) -> tuple[Metric, _Run]:
    """The scorer (checked against the records used before any model call) and the run of every row."""
    indices = _indices(record_indices, len(encoded))
    scorer = get_metric(metric) if isinstance(metric, str) else metric
    scorer.check_records([encoded.records[i] for i in indices])
    rows = _Rows.build(encoded, indices, replicates, variants, seed)
    return scorer, _Run.start(denoiser, encoded, rows, variants, replicates)


def evaluate(
    denoiser: Denoiser,
    encoded: EncodedSet,
    schedules: Sequence[Schedule] | np.ndarray,
    steps: int,
    settings: SamplerSettings,
    metric: Metric | str,
    record_indices: Sequence[int] | np.ndarray | None = None,
    replicates: int = 1,
    seed: int = 0,
    batch_size: int = 64,
    on_batch: BatchHook | None = None,
) -> Evaluation:
    """Sample and score every (schedule, record, replicate); schedules are Schedule objects or alpha grids [S, N+1]."""
    alphas = _alphas(schedules, steps)
    replicates, batch_size = _positive("replicates", replicates), _positive("batch_size", batch_size)
    scorer, run = _prepare(denoiser, encoded, metric, record_indices, replicates, alphas.shape[0], seed)
    nfe, total = 0, len(run.rows)
    for start in range(0, total, batch_size):
        part = slice(start, start + batch_size)
        ids, seeds, attention = run.inputs(part)
        result = sample(denoiser, ids, alphas[run.rows.table[part, 2]], settings, seeds, encoded.gen_region, attention)
        run.put(part, result)
        nfe += result.nfe
        if on_batch is not None:
            on_batch(min(start + batch_size, total), total)
    return run.scored(scorer, nfe)


def evaluate_decoder(
    denoiser: Denoiser,
    encoded: EncodedSet,
    parameters: Sequence[float] | np.ndarray,
    settings: SamplerSettings,
    metric: Metric | str,
    record_indices: Sequence[int] | np.ndarray | None = None,
    replicates: int = 1,
    seed: int = 0,
    batch_size: int = 64,
    on_batch: BatchHook | None = None,
    schedule: Schedule | None = None,
    steps: int | None = None,
) -> Evaluation:
    """Sample and score every (parameter, record, replicate) with an adaptive decoder; parameters are thresholds
    (threshold and hybrid decoders) or entropy bounds (entropy decoder). The Evaluation's first axis runs over
    `parameters`.

    All rows go to one continuously batched sampling call (at most batch_size rows per model call, a finished row's
    place taken by the next one); on_batch(rows finished, rows) after every model call. The hybrid decoder also
    needs `schedule` and `steps` (its floor plan) and runs in fixed batches of batch_size rows (its steps are the
    schedule's, shared by the batch), on_batch after each batch."""
    values = np.asarray(parameters, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InvalidInput("parameters", "need at least one threshold or entropy bound")
    replicates, batch_size = _positive("replicates", replicates), _positive("batch_size", batch_size)
    scorer, run = _prepare(denoiser, encoded, metric, record_indices, replicates, values.size, seed)
    row_values = values[run.rows.table[:, 2]]
    if settings.decoder != "hybrid":
        ids, seeds, attention = run.inputs(slice(None))
        result = sample_adaptive(
            denoiser,
            ids,
            settings,
            seeds,
            encoded.gen_region,
            attention,
            row_values,
            max_batch=batch_size,
            on_call=on_batch,
        )
        run.put(slice(None), result)
        return run.scored(scorer, int(result.nfe))
    if schedule is None or steps is None:
        raise InvalidInput("schedule", "the hybrid decoder needs a schedule and steps (its floor plan)")
    nfe = _run_hybrid(run, _alphas([schedule], steps), settings, row_values, batch_size, on_batch)
    return run.scored(scorer, nfe)


def _run_hybrid(
    run: _Run,
    plan: np.ndarray,
    settings: SamplerSettings,
    taus: np.ndarray,
    batch_size: int,
    on_batch: BatchHook | None,
) -> int:
    """The hybrid decoder in fixed batches of batch_size rows, every row on the same floor plan; returns its NFEs."""
    nfe, total = 0, len(run.rows)
    for start in range(0, total, batch_size):
        part = slice(start, start + batch_size)
        ids, seeds, attention = run.inputs(part)
        alphas = np.repeat(plan, len(ids), axis=0)
        region = run.encoded.gen_region
        result = sample_hybrid(run.denoiser, ids, alphas, settings, seeds, region, attention, taus[part])
        run.put(part, result)
        nfe += int(result.nfe)
        if on_batch is not None:
            on_batch(min(start + batch_size, total), total)
    return nfe


def _decode(denoiser: Denoiser, encoded: EncodedSet, record: int, ids: torch.Tensor) -> str:
    """The generated region (completion) or the whole unpadded record (infill), special tokens dropped.

    A completion ends at the first of the model's end tokens (end-of-text, end-of-turn: denoiser.end_token_ids), as
    LLaDA's evaluation cuts generations: whatever the model wrote after it is not part of the answer (and must not
    rescue a wrong one). Other special tokens (padding, say) are dropped wherever they stand.
    """
    if encoded.gen_region is not None:
        start, length = encoded.gen_region
        tokens = ids[start : start + length].tolist()
        ends = set(getattr(denoiser, "end_token_ids", (denoiser.pad_token_id,)))
        cut = next((i for i, token in enumerate(tokens) if token in ends), len(tokens))
        return denoiser.codec.decode(tokens[:cut])
    keep = int(encoded.lengths[record])
    return denoiser.codec.decode(ids[ids.shape[0] - keep :].tolist() if keep else [])


def _score(
    metric: Metric, encoded: EncodedSet, indices: np.ndarray, outputs: list[list[list[str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores [S, R, P] and set scores [S, P].

    A per-record metric is asked once for every distinct (record, output) of the whole batch, in one call: schedules
    often write the same text for a record, and a costly metric (pass_at_1 runs a program) then runs it once, with
    all distinct programs of the batch in parallel. Metrics are deterministic, so this changes no score.
    """
    records = [encoded.records[i] for i in indices]
    n_schedules, replicates = len(outputs), len(outputs[0][0])
    scores = np.full((n_schedules, len(records), replicates), np.nan)
    set_scores = np.empty((n_schedules, replicates))
    if not metric.per_record:
        for s in range(n_schedules):
            for p in range(replicates):
                texts = [outputs[s][r][p] for r in range(len(records))]
                scores[s, :, p], set_scores[s, p] = score_outputs(metric, texts, records)
        return scores, set_scores
    distinct = sorted(
        {(r, outputs[s][r][p]) for s in range(n_schedules) for r in range(len(records)) for p in range(replicates)}
    )
    values, _ = score_outputs(metric, [text for _, text in distinct], [records[r] for r, _ in distinct])
    lookup = dict(zip(distinct, values.tolist(), strict=True))
    for s in range(n_schedules):
        for p in range(replicates):
            scores[s, :, p] = [lookup[(r, outputs[s][r][p])] for r in range(len(records))]
    set_scores[:] = scores.mean(axis=1)
    return scores, set_scores
