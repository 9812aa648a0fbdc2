"""TaggingTask, conlleval span F1 (BIO and BIOES) and the CRF against brute force."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch

from rnnkit.cells import LSTMCell
from rnnkit.models import CRF, SequenceModel
from rnnkit.tasks import TaggingTask
from rnnkit.tasks.spans import SpanF1, get_spans, span_counts, span_f1_score
from tests.helpers import LightningTrainer, fit_one_epoch


# ----- spans, as conlleval counts them --------------------------------------------------------
@pytest.mark.parametrize(
    "tags, spans",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], {(0, 1, "PER"), (3, 3, "LOC")}),
        (["I-PER", "I-PER", "O"], {(0, 1, "PER")}),  # conlleval: I after O starts a chunk
        (["B-PER", "I-LOC"], {(0, 0, "PER"), (1, 1, "LOC")}),  # a type change splits
        (["B-PER", "B-PER", "I-PER"], {(0, 0, "PER"), (1, 2, "PER")}),
        (["O", "O"], set()),
        # BIOES
        (["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], {(0, 0, "PER"), (2, 4, "LOC")}),
        (["B-LOC", "E-LOC", "S-LOC"], {(0, 1, "LOC"), (2, 2, "LOC")}),
        (["E-PER", "O"], {(0, 0, "PER")}),  # a lone E starts and ends a chunk
        (["B-ORG", "I-ORG", "E-ORG", "I-ORG"], {(0, 2, "ORG"), (3, 3, "ORG")}),
    ],
)
def test_get_spans(tags: list[str], spans: set) -> None:
    assert get_spans(tags) == spans


def test_span_f1_hand_computed_bio() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-ORG"]]
    # gold: PER(0-1) LOC(3) ORG(0) = 3; pred: PER(0) LOC(3) ORG(0) ORG(1) = 4; correct: LOC, ORG(0)
    assert span_counts(gold, pred) == (2, 4, 3)
    p, r, f1 = span_f1_score(gold, pred)
    assert (p, r) == (0.5, 2 / 3)
    assert f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_span_f1_hand_computed_bioes() -> None:
    gold = [["S-PER", "O", "B-LOC", "E-LOC"], ["B-ORG", "I-ORG", "E-ORG"]]
    pred = [["S-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "E-ORG", "S-ORG"]]
    # gold: PER(0) LOC(2-3) ORG(0-2); pred: PER(0) LOC(2-3) ORG(0-1) ORG(2); correct: PER, LOC
    assert span_counts(gold, pred) == (2, 4, 3)
    assert span_f1_score(gold, pred)[2] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_span_f1_metric_accumulates_over_batches() -> None:
    metric = SpanF1()
    metric.update([["B-PER", "O"]], [["B-PER", "O"]])
    metric.update([["O", "B-LOC"]], [["B-LOC", "O"]])
    # correct 1 of predicted 2 and gold 2
    assert float(metric.compute()) == pytest.approx(0.5)
    empty = SpanF1()
    empty.update([["O"]], [["O"]])
    assert float(empty.compute()) == 0.0  # no chunks at all: conlleval reports 0


# ----- CRF against brute force ----------------------------------------------------------------
def brute_force(crf: CRF, emissions: torch.Tensor, length: int):
    """Every tag sequence of one sentence: (log Z, best path)."""
    C = crf.num_tags
    e = emissions[:length]
    scores = {}
    for path in itertools.product(range(C), repeat=length):
        s = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        s = s + sum(e[t, path[t]] for t in range(length))
        s = s + sum(crf.transitions[path[t - 1], path[t]] for t in range(1, length))
        scores[path] = s
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    return log_z, list(max(scores, key=lambda p: float(scores[p].detach())))


def test_crf_matches_brute_force() -> None:
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():  # larger transitions than the init, so they matter
        crf.transitions.normal_(0, 1.0)
        crf.start_transitions.normal_()
        crf.end_transitions.normal_()
    emissions = torch.randn(3, 4, 3)
    lengths = torch.tensor([4, 2, 1])
    mask = torch.arange(4)[None, :] < lengths[:, None]
    tags = torch.randint(0, 3, (3, 4))
    log_z = crf.log_partition(emissions, mask)
    gold_score = crf.score(emissions, tags.masked_fill(~mask, 0), mask)
    paths = crf.decode(emissions, mask)
    for b in range(3):
        ref_z, ref_path = brute_force(crf, emissions[b], int(lengths[b]))
        torch.testing.assert_close(log_z[b], ref_z)
        assert paths[b] == ref_path
        # the NLL of the gold path equals log Z - s(gold) by enumeration
        n = int(lengths[b])
        path_score = (
            crf.start_transitions[tags[b, 0]]
            + crf.end_transitions[tags[b, n - 1]]
            + sum(emissions[b, t, tags[b, t]] for t in range(n))
            + sum(crf.transitions[tags[b, t - 1], tags[b, t]] for t in range(1, n))
        )
        torch.testing.assert_close(gold_score[b], path_score)
    nll = crf(emissions, tags, mask)
    torch.testing.assert_close(nll, (log_z - gold_score).mean())


def test_crf_forward_algorithm_gradients_match_logsumexp_float64() -> None:
    """The exp-domain matrix product of log_partition against the plain (B, C, C) log-sum-exp."""
    torch.manual_seed(0)
    crf = CRF(4).double()
    with torch.no_grad():
        crf.transitions.normal_(0, 3.0)  # wide transitions: the shifts must keep it exact
    emissions = (torch.randn(3, 5, 4, dtype=torch.float64) * 5).requires_grad_()
    mask = torch.arange(5)[None, :] < torch.tensor([5, 3, 1])[:, None]

    def reference(em, trans):
        alpha = crf.start_transitions + em[:, 0]
        for t in range(1, em.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + em[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + crf.end_transitions, dim=1)

    ours = crf.log_partition(emissions, mask)
    ref = reference(emissions, crf.transitions)
    torch.testing.assert_close(ours, ref)
    g_ours = torch.autograd.grad(ours.sum(), (emissions, crf.transitions))
    g_ref = torch.autograd.grad(ref.sum(), (emissions, crf.transitions))
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda e: crf.log_partition(e, mask), (emissions,))


# ----- the task -------------------------------------------------------------------------------
NAMES = ["B-PER", "I-PER", "O"]


def make_task(crf: bool) -> TaggingTask:
    torch.manual_seed(0)
    model = SequenceModel(
        output_size=3,
        cell=LSTMCell,
        vocab_size=10,
        pad_index=0,
        embedding_dim=4,
        hidden_size=6,
        bidirectional=True,
        pooling="none",
        backend="loop",
    )
    opt = functools.partial(torch.optim.Adam, lr=0.01)
    return TaggingTask(model, opt, num_tags=3, label_names=NAMES, crf=crf).eval()


@pytest.mark.parametrize("crf", [False, True])
def test_tagging_padding_never_changes_loss_or_tags(crf: bool) -> None:
    task = make_task(crf)
    x = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    lengths = torch.tensor([4, 2])
    y = torch.tensor([[0, 1, 2, 2], [2, 0, -100, -100]])
    x_more = torch.cat([x, torch.full((2, 3), 9)], 1)  # garbage tokens past the ends
    y_more = torch.cat([y, torch.full((2, 3), -100)], 1)
    loss, _, _ = task.model_step((x, lengths, y))
    loss_more, _, _ = task.model_step((x_more, lengths, y_more))
    torch.testing.assert_close(loss, loss_more)
    tags = task.predict_step((x_more, lengths, y_more), 0)
    assert [len(t) for t in tags] == [4, 2]
    assert all(tag in NAMES for seq in tags for tag in seq)
    assert tags == task.predict_step((x, lengths, y), 0)


def test_tagging_loss_ignores_padding_targets() -> None:
    task = make_task(crf=False)
    x = torch.tensor([[3, 4, 5]])
    loss, _, _ = task.model_step((x, torch.tensor([2]), torch.tensor([[0, 1, -100]])))
    # the third step is padding: the loss is the loss of the first two steps alone
    scores = task.model(x[:, :2], torch.tensor([2]))  # (1, 2, C)
    ref = torch.nn.functional.cross_entropy(scores[0], torch.tensor([0, 1]))
    torch.testing.assert_close(loss, ref)


def test_tagging_task_with_crf_learns_a_tiny_task() -> None:
    task = make_task(crf=True).train()
    # token 3 is a name (B-PER) when followed by 5, else O: needs the right context
    x = torch.tensor([[3, 5, 6], [3, 6, 6], [6, 3, 5], [6, 3, 6]])
    y = torch.tensor([[0, 2, 2], [2, 2, 2], [2, 0, 2], [2, 2, 2]])
    lengths = torch.full((4,), 3)
    opt = task.configure_optimizers()["optimizer"]
    for _ in range(100):
        loss, _, _ = task.model_step((x, lengths, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tags = task.eval().predict_step((x, lengths, y), 0)
    assert tags == [[NAMES[int(i)] for i in row] for row in y]


@pytest.mark.parametrize("train_metrics", [False, True])
def test_training_batches_are_scored_only_when_asked(train_metrics: bool) -> None:
    """Span F1 of training batches means decoding each one: off unless train_metrics."""

    torch.manual_seed(0)
    model = make_task(crf=True).model.train()
    opt = functools.partial(torch.optim.Adam, lr=0.01)
    task = TaggingTask(
        model, opt, num_tags=3, label_names=NAMES, crf=True, train_metrics=train_metrics
    )
    x = torch.tensor([[3, 5, 6], [3, 6, 6]])
    batch = (x, torch.tensor([3, 2]), torch.tensor([[0, 2, 2], [2, 2, -100]]))
    logged = fit_one_epoch(task, batch)
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "val/score", "val/score_best"} <= logged
    assert ({"train/acc", "train/f1"} <= logged) == train_metrics


# ----- CRF input checks (as pytorch-crf makes them) -------------------------------------------
@pytest.mark.parametrize(
    "emissions, tags, mask, message",
    [
        (torch.randn(2, 3), None, None, r"emissions must be \(batch, steps, num_tags=3\)"),
        (torch.randn(2, 3, 4), None, None, r"num_tags=3\), got \(2, 3, 4\)"),
        (torch.randn(2, 3, 3), torch.zeros(2, 4).long(), None, r"tags must be \(batch, steps\)"),
        (torch.randn(2, 3, 3), None, torch.ones(3, 3, dtype=torch.bool), r"mask must be"),
        (torch.randn(2, 3, 3), None, torch.ones(2, 3), r"mask must be bool"),
        (
            torch.randn(2, 3, 3),
            None,
            torch.tensor([[True, True, True], [False, True, True]]),
            r"first step of every sequence must be on",
        ),
        (
            torch.randn(2, 3, 3),
            None,
            torch.tensor([[True, False, True], [True, True, True]]),
            r"valid steps first",
        ),
        (
            torch.randn(2, 3, 3),
            torch.tensor([[0, 1, 2], [0, 3, -100]]),
            torch.tensor([[True, True, True], [True, True, False]]),
            r"tag 3 at sequence 1, step 1 is outside \[0, 3\)",
        ),
    ],
)
def test_crf_refuses_bad_inputs(emissions, tags, mask, message) -> None:
    crf = CRF(3)
    with pytest.raises(ValueError, match=message):
        if tags is None:
            crf.viterbi(emissions, mask if mask is not None else torch.ones(2, 3).bool())
        else:
            crf(emissions, tags, mask if mask is not None else torch.ones(2, 3).bool())


def test_crf_ignores_any_tag_value_at_padded_steps() -> None:
    crf = CRF(3)
    emissions = torch.randn(1, 3, 3)
    mask = torch.tensor([[True, True, False]])
    a = crf(emissions, torch.tensor([[0, 1, -100]]), mask)
    torch.testing.assert_close(a, crf(emissions, torch.tensor([[0, 1, 2]]), mask))


# ----- scoring: unseen tags, plain tags, the per-tag report -----------------------------------
class FixedScores(torch.nn.Module):
    """A stand-in model whose best tag at each step is the input id (mod C)."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.bias = torch.nn.Parameter(torch.zeros(num_tags))

    def forward(self, x, lengths=None):
        return torch.nn.functional.one_hot(x % self.num_tags, self.num_tags).float() + self.bias


@pytest.mark.parametrize("crf", [False, True])
def test_unseen_tags_are_errors_not_aborts(crf: bool) -> None:
    """Gold id 2 is a tag only the test split has: never predicted, skipped by the loss."""
    opt = functools.partial(torch.optim.Adam, lr=0.01)
    names = ["NN", "VB", "XY"]  # 2 training tags, then the evaluation-only tag
    task = TaggingTask(
        FixedScores(2), opt, num_tags=2, label_names=names, crf=crf, scheme="plain"
    ).eval()
    x = torch.tensor([[0, 1, 0], [1, 0, 0]])
    y = torch.tensor([[0, 1, 2], [1, 0, -100]])  # 5 tokens, 1 of an unseen tag
    batch = (x, torch.tensor([3, 2]), y)
    loss, _, _ = task.model_step(batch)
    assert torch.isfinite(loss)
    task._shared_step(batch, "test")
    assert float(task.metrics["test/acc"].compute()) == pytest.approx(4 / 5)
    assert float(task.metrics["test/score"].compute()) == pytest.approx(4 / 5)
    gold, predicted, correct = task._tag_counts.tolist()
    assert (gold, predicted, correct) == ([2, 2, 1], [3, 2, 0], [2, 2, 0])


def test_plain_scheme_has_no_span_metric_and_span_scheme_scores_f1() -> None:
    opt = functools.partial(torch.optim.Adam, lr=0.01)
    plain = TaggingTask(FixedScores(3), opt, num_tags=3, label_names=NAMES, scheme="plain")
    assert "val/f1" not in plain.metrics and "val/score" in plain.metrics
    spans = TaggingTask(FixedScores(3), opt, num_tags=3, label_names=NAMES, scheme="BIO")
    x = torch.tensor([[0, 1, 2, 0]])  # predicted: B-PER I-PER O B-PER
    y = torch.tensor([[0, 1, 2, 2]])  # gold: B-PER I-PER O O
    spans._shared_step((x, torch.tensor([4]), y), "val")
    assert float(spans.metrics["val/f1"].compute()) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert float(spans.metrics["val/acc"].compute()) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match=r"task\.scheme='BILOU' is not a tag scheme"):
        TaggingTask(FixedScores(3), opt, num_tags=3, scheme="BILOU")


# ----- end to end: files -> CoNLLDataModule -> tagger with character features -> test --------
def run_files(tmp_path, train_text: str, test_text: str, fmt: str, crf: bool):
    from rnnkit.data import CoNLLDataModule
    from rnnkit.models import WordEmbedder

    (tmp_path / "train").write_text(train_text, encoding="utf-8")
    (tmp_path / "test").write_text(test_text, encoding="utf-8")
    dm = CoNLLDataModule(
        train_path=str(tmp_path / "train"), val_path=str(tmp_path / "train"),
        test_path=str(tmp_path / "test"), format=fmt, char_features=True, batch_size=4,
    )  # fmt: skip
    dm.setup()
    info = dm.info
    torch.manual_seed(0)
    model = SequenceModel(
        output_size=info["num_tags"], cell=LSTMCell, vocab_size=info["vocab_size"],
        pad_index=info["pad_index"], embedding_dim=8, hidden_size=8, bidirectional=True,
        embedder=functools.partial(WordEmbedder, chars="cnn", char_hidden_size=6),
        char_vocab_size=info["char_vocab_size"], pooling="none", backend="loop",
    )  # fmt: skip
    opt = functools.partial(torch.optim.Adam, lr=0.05)
    task = TaggingTask(
        model, opt, num_tags=info["num_tags"], crf=crf,
        **TaggingTask.data_arguments(info),
    )  # fmt: skip
    trainer = LightningTrainer(
        max_epochs=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(task, datamodule=dm)
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    return info, task, metrics


def test_plain_pos_tags_end_to_end_with_an_unseen_test_tag(tmp_path) -> None:
    train = "the/DT cat/NN sat/VBD\na/DT dog/NN ran/VBD\nthe/DT dog/NN sat/VBD\n" * 2
    test = "a/DT cat/NN ran/VBD\nthe/DT hat/UH\n"  # UH: never in training
    info, task, metrics = run_files(tmp_path, train, test, "slash", crf=False)
    assert info["scheme"] == "plain" and info["label_names"][-1] == "UH"
    assert "test/f1" not in metrics
    assert metrics["test/acc"] == pytest.approx(4 / 5)  # learned all but the unseen tag
    assert metrics["test/score"] == metrics["test/acc"]
    assert task.tag_report["UH"]["recall"] == 0.0 and task.tag_report["NN"]["f1"] == 1.0


def test_bio_spans_end_to_end_with_crf(tmp_path) -> None:
    train = "Ada\tB-PER\nLovelace\tI-PER\nsang\tO\n\nParis\tB-LOC\nsang\tO\n\n" * 3
    test = "Ada\tB-PER\nLovelace\tI-PER\nsang\tO\n\nParis\tB-LOC\n"
    info, task, metrics = run_files(tmp_path, train, test, "conll", crf=True)
    assert info["scheme"] == "bio"
    assert metrics["test/f1"] == pytest.approx(1.0) and metrics["test/score"] == metrics["test/f1"]
    assert metrics["test/acc"] == pytest.approx(1.0)
