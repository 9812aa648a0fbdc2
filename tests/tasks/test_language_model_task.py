"""LanguageModelTask: masked loss, perplexity by hand, sampling to strings, exact match."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from rnnkit.cells import GRUCell, LSTMCell
from rnnkit.models.language_model import LanguageModel
from rnnkit.tasks.language_model import LanguageModelTask

VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c"]
PAD, BOS, EOS, A, B, C = 0, 2, 3, 4, 5, 6


def make_task(model: nn.Module, **kwargs) -> LanguageModelTask:
    return LanguageModelTask(
        model,
        functools.partial(torch.optim.Adam, lr=1e-3),
        vocab=VOCAB,
        pad_index=PAD,
        eos_index=EOS,
        **kwargs,
    )


class TableModel(nn.Module):
    """Fixed next-token log-probabilities per input token (a hand-checkable model)."""

    generate = LanguageModel.generate  # steps through ``self(...)`` only

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table  # (V, V) logits of the next token given the current one

    def forward(self, x, lengths=None, state=None, cond=None):
        return self.table[x], state  # (B, T, V)


def test_perplexity_is_exp_of_the_token_mean_nll_by_hand():
    # after "a" the model gives "b" probability 1/2; after "b" it gives "c" probability 1/4
    table = torch.full((7, 7), 1e-9)
    table[A, B], table[A, C] = 0.5, 0.5
    table[B, C], table[B, A] = 0.25, 0.75
    task = make_task(TableModel(table.log()))
    # batch 1: one target (p = 1/2), batch 2: two targets (p = 1/4 each) and padding
    batch1 = (torch.tensor([[A]]), torch.tensor([1]), torch.tensor([[B]]))
    batch2 = (
        torch.tensor([[B, B, PAD]]),
        torch.tensor([2]),
        torch.tensor([[C, C, PAD]]),
    )
    for i, batch in enumerate([batch1, batch2]):
        task.validation_step(batch, i)
    # exp(mean NLL over the 3 tokens) = (2 * 4 * 4) ** (1/3); a mean over batches would be sqrt(8)
    expected = math.exp((math.log(2) + 2 * math.log(4)) / 3)
    assert task.metrics["val/ppl"].compute().item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(32 ** (1 / 3))
    # val/loss is the same token mean (each batch weighted by its tokens), so ppl = exp(loss)
    loss = task.metrics["val/loss"].compute().item()
    assert loss == pytest.approx(math.log(expected), rel=1e-5)
    loss, _, _ = task.model_step(batch2)
    assert loss.item() == pytest.approx(math.log(4), rel=1e-5)


def test_padding_never_changes_the_loss():
    torch.manual_seed(0)
    model = LanguageModel(LSTMCell, vocab_size=7, embedding_size=4, hidden_size=5)
    task = make_task(model)
    x = torch.randint(4, 7, (3, 5))
    y = torch.randint(4, 7, (3, 5))
    lengths = torch.tensor([5, 3, 2])
    y = y.masked_fill(torch.arange(5) >= lengths[:, None], PAD)
    loss, _, _ = task.model_step((x, lengths, y))
    # more padding columns, and junk tokens at every padded input step
    x_junk = torch.cat([x, torch.randint(4, 7, (3, 4))], dim=1)
    x_junk = torch.where(torch.arange(9) >= lengths[:, None], torch.randint(1, 7, (3, 9)), x_junk)
    y_more = torch.cat([y, torch.full((3, 4), PAD)], dim=1)
    loss_more, _, _ = task.model_step((x_junk, lengths, y_more))
    torch.testing.assert_close(loss, loss_more)
    # and it is the token-weighted mean of each sequence's loss computed alone
    total = 0.0
    for b in range(3):
        n = int(lengths[b])
        alone, _, _ = task.model_step((x[b : b + 1, :n], lengths[b : b + 1], y[b : b + 1, :n]))
        total += alone * n
    torch.testing.assert_close(loss, total / lengths.sum())


def test_predict_step_returns_prompt_and_continuation_strings_reproducibly():
    torch.manual_seed(0)
    model = LanguageModel(GRUCell, vocab_size=7, embedding_size=4, hidden_size=5).eval()
    task = make_task(model, max_new_tokens=6, temperature=1.0, seed=11)
    batch = (torch.tensor([[A, B], [C, PAD]]), torch.tensor([2, 1]))
    first = task.predict_step(batch, 0)
    assert len(first) == 2 and first[0].startswith("ab") and first[1].startswith("c")
    assert all(set(s) <= set("abc<unk>") for s in first)
    assert task.predict_step(batch, 0) == first
    greedy = make_task(model, max_new_tokens=6, temperature=0.0).predict_step(batch, 0)
    new = model.generate(batch[0], 6, temperature=0.0, lengths=batch[1], stop_index=EOS)
    assert greedy == [task.decode(p + n) for p, n in zip([[A, B], [C]], new.tolist(), strict=True)]


def test_predict_step_conditional_batches_and_eos_stops_the_string():
    table = torch.full((7, 7), -30.0)
    table[BOS, A] = table[A, B] = table[B, EOS] = table[EOS, C] = 0.0
    task = make_task(TableModel(table), max_new_tokens=10, temperature=0.0)
    batch = (torch.tensor([[BOS]]), torch.tensor([1]), torch.zeros(1, 3))
    assert task.predict_step(batch, 0) == ["ab"]


def test_exact_match_counts_sequences_greedy_generation_reproduces():
    table = torch.full((7, 7), -30.0)
    table[BOS, A] = table[A, B] = table[B, C] = table[C, EOS] = 0.0
    task = make_task(TableModel(table), exact_match=True)
    x = torch.tensor([[BOS, A, B, C], [BOS, A, C, PAD]])
    y = torch.tensor([[A, B, C, EOS], [A, C, EOS, PAD]])  # the model writes "abc": 1 of 2
    task.validation_step((x, torch.tensor([4, 3]), y, torch.zeros(2, 3)), 0)
    assert task.metrics["val/exact_match"].compute().item() == pytest.approx(0.5)


def test_trainer_logs_perplexity_next_to_the_unigram_baseline():
    from torch.utils.data import DataLoader, TensorDataset

    from tests.helpers import LightningTrainer

    table = torch.full((7, 7), 1e-9)
    table[A, B], table[A, C] = 0.5, 0.5
    task = make_task(TableModel(table.log()), unigram_perplexity={"val": 7.5, "test": 8.5})
    data = TensorDataset(torch.tensor([[A, A]]), torch.tensor([2]), torch.tensor([[B, C]]))
    trainer = LightningTrainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(task, DataLoader(data), verbose=False)
    assert metrics["val/ppl"] == pytest.approx(2.0, rel=1e-5)
    assert metrics["val/ppl_unigram"] == pytest.approx(7.5)
    (metrics,) = trainer.test(task, DataLoader(data), verbose=False)
    assert metrics["test/ppl_unigram"] == pytest.approx(8.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        make_task(TableModel(torch.zeros(7, 7)), temperature=-0.5)
    task = LanguageModelTask(TableModel(torch.zeros(7, 7)), torch.optim.Adam)
    with pytest.raises(ValueError, match="vocab="):
        task.decode([A])


@pytest.mark.parametrize(
    "experiment,data,prompt,starts",
    [
        ("pydoc_topics_lm_gru", "data.path={corpus}", 'prompt="ab "', "ab "),
        ("spelled_numbers_lm_gru", "data.max_number=99", "prompt=42", ""),
    ],
)
def test_predict_script_samples_from_a_prompt(
    experiment, data, prompt, starts, compose_cfg, tmp_path
):
    """Train a few steps, then `scripts/predict.py ckpt_path=... prompt=... temperature=0`."""
    from omegaconf import OmegaConf

    from rnnkit.train import predict, train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("ab ba abba baab " * 200, encoding="utf-8")
    fast = [
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=1",
    ]
    cfg = compose_cfg(
        [f"+experiment={experiment}", data.format(corpus=corpus), *fast, "logger=none"]
        + ["extras.print_config=false", "test=false", "trainer.enable_progress_bar=false"]
    )
    train(cfg)
    run_dir = tmp_path / "run"
    OmegaConf.save(cfg, run_dir / "config.yaml")
    outputs = []
    for name, temperature in (("a.txt", 0), ("b.txt", 0), ("c.txt", 5)):
        eval_cfg = compose_cfg(
            [
                f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                f"run_config={run_dir}/config.yaml",
            ]
            + [prompt, f"temperature={temperature}", "max_new_tokens=12", "top_k=5"]
            + [f"output={tmp_path / name}", "extras.print_config=false"],
            config_name="eval.yaml",
            subdir="predict",
        )
        (line,) = predict(eval_cfg)
        assert line.startswith(starts) and (tmp_path / name).read_text() == line + "\n"
        outputs.append(line)
    assert outputs[0] == outputs[1]  # greedy: the same text twice
    assert outputs[2] != outputs[0]  # the temperature reached the sampler
