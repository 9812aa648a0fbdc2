"""Recurrent language model, and its conditional (vector-to-sequence) form.

References:
    Mikolov et al. 2010, "Recurrent neural network based language model" (the RNN LM).
    Graves 2013, "Generating Sequences With Recurrent Neural Networks" (sampling step by step).
    Press & Wolf 2017; Inan et al. 2017 (tying the output head to the input embedding).
    Vinyals et al. 2015, "Show and Tell" (a feature vector sets the decoder's initial state:
    the vector-to-sequence shape).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State, check_positive
from rnnkit.layers.state import map_state
from rnnkit.models.builders import CellFactory, build_stack


class LanguageModel(nn.Module):
    r"""Next-token model: embedding, recurrent stack, per-step linear head over the vocabulary.

    .. math::
        e_t = E[x_t], \quad (o_t, s_t) = \text{stack}(e_t, s_{t-1}), \quad
        p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(W o_t + b), \quad
        s_0 = \begin{cases} A v + a & \text{conditional (vector } v\text{)} \\
        \text{zeros or learned} & \text{otherwise} \end{cases}

    With ``cond_size > 0`` a vector :math:`v` (a class one-hot or embedding, image features,
    any feature vector) is mapped by one learned linear layer :math:`A` to the initial state of
    every layer, every part of it: for an LSTM both :math:`h_0` and :math:`c_0`. This is the
    one-to-many shape (Vinyals et al. 2015): one vector in, a sequence out.

    Args:
        cell: cell factory, e.g. ``rnnkit.cells.LSTMCell`` or a Hydra ``_partial_`` config.
        vocab_size: V, tokens in the vocabulary (the head's width).
        embedding_size: E, width of the token embedding.
        hidden_size: H of every recurrent layer.
        num_layers: recurrent layers stacked.
        dropout: on the embedding, between layers and before the head.
        tie_weights: share the head's weight with the embedding (needs ``E`` equal to the
            stack's output width).
        cond_size: C, width of the conditioning vector; 0 for a plain language model.
        learn_init: learn the initial state (unconditional use).
        backend: execution backend of the recurrent layers.

    Shape:
        x (B, T) token ids, lengths (B,), cond (B, C) -> logits (B, T, V), final state
        (a list with one cell state per layer). ``cond`` sets the initial state only when no
        ``state`` is given (a state carried from earlier steps already holds it).
    """

    def __init__(
        self,
        cell: CellFactory,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        cond_size: int = 0,
        learn_init: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(vocab_size=vocab_size, embedding_size=embedding_size)
        if isinstance(cond_size, bool) or not isinstance(cond_size, int) or cond_size < 0:
            raise ValueError(f"cond_size must be a non-negative integer, got {cond_size!r}")
        self.vocab_size = vocab_size
        self.cond_size = cond_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = build_stack(
            cell,
            input_size=embedding_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            learn_init=learn_init,
            backend=backend,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        if tie_weights:
            if self.rnn.output_size != embedding_size:
                raise ValueError(
                    "tie_weights=True needs embedding_size equal to the recurrent output width, "
                    f"got embedding_size={embedding_size} and output width "
                    f"{self.rnn.output_size}"
                )
            self.head.weight = self.embedding.weight
        if cond_size:
            # one zero state of batch 1 per layer: only its structure and shapes are used
            self._templates = [layer.initial_state(1) for layer in self.rnn.layers]
            self._leaf_sizes: list[int] = []
            for template in self._templates:
                map_state(lambda s: self._leaf_sizes.append(s[0].numel()) or s, template)
            self.init_map = nn.Linear(cond_size, sum(self._leaf_sizes))

    def initial_state(self, cond: Tensor) -> list[State]:
        """Map ``cond (B, C)`` to every layer's initial state (the vector-to-sequence step)."""
        if not self.cond_size:
            raise ValueError("LanguageModel: cond= needs a model built with cond_size > 0")
        if cond.dim() != 2 or cond.shape[-1] != self.cond_size:
            raise ValueError(
                f"LanguageModel: expected cond of shape (B, cond_size={self.cond_size}), "
                f"got {tuple(cond.shape)}"
            )
        B = cond.shape[0]
        parts = iter(self.init_map(cond).split(self._leaf_sizes, dim=-1))  # each (B, numel)
        return [
            map_state(lambda s: next(parts).reshape(B, *s.shape[1:]), template)
            for template in self._templates
        ]

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: list[State] | None = None,
        cond: Tensor | None = None,
    ) -> tuple[Tensor, list[State]]:
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(
                f"LanguageModel: expected token ids x of shape (B, T) and dtype long, got "
                f"{tuple(x.shape)} {x.dtype}"
            )
        if state is None and cond is not None:
            state = self.initial_state(cond)
        elif state is None and self.cond_size:
            raise ValueError("LanguageModel: built with cond_size > 0, so cond= is required")
        e = self.dropout(self.embedding(x))  # (B, T, E)
        out, state = self.rnn(e, lengths, state)  # (B, T, H)
        return self.head(self.dropout(out)), state  # (B, T, V)

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        lengths: Tensor | None = None,
        cond: Tensor | None = None,
        stop_index: int | None = None,
    ) -> Tensor:
        """Continue each prompt by up to ``max_new_tokens`` tokens, one step at a time.

        The prompt is read once; afterwards only the newest token goes through the network,
        with the recurrent state carried from step to step (the prefix is never re-run).
        Call ``model.eval()`` first unless dropout during sampling is wanted.

        Args:
            prompt_ids: (B, P) ids, right-padded when ``lengths`` is given.
            max_new_tokens: tokens to add.
            temperature: divides the logits; 0 means greedy (argmax).
            top_k: sample only among the ``top_k`` most likely tokens.
            generator: random generator on the model's device, for reproducible samples.
            lengths: (B,) true prompt lengths; each continuation starts after its own prompt.
            cond: (B, C) conditioning vectors for a conditional model.
            stop_index: a token (e.g. ``<eos>``) that ends a sequence: after it the sequence
                repeats it, and generation stops early once every sequence has produced it.

        Returns:
            (B, N) new token ids, ``N <= max_new_tokens`` (``N < max_new_tokens`` only when
            every sequence stopped).
        """
        check_positive(max_new_tokens=max_new_tokens)
        logits, state = self(prompt_ids, lengths, cond=cond)  # (B, P, V)
        if lengths is None:
            last = logits[:, -1]  # (B, V)
        else:
            index = (lengths.to(logits.device) - 1).view(-1, 1, 1).expand(-1, 1, logits.shape[-1])
            last = logits.gather(1, index).squeeze(1)  # (B, V)
        finished = torch.zeros(prompt_ids.shape[0], dtype=torch.bool, device=prompt_ids.device)
        new_tokens = []
        for _ in range(max_new_tokens):
            token = sample_logits(last, temperature, top_k, generator)  # (B,)
            if stop_index is not None:
                token = token.masked_fill(finished, stop_index)
                finished = finished | (token == stop_index)
            new_tokens.append(token)
            if stop_index is not None and bool(finished.all()):
                break
            logits, state = self(token[:, None], None, state)  # (B, 1, V)
            last = logits[:, 0]
        return torch.stack(new_tokens, dim=1)  # (B, N)


def sample_logits(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row of ``logits (B, V)``: softmax(logits / temperature), top-k.

    ``temperature == 0`` returns the argmax; it is the limit of small temperatures.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        check_positive(top_k=top_k)
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.float().softmax(dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
