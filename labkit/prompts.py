"""The course's prompt strings, and prompt building under a token budget.

Templates (character for character as the course's Lab 1 wrote them):

* ``no_prompt``: the raw dialogue.
* ``zero_shot``: ``"\\nSummarize the following conversation.\\n\\n{dialogue}\\n\\nSummary:\\n    "``
  (the course's f-string kept the indentation of its closing quotes).
* ``zero_shot_flan``: FLAN-T5's own template ``"\\nDialogue:\\n\\n{dialogue}\\n\\nWhat was going on?\\n"``.
* ``one_shot`` / ``few_shot``: the course's ``make_prompt``: every example is
  ``"\\nDialogue:\\n\\n{dialogue}\\n\\nWhat was going on?\\n{summary}\\n\\n\\n"`` (the
  ``{summary}\\n\\n\\n`` stop sequence matters to FLAN-T5), then the target in the
  FLAN template.

Labs 2 and 3 use ``summarize_prompt`` (``"Summarize the following conversation.\\n\\n{dialogue}\\n\\nSummary: "``).

The course's few-shot prompt silently overflowed the 512-token encoder
(819 tokens) and the tokenizer's truncation would cut the *end*: the target
dialogue and the question. ``build_prompt`` measures every prompt with the
tokenizer and, when it is too long, drops (or trims) shots farthest from the
target first, so the target dialogue is never cut. Only a target that alone
exceeds the limit is shortened, from its start (the question at the end
survives), and the result says so.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from labkit.config import MAX_SOURCE_TOKENS, LabkitError, suggest

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

ZERO_SHOT_TEMPLATE = "\nSummarize the following conversation.\n\n{dialogue}\n\nSummary:\n    "
FLAN_TEMPLATE = "\nDialogue:\n\n{dialogue}\n\nWhat was going on?\n"
SHOT_TEMPLATE = "\nDialogue:\n\n{dialogue}\n\nWhat was going on?\n{summary}\n\n\n"
SUMMARIZE_TEMPLATE = "Summarize the following conversation.\n\n{dialogue}\n\nSummary: "

STRATEGIES = ("no_prompt", "zero_shot", "zero_shot_flan", "one_shot", "few_shot")
OVERFLOW_MODES = ("drop", "trim")
LONG_TARGET_MODES = ("trim", "error")

Shot = Mapping[str, str] | tuple[str, str]


def no_prompt(dialogue: str) -> str:
    """The course's first attempt: the dialogue alone, no instruction."""
    return dialogue


def zero_shot_prompt(dialogue: str) -> str:
    """The course's zero-shot instruction prompt (Lab 1, section 3.1)."""
    return ZERO_SHOT_TEMPLATE.format(dialogue=dialogue)


def flan_prompt(dialogue: str) -> str:
    """FLAN-T5's own dialogue template (Lab 1, section 3.2)."""
    return FLAN_TEMPLATE.format(dialogue=dialogue)


def summarize_prompt(dialogue: str) -> str:
    """The zero-shot prompt of the course's Labs 2 and 3 (note the trailing space)."""
    return SUMMARIZE_TEMPLATE.format(dialogue=dialogue)


def _shot_pair(shot: Shot) -> tuple[str, str]:
    if isinstance(shot, Mapping):
        try:
            return str(shot["dialogue"]), str(shot["summary"])
        except KeyError as err:
            raise LabkitError(
                f"A shot needs 'dialogue' and 'summary', but {err.args[0]!r} is missing. "
                "Pass dataset rows (e.g. test[40]) or (dialogue, summary) pairs."
            ) from None
    if isinstance(shot, (tuple, list)) and len(shot) == 2:
        return str(shot[0]), str(shot[1])
    raise LabkitError(
        f"A shot must be a row with 'dialogue'/'summary' or a (dialogue, summary) pair, got {type(shot).__name__}."
    )


def make_prompt(shots: Iterable[Shot], dialogue: str) -> str:
    """The course's ``make_prompt``: each shot as a full example, then the target
    in the FLAN template. No budget: see ``build_prompt`` for the measured one."""
    parts = [SHOT_TEMPLATE.format(dialogue=d, summary=s) for d, s in map(_shot_pair, shots)]
    return "".join(parts) + flan_prompt(dialogue)


def count_tokens(tokenizer: "PreTrainedTokenizerBase", text: str) -> int:
    """Tokens the encoder will see, special tokens (T5's ``</s>``) included."""
    # verbose=False: the "longer than the maximum" warning is what this budget handles.
    return len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


@dataclass(frozen=True)
class BudgetedPrompt:
    """A prompt and the numbers behind it.

    ``tokens_before`` is what the unbudgeted prompt would have needed;
    ``tokens`` is what the returned prompt needs (≤ ``limit`` unless the target
    could not be shortened at all). ``note`` says in words what was done.
    """

    strategy: str
    prompt: str
    tokens: int
    limit: int
    shots_requested: int
    shots_kept: int
    shots_trimmed: int
    tokens_before: int
    target_trimmed: bool
    note: str

    @property
    def fits(self) -> bool:
        return self.tokens <= self.limit

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the prompt text)."""
        out = asdict(self)
        out.pop("prompt")
        return out


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise LabkitError(
            f"Unknown prompt strategy {strategy!r}. Expected one of {', '.join(STRATEGIES)}."
            f"{suggest(str(strategy), STRATEGIES)}"
        )


def _render(strategy: str, dialogue: str, shots: Sequence[tuple[str, str]]) -> str:
    if strategy == "no_prompt":
        return no_prompt(dialogue)
    if strategy == "zero_shot":
        return zero_shot_prompt(dialogue)
    if strategy == "zero_shot_flan":
        return flan_prompt(dialogue)
    return make_prompt(shots, dialogue)


def _smallest_fitting_cut(n: int, fits: Any) -> int | None:
    """Smallest k in [0, n] with fits(k) true, assuming fits is monotone in k
    (cutting more never makes a prompt longer); None when even k = n fails."""
    if not fits(n):
        return None
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _trim_start(text: str, fits: Any, *, allow_chars: bool = True) -> tuple[str, str] | None:
    """Shorten ``text`` from its start, whole lines (dialogue turns) first, then
    (if ``allow_chars``) characters of the last line, until ``fits(text)``;
    returns (text, what was cut) or None."""
    lines = text.split("\n")
    k = _smallest_fitting_cut(len(lines) - 1, lambda j: fits("\n".join(lines[j:])))
    if k is not None:
        return "\n".join(lines[k:]), f"its first {k} of {len(lines)} turns"
    if not allow_chars:
        return None
    last = lines[-1]
    c = _smallest_fitting_cut(len(last), lambda j: fits(last[j:]))
    if c is None:
        return None
    return last[c:], f"all but the end of its last turn ({len(text) - len(last) + c} characters)"


Measure = Callable[[Sequence[tuple[str, str]], str], int]


def _check_options(strategy: str, dialogue: str, max_source_tokens: int, on_overflow: str, on_long_target: str) -> None:
    """Refuse an unknown strategy or mode, an empty dialogue and an unusable token limit."""
    _check_strategy(strategy)
    if not isinstance(dialogue, str) or not dialogue.strip():
        raise LabkitError("The dialogue to summarize is empty. Pass the 'dialogue' text of a dataset row.")
    if on_overflow not in OVERFLOW_MODES:
        raise LabkitError(f"on_overflow must be one of {OVERFLOW_MODES}, got {on_overflow!r}.")
    if on_long_target not in LONG_TARGET_MODES:
        raise LabkitError(f"on_long_target must be one of {LONG_TARGET_MODES}, got {on_long_target!r}.")
    if not isinstance(max_source_tokens, int) or max_source_tokens < 8:
        raise LabkitError(f"max_source_tokens must be an integer of at least 8, got {max_source_tokens!r}.")


def _shots_wanted(strategy: str, n_given: int, n_shots: int | None) -> int:
    """How many shots ``strategy`` uses: one for ``one_shot``, ``n_shots`` (default all) for ``few_shot``."""
    if strategy == "one_shot":
        wanted = 1
    elif strategy == "few_shot":
        wanted = n_given if n_shots is None else n_shots
    else:
        wanted = 0
    if wanted and n_given < wanted:
        raise LabkitError(
            f"Strategy {strategy!r} needs {wanted} shot(s) but {n_given} were given. "
            "Pass more example rows in shots= (e.g. shot_indices = [40, 80, 120])."
        )
    if wanted < 0:
        raise LabkitError(f"n_shots must be >= 0, got {n_shots!r}.")
    return wanted


@dataclass
class _Fit:
    """Where fitting one prompt under the limit stands: the target, the shots kept, and what was cut."""

    target: str
    kept: list[tuple[str, str]]
    tokens: int
    dropped: int = 0
    trimmed: int = 0
    target_trimmed: bool = False
    target_note: str = ""


def _trim_farthest_shot(fit: _Fit, measure: Measure, limit: int) -> bool:
    """Shorten the farthest shot's dialogue from its start so the prompt fits; False when it cannot."""
    rest = fit.kept[1:]
    far_dialogue, far_summary = fit.kept[0]
    # A worked example keeps whole turns (at least its last one) or goes.
    cut = _trim_start(
        far_dialogue, lambda d: measure([(d, far_summary), *rest], fit.target) <= limit, allow_chars=False
    )
    if cut is None:
        return False
    fit.kept = [(cut[0], far_summary), *rest]
    fit.trimmed += 1
    fit.tokens = measure(fit.kept, fit.target)
    return True


def _fit_shots(fit: _Fit, measure: Measure, limit: int, on_overflow: str) -> None:
    """Remove shots farthest from the target first (in ``trim`` mode, first try shortening the farthest)
    until the prompt fits or no shot is left."""
    while fit.tokens > limit and fit.kept:
        if on_overflow == "trim" and _trim_farthest_shot(fit, measure, limit):
            break
        fit.kept = fit.kept[1:]
        fit.dropped += 1
        fit.tokens = measure(fit.kept, fit.target)


def _fit_target(fit: _Fit, measure: Measure, limit: int, strategy: str, on_long_target: str) -> None:
    """The prompt is still too long: shorten the target from its start, or refuse (``on_long_target="error"``)."""
    # Shortened from the start so the end of the dialogue and the question survive truncation-free.
    if on_long_target == "error":
        raise LabkitError(
            f"The dialogue to summarize alone needs {fit.tokens} tokens with the {strategy} template, "
            f"more than the encoder limit of {limit}. Pick a shorter dialogue, raise "
            "max_source_tokens if the model allows it, or use on_long_target='trim'."
        )
    cut = _trim_start(fit.target, lambda d: measure(fit.kept, d) <= limit)
    if cut is None:
        fit.target_note = "; the template alone exceeds the limit, nothing could be cut to fit"
        return
    fit.target, what = cut
    fit.target_trimmed = True
    fit.tokens = measure(fit.kept, fit.target)
    fit.target_note = f"; the target dialogue alone was too long, so {what} were cut from its start"


def _budget_note(strategy: str, fit: _Fit, tokens_before: int, limit: int, n_req: int) -> str:
    """What was done to fit the prompt, in one line for the learner."""
    if tokens_before <= limit:
        return f"{strategy}: {fit.tokens} tokens <= limit {limit}; {len(fit.kept)} of {n_req} shots kept"
    actions = []
    if fit.dropped:
        actions.append(f"dropped {fit.dropped} of {n_req} shots (farthest from the target first)")
    if fit.trimmed:
        actions.append("shortened the farthest kept shot from its start")
    action = "; ".join(actions) if actions else "no shots to drop"
    intact = "" if fit.target_trimmed else "; the target dialogue is intact"
    return (f"{strategy}: {tokens_before} tokens > limit {limit}; {action} -> {fit.tokens} tokens"
            f"{intact}{fit.target_note}")


def build_prompt(
    strategy: str,
    dialogue: str,
    *,
    tokenizer: "PreTrainedTokenizerBase",
    shots: Sequence[Shot] = (),
    n_shots: int | None = None,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    on_overflow: str = "drop",
    on_long_target: str = "trim",
    log_budget: bool = True,
) -> BudgetedPrompt:
    """Build one prompt for ``strategy`` and make it fit ``max_source_tokens``.

    ``one_shot`` uses the first shot, ``few_shot`` the first ``n_shots``
    (default: all). When the prompt is too long, shots are removed farthest
    from the target first (``on_overflow="drop"``), or the farthest shot's
    dialogue is shortened from its start before it is dropped
    (``on_overflow="trim"``). A target dialogue that alone is too long is
    shortened from its start (``on_long_target="trim"``) or refused
    (``"error"``). What happened is in the result's ``note`` and is logged.
    """
    _check_options(strategy, dialogue, max_source_tokens, on_overflow, on_long_target)
    pairs = [_shot_pair(s) for s in shots]
    requested = pairs[:_shots_wanted(strategy, len(pairs), n_shots)]

    def measure(ks: Sequence[tuple[str, str]], target: str) -> int:
        return count_tokens(tokenizer, _render(strategy, target, ks))

    limit = max_source_tokens
    tokens_before = measure(requested, dialogue)
    fit = _Fit(target=dialogue, kept=requested, tokens=tokens_before)
    _fit_shots(fit, measure, limit, on_overflow)
    if fit.tokens > limit:
        _fit_target(fit, measure, limit, strategy, on_long_target)
    note = _budget_note(strategy, fit, tokens_before, limit, len(requested))
    if tokens_before > limit and log_budget:
        log.info("prompt budget: %s", note)
    return BudgetedPrompt(
        strategy=strategy,
        prompt=_render(strategy, fit.target, fit.kept),
        tokens=fit.tokens,
        limit=limit,
        shots_requested=len(requested),
        shots_kept=len(fit.kept),
        shots_trimmed=fit.trimmed,
        tokens_before=tokens_before,
        target_trimmed=fit.target_trimmed,
        note=note,
    )


def build_prompts(
    strategy: str,
    dialogues: Sequence[str],
    *,
    tokenizer: "PreTrainedTokenizerBase",
    shots: Sequence[Shot] = (),
    n_shots: int | None = None,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    on_overflow: str = "drop",
    on_long_target: str = "trim",
) -> list[BudgetedPrompt]:
    """``build_prompt`` for many dialogues with the same shots; logs one summary
    line (how many prompts needed the budget) instead of one line each."""
    built = [
        build_prompt(
            strategy, d, tokenizer=tokenizer, shots=shots, n_shots=n_shots, max_source_tokens=max_source_tokens,
            on_overflow=on_overflow, on_long_target=on_long_target, log_budget=False,
        )
        for d in dialogues
    ]
    over = [b for b in built if b.tokens_before > b.limit]
    if over:
        log.info(
            "prompt budget: %s: %d of %d prompts exceeded %d tokens (longest %d); %d shots dropped or trimmed, "
            "%d target dialogues shortened",
            strategy, len(over), len(built), max_source_tokens, max(b.tokens_before for b in over),
            sum(b.shots_requested - b.shots_kept + b.shots_trimmed for b in over),
            sum(b.target_trimmed for b in over),
        )
    return built


def rows_at(split: Any, indices: Sequence[int], *, what: str = "indices") -> list[dict[str, Any]]:
    """Rows of a dataset split by position, with a clear error for a bad index
    (e.g. the course's index 200 on a 200-row split)."""
    n = len(split)
    bad = [i for i in indices if not isinstance(i, int) or isinstance(i, bool) or not -n <= i < n]
    if bad:
        raise LabkitError(
            f"{what} contains {bad[0]!r}, but the split has {n} rows (valid: 0..{n - 1}). "
            f"Pick indices below {n}; the course's values (e.g. 200) need profile='course'."
        )
    return [dict(split[i]) for i in indices]
