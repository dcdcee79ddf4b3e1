"""Scorers of the paper's answer tasks: GSM8K, Hendrycks MATH, BIG-Bench Hard.

Each follows the harness a user already trusts, so a tuned schedule's score means what theirs means:
- GSM8K: lm-evaluation-harness's gsm8k task (version 3): the output is cut at the task's stop sequences, the answer
  is taken by its "strict-match" filter (the first `#### n`) or its "flexible-extract" filter (the last number),
  and compared after its exact_match normalization (commas, `$`, everything up to `#### `, a final `.` removed;
  case ignored) with the reference, GSM8K's full solution or a bare number. One addition, documented: trailing
  zeros of a decimal are dropped on both sides ("18.00" equals "18"). A missing answer is lm-eval's "[invalid]".
- MATH: the final answer of a solution (the last `\\boxed{...}`, else the text after the last "the answer is") is
  compared with the reference's for mathematical equivalence by math-verify (Hugging Face's verifier: fractions,
  LaTeX or plain text, intervals, sets, units), not by rules of our own.
- BBH: lm-eval's bbh cot_fewshot task (version 4): cut at its stop sequences, the text after "the answer is" up to
  the last character of that line (the period), compared exactly with the target.
Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import re
import threading
from types import ModuleType

from mdmtune.data.evalsets import EvalRecord, where
from mdmtune.errors import InvalidInput

INVALID = "[invalid]"
"""What lm-eval's regex filter yields when it finds no answer (it never equals a reference)."""

GSM8K_STOPS = ("Question:", "</s>", "<|im_end|>")
GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
GSM8K_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
GSM8K_IGNORE = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))
_TRAILING_ZEROS = re.compile(r"^(-?\d+)\.0*$|^(-?\d+\.\d*?)0+$")

BBH_STOPS = ("</s>", "Q", "\n\n")
BBH_ANSWER = re.compile(r"(?<=the answer is )(.*)(?=.)")


def cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the first of the stop sequences (what a generate-until harness would have produced)."""
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end]


# gsm8k ---------------------------------------------------------------------------------------------------------


def gsm8k_extract(output: str, extraction: str) -> str:
    """lm-eval's answer filter: "strict" takes the first `#### n`, "flexible" the last number-like run."""
    text = cut_at_stops(output, GSM8K_STOPS)
    if extraction == "strict":
        found = GSM8K_STRICT.findall(text)
        return found[0].strip() if found else INVALID
    matches = GSM8K_FLEXIBLE.findall(text)
    if not matches:
        return INVALID
    last = matches[-1]
    return next((group for group in last if group), "").strip()


def gsm8k_normalize(text: str) -> str:
    """lm-eval's exact_match normalization for gsm8k, then trailing decimal zeros dropped ("18.00" -> "18")."""
    for pattern in GSM8K_IGNORE:
        text = pattern.sub("", text)
    text = text.strip().lower()
    zeros = _TRAILING_ZEROS.match(text)
    if zeros:
        text = zeros.group(1) or zeros.group(2)
    return text


def check_gsm8k(record: EvalRecord) -> None:
    if not re.search(r"\d", gsm8k_normalize(record.answer)):
        raise InvalidInput("answer", f"{where(record)}: gsm8k needs a number in the answer, got {record.answer!r}")


def gsm8k_score(output: str, record: EvalRecord, extraction: str = "flexible") -> float:
    """1 when the extracted answer equals the reference after normalization."""
    check_gsm8k(record)
    return float(gsm8k_normalize(gsm8k_extract(output, extraction)) == gsm8k_normalize(record.answer))


# math ----------------------------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(r"answer is[:\s]*(.+)", re.IGNORECASE)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None when there is none."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i].strip()
    return None


def math_final_answer(text: str) -> str | None:
    """The last boxed answer, else what follows the last "the answer is" on its line (a final period and `$`s
    removed); None when the text states no answer."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    found = _ANSWER_IS.findall(text)
    if not found:
        return None
    answer = found[-1].strip().rstrip(".").strip()
    return answer.strip("$").strip() or None


def _math_verify() -> ModuleType:
    try:
        import math_verify
    except ImportError:
        raise InvalidInput(
            "metric", "math needs the math-verify package: pip install 'mdmtune[math]' (or pip install math-verify)"
        ) from None
    return math_verify


def check_math(record: EvalRecord) -> None:
    _math_verify()
    if not record.answer.strip():
        raise InvalidInput("answer", f"{where(record)}: math needs a reference answer")


def _reference(answer: str) -> str:
    """A reference is a bare answer ("\\frac{1}{2}") or a whole solution with a boxed answer."""
    boxed = last_boxed(answer)
    return boxed if boxed is not None else answer.strip().strip("$")


def math_equivalent(predicted: str, reference: str) -> bool:
    """Mathematical equivalence of two final answers, by math-verify (both read as LaTeX, or as plain text)."""
    verifier = _math_verify()
    if predicted.strip() == reference.strip():
        return True
    # math-verify bounds its work with SIGALRM, which only the main thread may use; elsewhere it runs unbounded.
    limit = 5 if threading.current_thread() is threading.main_thread() else None
    gold = verifier.parse(f"${reference}$", parsing_timeout=limit)
    guess = verifier.parse(f"${predicted}$", parsing_timeout=limit)
    if not gold or not guess:
        return False
    return bool(verifier.verify(gold, guess, timeout_seconds=limit))


def math_score(output: str, record: EvalRecord) -> float:
    """1 when the output's final answer is mathematically equal to the reference's."""
    check_math(record)
    predicted = math_final_answer(output)
    return float(predicted is not None and math_equivalent(predicted, _reference(record.answer)))


# bbh -----------------------------------------------------------------------------------------------------------


def bbh_extract(output: str) -> str:
    """lm-eval's bbh filter: after the first "the answer is", that line without its last character."""
    found = BBH_ANSWER.findall(cut_at_stops(output, BBH_STOPS))
    return found[0].strip() if found else INVALID


def check_bbh(record: EvalRecord) -> None:
    if not record.answer.strip():
        raise InvalidInput("answer", f"{where(record)}: bbh needs the target answer")


def bbh_score(output: str, record: EvalRecord) -> float:
    """1 when the extracted answer equals the target exactly (case counts, as in lm-eval)."""
    check_bbh(record)
    return float(bbh_extract(output) == record.answer.strip())
