"""Each family's conventions, on tiny random-weight checkpoints written by transformers' save_pretrained.

What is checked is always against the tokenizer's own behaviour (its `__call__`, its `apply_chat_template`), never
against ids written by hand: the BERT template ([CLS] ... [SEP]), a BOS-only template (LLaDA), a list of end ids in
the generation config (LLaDA: end-of-text and end-of-turn), shifted logits (Dream), a chat template, the mask id from
config.json (LLaDA) and a mask token appended after the vocabulary (MDLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _model_builders import WORDS

from mdmtune.data.evalsets import EvalRecord
from mdmtune.errors import InvalidInput
from mdmtune.models.families import detect_family
from mdmtune.models.loading import load_denoiser
from mdmtune.tuning.evaluation import _decode, encode_records

pytest.importorskip("transformers")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<eot>"]
CHAT = (
    "{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant {% endif %}"
)


def save_checkpoint(
    folder: Path,
    *,
    template: str | None = "[CLS] $A [SEP]",
    mask: bool = True,
    eos: str | None = None,
    chat: bool = False,
    config_extra: dict | None = None,
    generation: dict | None = None,
    extra_vocab: int = 0,
):
    """A tiny BertForMaskedLM with a real WordLevel tokenizer whose post-processor is `template`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    specials = [t for t in SPECIALS if mask or t != "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if template is not None:
        used = sorted({part for part in template.split() if part in vocab})
        backend.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, vocab[t]) for t in used]
        )
    named = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    named["additional_special_tokens"] = ["<s>", "</s>", "<eot>"]
    if mask:
        named["mask_token"] = "[MASK]"
    if eos is not None:
        named["eos_token"] = eos
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **named)
    if chat:
        tokenizer.chat_template = CHAT
    config = BertConfig(
        vocab_size=len(tokenizer) + extra_vocab,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        **(config_extra or {}),
    )
    torch.manual_seed(0)
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if generation is not None:
        (folder / "generation_config.json").write_text(json.dumps(generation))
    return model, tokenizer


def completion(i: int, prompt: str) -> EvalRecord:
    return EvalRecord(id=i, kind="completion", prompt=prompt, masked=None, answer="", line=i + 1)


def infill(i: int, masked: str) -> EvalRecord:
    return EvalRecord(id=i, kind="infill", prompt=None, masked=masked, answer="", line=i + 1)


def test_bert_template_wraps_the_text_and_the_generated_region_goes_before_sep(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "ck")
    denoiser = load_denoiser(tmp_path / "ck")
    prompts = ["the cat sat", "a dog ran to it"]
    encoded = encode_records(denoiser, [completion(i, p) for i, p in enumerate(prompts)], gen_length=3)
    mask = tokenizer.mask_token_id
    for row, prompt in enumerate(prompts):
        own = tokenizer(prompt)["input_ids"]  # [CLS] prompt [SEP], as the tokenizer encodes it by default
        expected = own[:-1] + [mask] * 3 + own[-1:]
        assert encoded.ids[row, encoded.ids.shape[1] - len(expected) :].tolist() == expected
    start, length = encoded.gen_region
    assert (encoded.ids[:, start : start + length] == mask).all()
    assert encoded.template.to_json() == {"prefix": [tokenizer.cls_token_id], "suffix": [tokenizer.sep_token_id]}
    plain = encode_records(denoiser, [completion(0, "the cat")], gen_length=2, add_special_tokens=False)
    assert plain.ids[0].tolist() == tokenizer("the cat", add_special_tokens=False)["input_ids"] + [mask] * 2
    assert plain.template.to_json() == {"prefix": [], "suffix": []}


def test_infill_is_encoded_exactly_as_the_tokenizer_encodes_the_text(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "ck")
    denoiser = load_denoiser(tmp_path / "ck")
    encoded = encode_records(denoiser, [infill(0, "the [MASK] sat on [MASK] mat")])
    assert encoded.ids[0].tolist() == tokenizer("the [MASK] sat on [MASK] mat")["input_ids"]
    with_symbol = encode_records(denoiser, [infill(0, "the ? sat on ? mat")], mask_symbol="?")
    assert torch.equal(with_symbol.ids, encoded.ids)


def test_a_bos_only_template_appends_the_generated_region(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "ck", template="<s> $A")
    denoiser = load_denoiser(tmp_path / "ck")
    encoded = encode_records(denoiser, [completion(0, "the cat")], gen_length=4)
    assert encoded.ids[0].tolist() == tokenizer("the cat")["input_ids"] + [tokenizer.mask_token_id] * 4
    assert tokenizer("the cat")["input_ids"][0] == tokenizer.convert_tokens_to_ids("<s>")
    assert encoded.gen_region == (encoded.ids.shape[1] - 4, 4)


def test_every_end_id_of_the_generation_config_cuts_a_completion_and_pad_does_not(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "ck", eos="</s>", generation={"eos_token_id": [7, 6]})
    denoiser = load_denoiser(tmp_path / "ck")
    eot, eos = tokenizer.convert_tokens_to_ids("<eot>"), tokenizer.eos_token_id
    assert (eot, eos) == (7, 6)
    assert denoiser.end_token_ids == (7, 6)
    assert tokenizer.pad_token_id not in denoiser.end_token_ids
    encoded = encode_records(denoiser, [completion(0, "the")], gen_length=5)
    start, _ = encoded.gen_region
    word = tokenizer.convert_tokens_to_ids
    for end in (eot, eos):
        ids = encoded.ids[0].clone()
        ids[start : start + 5] = torch.tensor([word("cat"), tokenizer.pad_token_id, word("sat"), end, word("on")])
        assert _decode(denoiser, encoded, 0, ids) == "cat sat"  # pad dropped where it stands, cut at the end id


def test_mask_id_from_config_for_llada_and_appended_for_mdlm(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "llada", mask=False, config_extra={"mask_token_id": 9})
    llada = load_denoiser(tmp_path / "llada", family="llada")
    assert llada.mask_token_id == 9 and llada.family == "llada"
    assert load_denoiser(tmp_path / "llada", family="llada", mask_token_id=4).mask_token_id == 4  # override wins
    _, tokenizer = save_checkpoint(tmp_path / "mdlm", mask=False, extra_vocab=1)
    mdlm = load_denoiser(tmp_path / "mdlm")
    assert mdlm.family == "mdlm" and mdlm.mask_token_id == len(tokenizer)
    encoded = encode_records(mdlm, [completion(0, "the cat")], gen_length=3)
    assert encoded.ids[0, -4:].tolist() == [len(tokenizer)] * 3 + [tokenizer.sep_token_id]
    with pytest.raises(InvalidInput, match="no token of its tokenizer"):
        encode_records(mdlm, [infill(0, "the [MASK]")])


def test_families_are_detected_from_config_and_tokenizer() -> None:
    class Tok:
        mask_token_id = None

        def __len__(self) -> int:
            return 50257

    assert detect_family({"model_type": "llada"}, Tok()) == "llada"
    assert detect_family({"auto_map": {"AutoModel": "modeling_llada.LLaDAModelLM"}}, Tok()) == "llada"
    assert detect_family({"model_type": "Dream"}, Tok()) == "dream"
    assert detect_family({"model_type": "gpt2", "vocab_size": 50258}, Tok()) == "mdlm"
    assert detect_family({"model_type": "bert", "vocab_size": 30522}, Tok()) == "masked_lm"


def test_the_dream_family_shifts_logits_back_by_one(tmp_path: Path) -> None:
    model, tokenizer = save_checkpoint(tmp_path / "ck")
    dream = load_denoiser(tmp_path / "ck", family="dream")
    assert dream.describe()["shifted_logits"] is True
    ids = torch.tensor([tokenizer("the cat sat")["input_ids"]])
    with torch.no_grad():
        raw = model(input_ids=ids).logits
    expected = torch.cat([raw[:, :1], raw[:, :-1]], dim=1)
    torch.testing.assert_close(dream.logits(ids), expected)
    assert load_denoiser(tmp_path / "ck", family="dream", shifted_logits=False).describe()["shifted_logits"] is False


def test_chat_records_and_chat_prompts_go_through_the_chat_template(tmp_path: Path) -> None:
    _, tokenizer = save_checkpoint(tmp_path / "ck", template="<s> $A", chat=True)
    denoiser = load_denoiser(tmp_path / "ck")
    chat = ({"role": "user", "content": "the cat"},)
    record = EvalRecord(id=0, kind="completion", prompt=None, masked=None, answer="", line=1, messages=chat)
    encoded = encode_records(denoiser, [record], gen_length=2)
    text = tokenizer.apply_chat_template(list(chat), add_generation_prompt=True, tokenize=False)
    assert encoded.ids[0].tolist() == tokenizer(text)["input_ids"] + [tokenizer.mask_token_id] * 2
    wrapped = encode_records(denoiser, [completion(0, "the cat")], gen_length=2, chat_template=True)
    assert torch.equal(wrapped.ids, encoded.ids)
    _, _ = save_checkpoint(tmp_path / "plain")
    with pytest.raises(InvalidInput) as error:
        encode_records(load_denoiser(tmp_path / "plain"), [record], gen_length=2)
    assert error.value.field == "chat_template"


@pytest.mark.parametrize(
    "options",
    [{}, {"eos": "</s>", "generation": {"eos_token_id": [7, 6]}}, {"mask": False, "extra_vocab": 1}],
    ids=["bert", "end-id-list", "mdlm"],
)
def test_upload_metadata_applies_the_loaders_rules(tmp_path: Path, options: dict) -> None:
    """What an API node stores at upload (JSON files only) is what the loader finds in the loaded tokenizer."""
    from mdmtune.models.metadata import read_checkpoint_info

    save_checkpoint(tmp_path / "ck", **options)
    loaded = load_denoiser(tmp_path / "ck")
    declared = read_checkpoint_info(tmp_path / "ck", "hf")
    assert declared.mask_token_id == loaded.mask_token_id
    assert tuple(declared.end_ids) == loaded.end_token_ids
    assert (declared.mask_token or "") == loaded.codec.mask_token
    assert declared.max_length == loaded.max_length


def test_prompt_length_groups_count_the_prompt_not_the_template(tmp_path: Path) -> None:
    """Completion records are grouped by prompt length: the [CLS]/[SEP] the template adds are not the prompt's."""
    from mdmtune.tuning.groups import record_strata

    _, tokenizer = save_checkpoint(tmp_path / "ck")
    denoiser = load_denoiser(tmp_path / "ck")
    prompts = ["the cat", "the cat sat", "a dog ran to it"]
    encoded = encode_records(denoiser, [completion(i, p) for i, p in enumerate(prompts)], gen_length=2)
    expected = [str(len(tokenizer(p, add_special_tokens=False)["input_ids"])) for p in prompts]
    assert record_strata(encoded, range(3))["prompt_length"] == expected
