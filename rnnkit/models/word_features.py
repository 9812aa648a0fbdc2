"""Word representations for token models: a word embedding plus features of its characters.

:class:`WordEmbedder` turns word ids (and, when the data gives them, each word's character ids)
into one vector per token:

.. math::
    e_t = [\\,\\text{drop}_w(E_{w_t}) \\,;\\, \\text{Char}(c_{t,1..W})\\,]

- ``Char`` is a character CNN (Ma & Hovy 2016: embed the characters, one convolution, max over
  the word) or a character BiLSTM (Lample et al. 2016: the last forward and the first backward
  state), or nothing;
- word dropout (Lample et al. 2016's unknown-word replacement): in training, each word id is
  replaced by ``<unk>`` with probability ``word_dropout``, so the ``<unk>`` vector is trained
  and the model learns to lean on the characters of words it does not know;
- pretrained vectors (:meth:`WordEmbedder.load_vectors`, from
  :func:`rnnkit.data.vectors.vectors_for`) initialise the rows of the words they cover; with
  ``freeze_vectors`` those rows stay fixed (a buffer, so no optimizer or weight decay touches
  them) and only the other rows (words without a vector, ``<unk>``) train.

Inputs: ``(B, T)`` word ids, or ``(B, T, 1 + W)``: the word id then ``W`` character ids (0 pads),
as :class:`rnnkit.data.TaggingDataModule` gives them with ``char_features``.
Text classification can use it the same way (``SequenceModel(embedder=...)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells import LSTMCell
from rnnkit.errors import ConfigError
from rnnkit.models.builders import build_stack

CHAR_MODES = ("cnn", "lstm")


class CharCNN(nn.Module):
    """Ma & Hovy (2016): character embeddings, a 1-D convolution, max-pooling over the word.

    Shape: chars (N, W) ids (0 pads) -> (N, filters).
    """

    def __init__(
        self, char_vocab_size: int, embedding_dim: int, filters: int, kernel_size: int
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(char_vocab_size, embedding_dim, padding_idx=0)
        self.conv = nn.Conv1d(embedding_dim, filters, kernel_size, padding=kernel_size // 2)
        self.output_size = filters

    def forward(self, chars: Tensor) -> Tensor:
        h = self.conv(self.embedding(chars).transpose(1, 2))  # (N, filters, W)
        pad = (chars == 0).unsqueeze(1)  # (N, 1, W): padding never wins the max
        return h.masked_fill(pad[..., : h.shape[-1]], float("-inf")).amax(-1)


class CharBiLSTM(nn.Module):
    """Lample et al. (2016): a BiLSTM over the characters; the forward state after the last
    character and the backward state after the first, concatenated.

    Shape: chars (N, W) ids (0 pads, every word at least one character) -> (N, 2 * hidden).
    """

    def __init__(
        self, char_vocab_size: int, embedding_dim: int, hidden_size: int, backend: str = "auto"
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(char_vocab_size, embedding_dim, padding_idx=0)
        self.lstm = build_stack(
            LSTMCell, embedding_dim, hidden_size, bidirectional=True, backend=backend
        )
        self.hidden_size = hidden_size
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor) -> Tensor:
        lengths = (chars != 0).sum(1).clamp(min=1)  # (N,)
        out, _ = self.lstm(self.embedding(chars), lengths.cpu())  # (N, W, 2H)
        H = self.hidden_size
        last = out.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, 2 * H)).squeeze(1)
        return torch.cat([last[:, :H], out[:, 0, H:]], 1)


class WordEmbedder(nn.Module):
    """Word embedding, word dropout, optional pretrained rows, optional character features.

    Args:
        vocab_size, embedding_dim, pad_index: the word embedding (``<pad>`` row stays zero).
        unk_index: the ``<unk>`` id word dropout substitutes.
        char_vocab_size: characters in the data's table (``info["char_vocab_size"]``); needed
            with ``chars``.
        chars: ``"cnn"``, ``"lstm"`` or ``None`` (words only).
        char_embedding_dim: width of a character embedding (30 in Ma & Hovy, 25 in Lample).
        char_hidden_size: CNN filters, or the BiLSTM's H per direction.
        char_kernel_size: CNN window, in characters.
        word_dropout: probability of replacing a word id by ``<unk>`` in training.
        freeze_vectors: keep pretrained rows fixed (see the module docstring).
        dropout: on the concatenated vector (Ma & Hovy apply 0.5 before the BiLSTM).
        backend: of the character BiLSTM.

    Shape:
        x (B, T) or (B, T, 1 + W) -> (B, T, output_size).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        pad_index: int = 0,
        unk_index: int = 1,
        char_vocab_size: int | None = None,
        chars: str | None = "cnn",
        char_embedding_dim: int = 30,
        char_hidden_size: int = 50,
        char_kernel_size: int = 3,
        word_dropout: float = 0.0,
        freeze_vectors: bool = False,
        dropout: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if chars is not None and chars not in CHAR_MODES:
            raise ConfigError(f"model.embedder.chars={chars!r}: expected one of {CHAR_MODES}/null")
        if chars is not None and not char_vocab_size:
            raise ConfigError(
                f"model.embedder.chars={chars!r} needs the words' characters: set "
                "data.char_features=true (or model.embedder.chars=null)"
            )
        if not 0.0 <= word_dropout < 1.0:
            raise ConfigError(f"model.embedder.word_dropout must be in [0, 1), got {word_dropout}")
        self.pad_index, self.unk_index = pad_index, unk_index
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.freeze_vectors = freeze_vectors
        if freeze_vectors:  # fixed rows live in buffers: no gradient, no optimizer state
            self.register_buffer("fixed_vectors", torch.zeros(vocab_size, embedding_dim))
            self.register_buffer("fixed_rows", torch.zeros(vocab_size, dtype=torch.bool))
        self.chars: nn.Module | None = None
        if chars == "cnn":
            self.chars = CharCNN(
                char_vocab_size, char_embedding_dim, char_hidden_size, char_kernel_size
            )
        elif chars == "lstm":
            self.chars = CharBiLSTM(
                char_vocab_size, char_embedding_dim, char_hidden_size, backend=backend
            )
        self.dropout = nn.Dropout(dropout)
        self.output_size = embedding_dim + (self.chars.output_size if self.chars else 0)

    @torch.no_grad()
    def load_vectors(self, table: Tensor, found: Tensor) -> None:
        """Start from pretrained vectors: ``table (V, D)``, ``found (V,)`` the rows they cover."""
        weight = self.embedding.weight
        if table.shape != weight.shape:
            raise ConfigError(
                f"pretrained vectors are {tuple(table.shape)} (words, width) but the embedding "
                f"is {tuple(weight.shape)}; set model.embedding_dim={table.shape[1]}"
            )
        weight[found] = table[found].to(weight)
        if self.freeze_vectors:
            self.fixed_vectors.copy_(table)
            self.fixed_rows.copy_(found)

    def forward(self, x: Tensor) -> Tensor:
        words = x[..., 0] if x.dim() == 3 else x  # (B, T)
        if self.training and self.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.word_dropout
            words = words.masked_fill(drop & (words != self.pad_index), self.unk_index)
        e = self.embedding(words)  # (B, T, D)
        if self.freeze_vectors:
            fixed = self.fixed_rows[words].unsqueeze(-1)  # (B, T, 1)
            e = torch.where(fixed, self.fixed_vectors[words], e)
        if self.chars is not None:
            if x.dim() != 3:
                raise ValueError(
                    "WordEmbedder: character features need inputs (B, T, 1 + W) with the "
                    "characters of each word (data.char_features=true)"
                )
            real = words != self.pad_index  # encode real words only, not padding
            chars = x[..., 1:][real]  # (N, W)
            width = max(int((chars != 0).sum(1).max()), 1) if len(chars) else 1
            c = e.new_zeros(*words.shape, self.chars.output_size)
            c[real] = self.chars(chars[:, :width])  # the batch's longest word: (N, F)
            e = torch.cat([e, c], -1)
        return self.dropout(e)
