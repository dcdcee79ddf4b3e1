"""The special tokens a tokenizer wraps around every text, and where the generated region goes inside them.

Why: a masked LM sees at sampling time what it saw in training, and a model trained with a Hugging Face tokenizer saw
what the tokenizer's own `__call__` made of its text: `[CLS] text [SEP]` for BERT-family tokenizers, `<s> text </s>`
for RoBERTa, `<BOS> text` for LLaDA. Dropping those tokens silently turns a good model into noise. So a record is
encoded as the tokenizer's `__call__` encodes it by default, and the template is read off the tokenizer itself
(never guessed from its class): the default encoding of a text must be `prefix + content + suffix`, where content is
the encoding without special tokens. A completion's generated region goes right after the prompt's content and
before the suffix (`[CLS] prompt <gen> [SEP]`); with a prefix-only template (LLaDA's BOS) it is appended.

Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mdmtune.errors import InvalidInput


@dataclass(frozen=True)
class Template:
    """The special-token ids before and after a text's content; empty lists when special tokens are off."""

    prefix: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()

    def wrap(self, content: Sequence[int]) -> list[int]:
        return [*self.prefix, *content, *self.suffix]

    def to_json(self) -> dict[str, list[int]]:
        return {"prefix": list(self.prefix), "suffix": list(self.suffix)}


NO_TEMPLATE = Template()


def split_template(full: Sequence[int], content: Sequence[int]) -> Template | None:
    """(prefix, suffix) such that full == prefix + content + suffix, or None when full has no such shape.

    With empty content the split is ambiguous ([CLS] [SEP] could be all prefix or all suffix), so it is None too:
    the caller learns the template from a text that has content.
    """
    full, content = list(full), list(content)
    if not content:
        return None
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return Template(tuple(full[:start]), tuple(full[start + len(content) :]))
    return None


def learn_template(encodings: Sequence[tuple[Sequence[int], Sequence[int]]], empty: Sequence[int]) -> Template:
    """The template the tokenizer applies, read from the first text with content; the same for every text.

    `encodings` holds per text (default encoding, encoding without special tokens); `empty` is the default encoding
    of the empty text. Raises InvalidInput (field add_special_tokens) when texts are not all wrapped the same way,
    since then no single place for the generated region exists.
    """
    template: Template | None = None
    for full, content in encodings:
        found = split_template(full, content)
        if found is None:
            continue
        if template is None:
            template = found
        elif found != template:
            raise InvalidInput(
                "add_special_tokens",
                f"the tokenizer wraps texts in different special tokens ({template.to_json()} vs "
                f"{found.to_json()}); turn add_special_tokens off and write them into the texts",
            )
    if template is None:
        if empty:
            raise InvalidInput(
                "add_special_tokens",
                "every text is empty, so the tokenizer's special tokens cannot be placed around a generated "
                "region; turn add_special_tokens off",
            )
        return NO_TEMPLATE
    return template
