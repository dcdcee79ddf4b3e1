"""`lm_eval --model mdmtune`: lm-evaluation-harness generates through mdmtune's sampler with a tuned schedule.

    python -m mdmtune.integrations.lm_eval_cli --model mdmtune \
        --model_args checkpoint=CK,schedule=runs/n8/result.json --tasks gsm8k

model_args: checkpoint (any checkpoint `mdmtune sample` reads), schedule (a tune / sweep / frontier result or an
`mdmtune export --format json` document; or a, b and steps instead), and optionally gen_length, block_length,
steps_of_sweep (sweep), budget (frontier), temperature, remasking, sampler, seed, cfg_scale, confidence_dtype,
family, trust_remote_code, add_special_tokens, chat_template, batch_size. Every context is one completion record:
encoded, sampled and decoded exactly as `mdmtune sample` does it (same template, same end-of-text cut), so at
temperature 0 a task scores what `mdmtune sample` scores on the same records. The generated length is the
schedule's gen_length (a masked diffusion model fills a fixed region; `max_gen_toks` is not used); each
generation is cut before the first of the request's `until` strings. Only generate_until is supported: a masked
diffusion model has no left-to-right likelihood, and loglikelihood requests raise a NotImplementedError that says so.

Registration: importing this module registers the model type "mdmtune" with lm-eval's registry. lm-eval 0.4.13
does not read entry points, so use the `mdmtune-lm-eval` command (or `python -m mdmtune.integrations.lm_eval_cli`),
which registers it and runs lm-eval's own command line, or `import mdmtune.integrations.lm_eval_model` before calling
`lm_eval.simple_evaluate(model="mdmtune", ...)`. The package also declares the `lm_eval.models` entry point that
lm-eval's plugin discovery (upstream PR #4013, not in 0.4.13) reads.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from mdmtune.errors import InvalidInput

LOGLIKELIHOOD_ERROR = (
    "mdmtune's lm-eval model generates with a masked diffusion sampler and has no left-to-right likelihood: "
    "loglikelihood and loglikelihood_rolling (multiple-choice and perplexity tasks) are not supported; "
    "use generate_until tasks"
)


@register_model("mdmtune")
class MdmtuneLM(LM):
    """lm-eval's LM over an mdmtune Denoiser and a tuned schedule; generate_until only."""

    def __init__(
        self,
        checkpoint: str,
        schedule: str | None = None,
        a: float | None = None,
        b: float | None = None,
        name: str | None = None,
        steps: int | None = None,
        gen_length: int | None = None,
        block_length: int | None = None,
        budget: int | None = None,
        sampler: str = "count",
        remasking: str = "low_confidence",
        temperature: float = 0.0,
        cfg_scale: float = 0.0,
        confidence_dtype: str = "model",
        seed: int = 0,
        family: str = "auto",
        trust_remote_code: bool = False,
        add_special_tokens: bool = True,
        chat_template: bool = False,
        batch_size: int | str | None = 64,
        device: str | None = None,
        **ignored: Any,
    ) -> None:
        super().__init__()
        from mdmtune.export import TunedSchedule, load_tuned
        from mdmtune.models.loading import load_denoiser
        from mdmtune.sampling import SamplerSettings

        if schedule is not None:
            if a is not None or b is not None or name is not None:
                raise InvalidInput("schedule", "give schedule=RESULT, or a, b (or name) with steps, not both")
            self.tuned = load_tuned(str(schedule), steps=steps, budget=budget, gen_length=gen_length,
                                    block_length=block_length)  # fmt: skip
        else:
            if steps is None:
                raise InvalidInput("steps", "give schedule=RESULT, or a and b (or name) with steps")
            label = name or f"beta({a:g},{b:g})"
            self.tuned = TunedSchedule(label, _float(a), _float(b), int(steps), gen_length, block_length)
        if self.tuned.gen_length is None:
            raise InvalidInput(
                "gen_length", "the schedule records no generation length; add gen_length=... to model_args"
            )
        self.settings = SamplerSettings(
            sampler,
            remasking,
            float(temperature),
            self.tuned.block_length,
            cfg_scale=float(cfg_scale),
            confidence_dtype=confidence_dtype,
        )
        self.seed = int(seed)
        self.add_special_tokens = bool(add_special_tokens)
        self.chat_template = bool(chat_template)
        self.batch = 64 if batch_size in (None, "auto") or str(batch_size).startswith("auto") else int(batch_size)
        kwargs = {"device": device} if device else {}
        self.denoiser = load_denoiser(str(checkpoint), trust_remote_code=bool(trust_remote_code),
                                      family=family, **kwargs)  # fmt: skip

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Sample every context as one completion record of `mdmtune sample`; cut each at its `until` strings."""
        from mdmtune.data.evalsets import EvalRecord
        from mdmtune.tuning.evaluation import encode_records, evaluate

        if not requests:
            return []
        contexts = [request.args[0] for request in requests]
        records = [
            EvalRecord(id=i, kind="completion", prompt=text, masked=None, answer="", line=i + 1)
            for i, text in enumerate(contexts)
        ]
        encoded = encode_records(
            self.denoiser,
            records,
            gen_length=self.tuned.gen_length,
            add_special_tokens=self.add_special_tokens,
            chat_template=self.chat_template,
        )
        result = evaluate(
            self.denoiser,
            encoded,
            [self.tuned.schedule()],
            self.tuned.steps,
            self.settings,
            "exact_match",
            seed=self.seed,
            batch_size=self.batch,
        )
        outputs = []
        for request, samples in zip(requests, result.outputs[0], strict=True):
            text = samples[0]
            for stop in _until(request.args[1] if len(request.args) > 1 else None):
                text = text.split(stop, 1)[0]
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", request.args, text)
        return outputs

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise NotImplementedError(LOGLIKELIHOOD_ERROR)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError(LOGLIKELIHOOD_ERROR)


def _until(gen_kwargs: Any) -> list[str]:
    if not isinstance(gen_kwargs, dict):
        return []
    until = gen_kwargs.get("until") or []
    return [until] if isinstance(until, str) else [s for s in until if s]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
