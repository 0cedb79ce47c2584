"""The one place a peft ``PromptTuningConfig`` is built (prompt tuning, Lester et al. 2021), after checking it.

Prompt tuning trains nothing of the model: it learns ``num_virtual_tokens`` embedding vectors (a *soft prompt*)
that are put before every input. For a seq2seq model (task ``SEQ_2_SEQ_LM``) peft allocates one soft prompt for
the encoder and one for the decoder, ``2 * num_virtual_tokens * d_model`` trainable values: 20 tokens at
flan-t5-base's width of 768 are 30,720. Measured with peft 0.21: its prompt-tuning forward and ``generate`` put only
the encoder's half before the input; the decoder's half is counted, saved, and never used, so it gets no gradient
(``tests/test_prompt_tuning.py`` pins both facts).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.config import LabkitError

if TYPE_CHECKING:  # pragma: no cover
    from peft import PromptTuningConfig

MAX_VIRTUAL_TOKENS = 200  # Lester et al. went up to 150; longer soft prompts only eat into the 512-token encoder


def prompt_tuning_config(num_virtual_tokens: int, init_text: str | None, tokenizer_path: str | None,
                         model: Any | None = None) -> "PromptTuningConfig":
    """A seq2seq prompt-tuning config: ``num_virtual_tokens`` soft tokens per transformer stack, initialised from
    the embeddings of ``init_text``'s tokens (repeated to fill; peft's ``TEXT`` init, which reloads the tokenizer
    from ``tokenizer_path``), or from random vectors when ``init_text`` is None. With ``model``, its embedding
    width becomes ``token_dim``. LabkitError naming the setting that cannot work otherwise."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    if not (isinstance(num_virtual_tokens, int) and 1 <= num_virtual_tokens <= MAX_VIRTUAL_TOKENS):
        raise LabkitError(f"prompt_tuning_virtual_tokens must be an integer from 1 to {MAX_VIRTUAL_TOKENS}, got "
                          f"{num_virtual_tokens!r}. Lester et al. 2021 used 1-150; this lab uses 20.")
    if init_text is not None and not (isinstance(init_text, str) and init_text.strip()):
        raise LabkitError(f"The prompt-tuning init text must be a non-empty string (or None for a random init), "
                          f"got {init_text!r}. The lab uses the summarize instruction, 'Summarize the following "
                          "conversation.'")
    if init_text is not None and not tokenizer_path:
        raise LabkitError("Initialising the soft prompt from text needs the tokenizer's folder or Hub id "
                          "(tokenizer_path): peft reloads the tokenizer from it to turn the text into tokens.")
    kwargs: dict[str, Any] = {}
    if model is not None:
        kwargs["token_dim"] = model.get_input_embeddings().weight.shape[-1]
    if init_text is None:
        return PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=num_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.RANDOM, **kwargs)
    return PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=num_virtual_tokens,
                              prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=init_text,
                              tokenizer_name_or_path=str(tokenizer_path), **kwargs)
