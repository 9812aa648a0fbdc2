"""EditTransducer: the oracle on hand-worked pairs, legal actions, greedy decoding against the
teacher-forced scores, copying an unseen character, gradients, and its config errors."""

from __future__ import annotations

import functools

import pytest
import torch

from rnnkit.cli import translate
from rnnkit.models.decoding import replace_unknown
from rnnkit.models.seq2seq_transducer import (
    build_transducer,
    oracle_actions,
    pointer_positions,
)
from rnnkit.tasks.seq2seq import Seq2SeqTask

V = 10  # <pad> <unk> <bos> <eos> and six characters, ids 4..9
PAD, UNK, BOS, EOS = 0, 1, 2, 3
COPY, DELETE = V, V + 1


def _ids(text: str) -> list[int]:
    """Characters a..f -> 4..9; any other character -> an extended id from 10 on."""
    return [4 + "abcdef".index(c) if c in "abcdef" else V + "ÁÉ".index(c) for c in text]


def _oracle(source: str, target: str, deletes_first: bool = False) -> list[int]:
    return oracle_actions(_ids(source), _ids(target), COPY, DELETE, EOS, UNK, deletes_first)


def test_the_oracle_copies_a_longest_common_subsequence_inserting_before_deleting():
    # "cadd" -> "cbddfe" (like Abgott -> Abgötter): c copied, b inserted while a is under the
    # pointer, a deleted, d d copied, f e appended, END
    assert _oracle("cadd", "cbddfe") == [COPY, 5, DELETE, COPY, COPY, 9, 8, EOS]
    # "caab" -> "caba" (like halfleeg -> halflege): the b is generated, the second a copied
    assert _oracle("caab", "caba") == [COPY, COPY, 5, COPY, DELETE, EOS]
    assert _oracle("abc", "abc") == [COPY, COPY, COPY, EOS]
    assert _oracle("abc", "") == [DELETE, DELETE, DELETE, EOS]
    assert _oracle("", "ab") == [4, 5, EOS]
    # an unseen source character is copied; one the source lacks can only be <unk>
    assert _oracle("Áb", "Ább") == [COPY, COPY, 5, EOS]
    assert _oracle("b", "É") == [UNK, DELETE, EOS]


def test_the_oracle_can_delete_before_inserting():
    assert _oracle("caab", "caba", deletes_first=True) == [COPY, COPY, DELETE, COPY, 4, EOS]
    assert _oracle("cadd", "cbddfe", deletes_first=True) == [
        COPY,
        DELETE,
        5,
        COPY,
        COPY,
        9,
        8,
        EOS,
    ]
    assert _oracle("abc", "", deletes_first=True) == [DELETE, DELETE, DELETE, EOS]
    assert _oracle("", "ab", deletes_first=True) == [4, 5, EOS]


def test_pointer_positions_count_the_characters_passed():
    actions = [COPY, 5, DELETE, COPY, 9, EOS]
    assert pointer_positions(actions, COPY, DELETE) == [0, 1, 1, 2, 3, 3]


def _model(dropout: float = 0.0, **kwargs):
    torch.manual_seed(0)
    return build_transducer(8, V, embedding_size=6, hidden_size=8, dropout=dropout, **kwargs)


def _biased(model, member: int = 0, **biases):
    """Zero a member's output weights and set the bias of the named actions (others -20)."""
    index = {"copy": COPY, "delete": DELETE, "end": EOS, "insert_a": 4}
    actions = model.members[member].actions
    with torch.no_grad():
        actions.weight.zero_()
        actions.bias.fill_(-20.0)
        for name, value in biases.items():
            actions.bias[index[name]] = value
    return model.eval()


SRC = torch.tensor([[4, 5, 6], [7, 0, 0]])  # source-vocabulary ids, any
LENGTHS = torch.tensor([3, 1])
COPY_IDS = torch.tensor([[4, 10, 6], [7, 0, 0]])  # 10: a character the target vocabulary lacks


def test_a_copying_model_outputs_the_source_unseen_characters_included():
    model = _biased(_model(), copy=10.0, end=5.0)  # END is illegal until the pointer is past
    hyp = model.generate(SRC, LENGTHS, max_length=8, copy_ids=COPY_IDS)
    assert hyp.tokens.tolist() == [[4, 10, 6, EOS], [7, EOS, PAD, PAD]]
    assert hyp.lengths.tolist() == [4, 2]
    # hard attention: each copied token on its source position; <eos> (past the end) on none
    assert hyp.attention[0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    # the shorter source ends at 1: its <eos> attends nowhere, not to the padding column
    assert hyp.attention[1].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_an_unk_that_attends_nowhere_stays_unk():
    # a hard-attention <unk> past the source's end has no source character to stand for
    tokens, source = torch.tensor([[1, 1]]), torch.tensor([[4, 5, 6]])
    attention = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    assert replace_unknown(tokens, attention, source, unk_index=1).tolist() == [[5, 1]]


def test_only_legal_actions_are_taken():
    # END is preferred but illegal before the end; DELETE is next: nothing is output
    hyp = _biased(_model(), end=10.0, delete=5.0).generate(
        SRC, LENGTHS, max_length=8, copy_ids=COPY_IDS
    )
    assert hyp.tokens.tolist() == [[EOS], [EOS]]
    # COPY preferred but illegal at the end: INSERT(a) wins there until max_length tokens
    hyp = _biased(_model(), copy=10.0, insert_a=5.0).generate(
        SRC, LENGTHS, max_length=5, copy_ids=COPY_IDS
    )
    assert hyp.tokens.tolist() == [[4, 10, 6, 4, 4], [7, 4, 4, 4, 4]]
    # min_length bars END until that many tokens are out
    hyp = _biased(_model(), copy=10.0, end=5.0, insert_a=1.0).generate(
        SRC, LENGTHS, max_length=8, min_length=3, copy_ids=COPY_IDS
    )
    assert hyp.tokens.tolist() == [[4, 10, 6, EOS], [7, 4, 4, EOS]]


def test_greedy_scores_equal_the_teacher_forced_scores_of_its_actions():
    model = _model().eval()
    with torch.no_grad():
        model.members[0].actions.bias[[COPY, EOS]] += 4.0  # greedy copies: the oracle
    hyp = model.generate(SRC, LENGTHS, max_length=8, copy_ids=COPY_IDS)
    tgt = torch.cat([torch.full((2, 1), BOS), hyp.tokens], dim=1)  # <bos> y .. <eos>
    logp, actions = model.oracle_scores(SRC, LENGTHS, COPY_IDS, tgt)
    assert actions.tolist() == [[COPY, COPY, COPY, EOS], [COPY, EOS, PAD, PAD]]
    gold = logp.gather(-1, actions.clamp_min(0)[..., None])[..., 0] * (actions != PAD)
    torch.testing.assert_close(gold.sum(-1), hyp.scores)


def test_an_ensemble_decodes_by_the_mean_log_probability():
    # member 0: p(COPY) ~ 1; member 1: p(DELETE) = 0.88, p(COPY) = 0.12; mean: COPY 0.56
    model = _biased(_model(ensemble=2), member=0, copy=10.0, end=10.0)
    model = _biased(model, member=1, copy=0.0, delete=2.0, end=10.0)
    hyp = model.generate(SRC, LENGTHS, max_length=8, copy_ids=COPY_IDS)
    assert hyp.tokens.tolist() == [[4, 10, 6, EOS], [7, EOS, PAD, PAD]]
    torch.testing.assert_close(
        hyp.scores[1], torch.tensor((1 + 0.1192) / 2).log(), atol=1e-3, rtol=0
    )
    alone = _biased(_model(), copy=0.0, delete=2.0, end=10.0)
    assert alone.generate(SRC, LENGTHS, copy_ids=COPY_IDS).tokens.tolist() == [[EOS], [EOS]]


def test_gradients_reach_every_trainable_parameter():
    model = _model(dropout=0.1, ensemble=2).train()
    tgt = torch.tensor([[BOS, 4, 5, 10, 6, EOS], [BOS, 8, EOS, PAD, PAD, PAD]])
    logp, actions = model.oracle_scores(SRC, LENGTHS, COPY_IDS, tgt)
    assert logp.shape[:2] == actions.shape == (4, 5)  # 2 members x 2 examples, 5 actions
    loss = torch.nn.functional.nll_loss(logp.flatten(0, 1), actions.flatten(), ignore_index=PAD)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_task_refuses_beam_search_with_one_error_line():
    with pytest.raises(ValueError) as info:
        Seq2SeqTask(_model(), functools.partial(torch.optim.SGD, lr=0.1), beam_size=2)
    error = translate(info.value)
    assert error is not None and "task.beam_size" in str(error)
    assert "\n" not in str(error)
    with pytest.raises(
        ValueError, match="task.label_smoothing=0.1: .* set task.label_smoothing=0"
    ):
        # its illegal actions score -1e9: smoothing over them would make the loss ~1e7
        Seq2SeqTask(_model(), functools.partial(torch.optim.SGD, lr=0.1), label_smoothing=0.1)
    with pytest.raises(ValueError, match="hidden_size must be even"):
        build_transducer(8, V, embedding_size=6, hidden_size=7, dropout=0.0)
