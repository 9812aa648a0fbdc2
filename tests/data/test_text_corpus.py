"""TextCorpusDataModule: chronological splits, chunks, train-only vocabulary, errors."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.data.text_corpus import (
    PYDOC_TOPICS,
    TextCorpusDataModule,
    make_chunks,
    read_corpus,
    unigram_perplexity,
)


def corpus(tmp_path, text: str) -> str:
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_chunks_cover_every_target_once_and_pad_the_last():
    ids = list(range(10, 21))  # 11 tokens -> 10 targets
    x, lengths, y = make_chunks(ids, seq_len=4, pad_index=0).tensors
    assert x.shape == y.shape == (3, 4)
    assert lengths.tolist() == [4, 4, 2]
    assert x[0].tolist() == [10, 11, 12, 13] and y[0].tolist() == [11, 12, 13, 14]
    assert x[2].tolist() == [18, 19, 0, 0] and y[2].tolist() == [19, 20, 0, 0]
    targets = [t for row, n in zip(y.tolist(), lengths.tolist(), strict=True) for t in row[:n]]
    assert targets == ids[1:]


def test_splits_are_chronological_and_the_vocabulary_sees_training_only(tmp_path):
    text = "ab" * 40 + "abz" * 4 + "abq" * 4  # 'z' only in val, 'q' only in test
    dm = TextCorpusDataModule(
        path=corpus(tmp_path, text), seq_len=5, val_fraction=0.12, test_fraction=0.12
    )
    dm.setup()
    assert "".join(dm.splits["train"] + dm.splits["val"] + dm.splits["test"]) == text
    assert "z" in dm.splits["val"] and "q" in dm.splits["test"]
    assert set(dm.vocab.itos[4:]) == {"a", "b"}
    unk = dm.vocab.unk_index
    assert unk in dm.datasets["val"].tensors[2] and unk in dm.datasets["test"].tensors[2]
    assert unk not in dm.datasets["train"].tensors[0]
    x, lengths, y = next(iter(dm.train_dataloader()))
    n = len(dm.datasets["train"])  # 16 chunks of 5, one batch
    assert x.shape == y.shape == (n, 5) and lengths.shape == (n,)
    info = dm.info
    assert info["vocab_size"] == 6 and info["separator"] == "" and info["pad_index"] == 0
    assert set(info["unigram_perplexity"]) == {"val", "test"}


def test_word_level_and_vocabulary_limits(tmp_path):
    words = " ".join(["the cat sat on the mat"] * 20)
    dm = TextCorpusDataModule(path=corpus(tmp_path, words), level="word", max_vocab_size=6)
    dm.setup()
    assert dm.info["separator"] == " "
    assert dm.vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat"]
    dm = TextCorpusDataModule(path=corpus(tmp_path, words), level="word", min_freq=20)
    dm.setup()
    assert dm.vocab.itos[4:] == ["the"]  # "the" twice per sentence, others < 20 in training


def test_state_dict_round_trip_restores_the_vocabulary_before_or_after_setup(tmp_path):
    path = corpus(tmp_path, "hello world, " * 30)
    dm = TextCorpusDataModule(path=path)
    dm.setup()
    state = dm.state_dict()
    assert state == {"vocab": dm.vocab.state_dict()}
    shuffled = dict(state)
    shuffled["vocab"] = state["vocab"][:4] + state["vocab"][4:][::-1]  # another valid order
    before = TextCorpusDataModule(path=path)
    before.load_state_dict(shuffled)
    before.setup()
    after = TextCorpusDataModule(path=path)
    after.setup()
    after.load_state_dict(shuffled)  # Lightning restores after setup(): data is encoded again
    for restored in (before, after):
        assert restored.vocab.itos == shuffled["vocab"]
        assert restored.info["vocab"] == shuffled["vocab"]
        first = restored.datasets["train"].tensors[0][0]
        assert "".join(restored.vocab.decode(first.tolist())) == ("hello world, " * 30)[:64]


def test_prompts_encode_with_lengths_and_reject_empty(tmp_path):
    dm = TextCorpusDataModule(path=corpus(tmp_path, "abcabc" * 20), prompts=["ab", "c"])
    dm.setup()
    prompt, lengths = next(iter(dm.predict_dataloader()))
    assert lengths.tolist() == [2, 1]
    assert dm.vocab.decode(prompt[1].tolist()) == ["c"]
    with pytest.raises(ValueError, match="prompt '' has no char tokens"):
        dm.encode_prompts([""])


def test_pydoc_topics_is_a_real_corpus():
    text = read_corpus(PYDOC_TOPICS)
    assert len(text) > 100_000 and "statement" in text


def test_unigram_perplexity_by_hand():
    # train counts: 4 -> 2, 5 -> 1; add-one over V = 6: p(4) = 3/9, p(5) = 2/9
    ppl = unigram_perplexity([4, 4, 5], [4, 5], vocab_size=6)
    assert ppl == pytest.approx(math.exp(-(math.log(3 / 9) + math.log(2 / 9)) / 2))


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.txt: text corpus .* not found"):
        TextCorpusDataModule(path=str(tmp_path / "nope.txt")).setup()
    empty = corpus(tmp_path, "  \n\n ")
    with pytest.raises(ValueError, match="corpus.txt: text corpus is empty"):
        TextCorpusDataModule(path=empty).setup()
    with pytest.raises(ValueError, match="corpus.txt: 12 word tokens: too few"):
        TextCorpusDataModule(path=corpus(tmp_path, "w " * 12), level="word").setup()
    with pytest.raises(ValueError, match="level must be one of"):
        TextCorpusDataModule(level="byte")
    with pytest.raises(ValueError, match="val_fraction and test_fraction"):
        TextCorpusDataModule(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="max_vocab_size"):
        TextCorpusDataModule(max_vocab_size=4)
    with pytest.raises(RuntimeError, match="setup"):
        TextCorpusDataModule().encode_prompts(["a"])
    assert torch.is_tensor(make_chunks([1, 2], 3, 0).tensors[0])
