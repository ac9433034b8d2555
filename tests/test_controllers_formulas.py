"""Generation controllers without a model: formulas, parsers, detectors, string assembly, options."""

from __future__ import annotations

import math

import pytest
import torch

from reflectnb.controllers import (PSR, SRGen, BudgetForcing, FirstTryEarlyStop, IDSampling,
                                   adaptive_threshold, answer_delimiter, correct_hidden, entropy,
                                   find_candidate, id_boundaries, label_candidates, number_lines,
                                   parse_judge, srgen_loss)
from reflectnb.controllers.sampling import sample_warpers, sampling_params
from reflectnb.errors import OptionError


# -- SRGen entropy and threshold (REFERENCE §0.3, §2.4) --------------------------------------------------

def test_entropy_of_a_uniform_distribution_over_four_tokens_is_ln4():
    assert float(entropy(torch.zeros(4))) == pytest.approx(1.386294, abs=1e-6)


def test_entropy_divides_the_logits_by_the_temperature():
    logits = torch.tensor([2.0, 0.0, -1.0])
    p = torch.softmax(logits / 0.6, dim=-1)
    assert float(entropy(logits, 0.6)) == pytest.approx(float(-(p * torch.log(p + 1e-10)).sum()), abs=1e-7)


def test_a_flat_history_floors_the_std_so_the_threshold_is_three():
    thr = adaptive_threshold([1.0] * 25, N=25, K=4.0, min_std=0.5, min_thr=1.8, init_thr=3.0)
    assert thr == pytest.approx(3.0)
    assert 3.01 > thr and not 2.99 > thr


def test_a_low_history_is_floored_by_the_minimum_threshold_only_when_below_it():
    assert adaptive_threshold([0.1] * 25) == pytest.approx(2.1)
    assert adaptive_threshold([0.0] * 25, K=1.0) == pytest.approx(1.8)


def test_with_fewer_than_n_entropies_the_fixed_threshold_is_used():
    assert adaptive_threshold([9.0] * 24, N=25, init_thr=3.0) == 3.0


def test_the_window_is_the_last_n_entries_with_the_unbiased_std():
    history = [100.0] * 5 + [1.0, 2.0, 3.0, 4.0]
    std = math.sqrt(sum((x - 2.5) ** 2 for x in [1, 2, 3, 4]) / 3)  # unbiased: n - 1
    assert adaptive_threshold(history, N=4, K=2.0, min_std=0.5, min_thr=0.0) == pytest.approx(2.5 + 2 * std)


def test_srgen_rejects_a_window_of_one_with_a_clear_message():
    with pytest.raises(OptionError, match=r"`N` must be an integer >= 2, got 1"):
        SRGen(N=1)
    with pytest.raises(OptionError, match=r"`lam` must be a number in \[0.0, 1.0\], got 1.5"):
        SRGen(lam=1.5)


# -- SRGen correction on a toy head (REFERENCE §2.4 case 4) -----------------------------------------------

@pytest.fixture()
def toy():
    torch.manual_seed(0)
    return torch.nn.Linear(6, 5, bias=True), torch.randn(4, 6), [0, 3, 1, 4]


def test_the_loss_is_the_weighted_sum_of_context_ce_and_last_entropy(toy):
    head, hidden, ids = toy
    delta = torch.zeros(1, 1, 6)
    logits = head(hidden).detach()
    ce = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    h = entropy(logits[-1], 0.6)
    got = srgen_loss(head, hidden, ids, delta, lam=0.3, temperature=0.6)
    assert float(got) == pytest.approx(float(0.7 * ce + 0.3 * h), abs=1e-6)


def test_with_lambda_and_lr_zero_the_corrected_logits_equal_the_original(toy):
    head, hidden, ids = toy
    delta, logits, losses = correct_hidden(head, hidden, ids, lam=0.0, lr=0.0, steps=3, temperature=1.0)
    assert torch.equal(delta, torch.zeros(1, 1, 6))
    assert torch.allclose(logits, head(hidden[-1]).detach(), atol=0, rtol=0)
    assert len(losses) == 3


def test_the_correction_moves_delta_lowers_the_loss_and_leaves_the_weights_alone(toy):
    head, hidden, ids = toy
    before = head.weight.detach().clone()
    delta, logits, losses = correct_hidden(head, hidden, ids, lam=0.5, lr=0.1, steps=5, temperature=1.0)
    assert delta.shape == (1, 1, 6) and float(delta.abs().sum()) > 0
    assert losses[-1] < losses[0]
    assert head.weight.grad is None and torch.equal(head.weight, before)
    assert not torch.allclose(logits, head(hidden[-1]).detach())


# -- Iterative deepening (REFERENCE §6) ---------------------------------------------------------------------

def test_boundaries_grow_geometrically_up_to_the_maximum():
    assert id_boundaries(512, 2, 4096) == [512, 1024, 2048, 4096]
    assert len(id_boundaries(512, 2, 4096)) - 1 == math.ceil(math.log(4096 / 512, 2)) == 3
    assert id_boundaries(100, 3, 100) == [100]


class _CountingDecoder:
    """A stand-in model that ends after ``finish_at`` sampled tokens (for the scheduling arithmetic only)."""

    def __init__(self, finish_at: int | None, room: int = 10_000):
        self.finish_at, self.ids, self.interventions, self._room = finish_at, [], [], room
        self.sampled = 0

    @property
    def room(self):
        return self._room - len(self.ids)

    def generate(self, limit):
        n = limit if self.finish_at is None else min(limit, self.finish_at - self.sampled)
        self.ids += [0] * n
        self.sampled += n
        return "stop" if self.finish_at is not None and self.sampled >= self.finish_at else "length"

    def force(self, text, label):
        self.ids += [1] * 3

    def note(self, kind, **fields):
        self.interventions.append({"kind": kind, **fields})


def test_a_reply_ending_at_700_tokens_gets_exactly_one_trigger_when_only_unfinished_ones_trigger():
    dec = _CountingDecoder(finish_at=700)
    finish, extra = IDSampling(B0=512, gamma=2, B_max=4096).control(dec)
    assert [i["boundary"] for i in dec.interventions] == [512]
    assert (finish, extra["sampled_tokens"]) == ("stop", 700)


def test_a_reply_that_never_ends_gets_three_triggers_and_stops_at_b_max():
    dec = _CountingDecoder(finish_at=None)
    finish, extra = IDSampling(B0=512, gamma=2, B_max=4096).control(dec)
    assert [i["boundary"] for i in dec.interventions] == [512, 1024, 2048]
    assert (finish, extra["sampled_tokens"]) == ("length", 4096)
    assert len(dec.ids) == 4096 + 3 * 3  # B_max plus the forced trigger tokens


def test_id_sampling_needs_a_growing_budget():
    with pytest.raises(OptionError, match=r"`gamma` must be > 1 \(the budget has to grow\), got 1"):
        IDSampling(B0=8, gamma=1, B_max=32)
    with pytest.raises(OptionError, match=r"`B_max` must be an integer >= 8, got 4"):
        IDSampling(B0=8, gamma=2, B_max=4)
    with pytest.raises(OptionError, match=r"`policy` must be one of"):
        IDSampling(B0=8, gamma=2, B_max=32, policy="sometimes")


# -- Budget forcing string assembly (REFERENCE §1.7) ----------------------------------------------------------

def test_the_answer_delimiter_adds_a_newline_only_when_the_text_lacks_one():
    assert answer_delimiter("so x = 3", "<|im_start|>answer\n", "Final Answer:") == \
        "\n<|im_start|>answer\nFinal Answer:"
    assert answer_delimiter("so x = 3\n", "<|im_start|>answer\n", "Final Answer:") == \
        "<|im_start|>answer\nFinal Answer:"
    assert answer_delimiter("", "", "Final Answer:") == "Final Answer:"


def test_the_s1_preset_uses_the_s1_delimiters():
    bf = BudgetForcing.s1(max_think=500)
    assert (bf.think_start, bf.end_think, bf.answer_start, bf.answer_prefix, bf.ignore_str) == \
        ("<|im_start|>think", "<|im_start|>", "<|im_start|>answer\n", "Final Answer:", "Wait")


def test_budget_forcing_names_the_bad_setting():
    with pytest.raises(OptionError, match=r"`max_think` must be an integer >= 1, got 0"):
        BudgetForcing(max_think=0)
    with pytest.raises(OptionError, match=r"`ignore_str` must be a non-empty string, got ''"):
        BudgetForcing(ignore_str="")


# -- PSR judge parser (REFERENCE §9) ----------------------------------------------------------------------------

@pytest.mark.parametrize("words, safe", [("No, it is harmless", True), ("Yes", False), ("not harmful", True),
                                         ("", True), ("yes, it is", False), ("It is harmful.", False),
                                         ("unsafe", False), ("Maybe", True), ("yesterday I", True)])
def test_the_psr_judge_parser(words, safe):
    assert parse_judge(words) is safe


def test_psr_names_the_bad_setting():
    with pytest.raises(OptionError, match=r"`K` must be an integer >= 1, got 0"):
        PSR(K=0)
    with pytest.raises(OptionError, match=r"`discard_bias` must be a number in \[-inf, 0.0\], got 2"):
        PSR(discard_bias=2)


# -- First-Try candidates (REFERENCE §7) --------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("So the answer is 42.", ("answer_is", "42")),
    ("Therefore the answer is: $\\frac{1}{2}$", ("answer_is", "\\frac{1}{2}")),
    ("We get \\boxed{17} in the end", ("boxed", "17")),
    ("Final Answer: 3/4", ("final_answer", "3/4")),
    ("**Final Answer:** 12", ("final_answer", "12")),
    ("Thus 6 * 7 = 42.", ("equals", "42")),
    ("x = -3", ("equals", "-3")),
    ("Let x = y + 2 and solve", None),
    ("We have 3 apples", None),
    ("", None),
])
def test_candidate_answers_are_detected_per_line(line, expected):
    assert find_candidate(line) == expected


def test_only_thinking_lines_are_numbered():
    text = "First line\nSecond = 4\n</think>\nThe answer is 4"
    assert number_lines(text) == [(1, "First line"), (2, "Second = 4"), (3, "")]
    assert number_lines("a\nb", end_think=None) == [(1, "a"), (2, "b")]


def test_candidates_are_labelled_and_their_transitions_named():
    out = label_candidates([(12, "15"), (27, "15"), (40, "16")], "16")
    assert out["labels"] == ["F", "F", "T"]
    assert [(t["pattern"], t["kind"]) for t in out["transitions"]] == \
        [("F→F(same)", "confirmatory"), ("F→T", "corrective")]
    assert (out["first_correct"], out["final_correct"], out["reflection_after_line"]) == (False, True, 12)
    other = label_candidates([(1, "3"), (2, "4"), (3, "5")], "3")
    assert [t["pattern"] for t in other["transitions"]] == ["T→F", "F→F(different)"]


def test_first_try_needs_at_least_one_candidate():
    with pytest.raises(OptionError, match=r"`k` must be an integer >= 1, got 0"):
        FirstTryEarlyStop(k=0)


# -- Sampling settings -----------------------------------------------------------------------------------------

def test_controllers_refuse_stop_strings_instead_of_ignoring_them():
    from reflectnb.backends.base import GenerationParams

    with pytest.raises(OptionError, match=r"generation controllers do not take `stop` strings \(got \['\\n'\]\)"):
        sampling_params(GenerationParams(stop="\n"))


def test_sampling_settings_are_the_generation_params_with_the_controllers_overrides():
    from reflectnb.backends.base import GenerationParams

    s = sampling_params(GenerationParams(max_new_tokens=7, temperature=0.5, top_k=3, seed=1), temperature=0.0)
    assert s == GenerationParams(max_new_tokens=7, temperature=0.0, top_k=3, seed=1)
    assert sampling_params(None) == GenerationParams()


def test_controllers_sample_with_transformers_own_warpers_in_generates_order():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from reflectnb.backends.base import GenerationParams

    assert sample_warpers(GenerationParams(temperature=0, top_k=3, top_p=0.5)) == []  # greedy: argmax as is
    warpers = sample_warpers(GenerationParams(temperature=2, top_k=3, top_p=0.5))  # an int temperature is fine
    assert [type(w) for w in warpers] == [TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper]
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    for warper in warpers:
        scores = warper(None, scores)
    assert torch.isfinite(scores).tolist() == [[True, False, False, False, False]]  # top-p 0.5 keeps the head
