"""`mdmtune-lm-eval ...` (or `python -m mdmtune.integrations.lm_eval_cli ...`): lm-eval's command line with
`--model mdmtune`.

lm-eval 0.4.13 finds models only in its own registry; this registers mdmtune's (mdmtune.integrations.lm_eval_model)
and hands the arguments, unchanged, to lm-eval's own command line:

    python -m mdmtune.integrations.lm_eval_cli --model mdmtune --model_args checkpoint=CK,schedule=result.json \
        --tasks my_task --include_path tasks/
"""

from __future__ import annotations


def main() -> None:
    try:
        from lm_eval.__main__ import cli_evaluate
    except ImportError:
        raise SystemExit("mdmtune: error: lm-eval is not installed: pip install 'mdmtune[lm-eval]'") from None
    import mdmtune.integrations.lm_eval_model  # noqa: F401  (registers --model mdmtune)

    cli_evaluate()


if __name__ == "__main__":
    main()
