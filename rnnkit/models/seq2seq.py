r"""Encoder-decoder with attention (Sutskever 2014; Bahdanau 2015; Luong 2015).

.. math::
    \begin{aligned}
    m_{1..S},\ z &= \text{Encoder}(E_x x_{1..S})
        && \text{memory and final state (both directions)} \\
    s_0 &= \tanh(W_b z + b_b) && \text{bridge, one map per state tensor and layer} \\
    s_t &= \text{Decoder}([E_y y_{t-1} ; \tilde h_{t-1}],\ s_{t-1})
        && \text{input feeding: } \tilde h_{t-1} \text{ joins the input} \\
    c_t, \alpha_t &= \text{Attention}(s_t, m, \text{mask})
        && \text{or } c_t = C \text{ (fixed summary) without attention} \\
    \tilde h_t &= \tanh(W_c [s_t ; c_t]) && \text{attentional hidden state} \\
    p(y_t \mid y_{<t}, x) &= \text{softmax}(W_o \tilde h_t + b_o)
    \end{aligned}

Symbols: :math:`x` source tokens, :math:`y` target tokens (:math:`y_0 = \langle bos \rangle`),
:math:`E_x, E_y` embeddings, :math:`m_s` encoder outputs, :math:`z` the encoder's final state,
:math:`s_t` the decoder's state (its top output is the query), :math:`C` the plain context
vector (the encoder's last forward output joined with its first backward one),
:math:`\tilde h_t` the attentional hidden state, :math:`\tilde h_0 = 0`.

With ``attention="none"`` the same network is the plain context-vector model of
Cho et al. 2014: :math:`C` is the only thing the decoder learns about the source, through the
bridge and at every step, so a long source must fit in one vector.

With ``copy=True`` the output mixes generating from the vocabulary with copying a source
position through the attention weights (the pointer-generator of See et al. 2017, the copy
attention of OpenNMT-py after Gu et al. 2016):

.. math::
    p_{gen} = \sigma(w^\top [s_t ; c_t ; x_t] + b), \qquad
    P(w) = p_{gen}\, \text{softmax}(W_o \tilde h_t + b_o)_w
        + (1 - p_{gen}) \sum_{s :\, \hat x_s = w} \alpha_{t,s}

over the target vocabulary extended by the example's source tokens it lacks (:math:`\hat x_s`,
the source in that numbering: :mod:`rnnkit.data.extended_vocab`), so a character never seen in
training is produced by copying it; :math:`x_t` is the decoder's input at step t. A produced
extended id is fed back as ``<unk>``.

Training feeds the gold :math:`y_{t-1}` with probability ``teacher_forcing_ratio`` (per example
and step) and the model's own previous argmax otherwise. Greedy and beam decoding live in
:mod:`rnnkit.models.decoding`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import Cell, check_positive
from rnnkit.cells.gru import GRUCell
from rnnkit.layers.bidirectional import Bidirectional
from rnnkit.layers.stacked import Stacked
from rnnkit.layers.state import map_state
from rnnkit.models.attention import build_attention
from rnnkit.models.builders import build_stack
from rnnkit.models.decoding import Hypotheses, beam_search, greedy_decode

CellFactory = Callable[..., Cell]


def state_leaves(state: Any) -> list[Tensor]:
    """Every tensor of a (nested) state, in order: ``(h, c)`` -> ``[h, c]``."""
    leaves: list[Tensor] = []
    map_state(lambda s: leaves.append(s) or s, state)
    return leaves


def final_state_template(layer: nn.Module) -> Any:
    """A batch-1 state shaped like the final state ``layer`` returns (both directions)."""
    if isinstance(layer, Bidirectional):
        return (
            final_state_template(layer.forward_layer),
            final_state_template(layer.backward_layer),
        )
    return layer.initial_state(1)


class Bridge(nn.Module):
    r"""Map the encoder's final state to the decoder's initial state.

    .. math::
        z_l = [\text{every tensor of encoder layer } l\text{'s final state}], \qquad
        s_0^{(l, k)} = \tanh(W_{l,k} z_l + b_{l,k})

    for every state tensor :math:`k` of decoder layer :math:`l` (``h`` and ``c`` of an LSTM get
    their own maps). :math:`z_l` joins both directions of a bidirectional layer, and the
    ``(h, c)`` of an LSTM encoder, so any encoder cell feeds any decoder cell. Decoder layer
    :math:`l` reads encoder layer :math:`l` when both stacks have the same depth, otherwise
    every decoder layer reads the top encoder layer.

    Args:
        encoder: the encoder :class:`Stacked` (layers may be :class:`Bidirectional`).
        decoder: the decoder :class:`Stacked` (one direction).

    Shape:
        encoder final state (list, one entry per encoder layer) -> decoder state (list, one
        entry per decoder layer, each shaped as that layer's cell state), batch B.
    """

    def __init__(self, encoder: Stacked, decoder: Stacked) -> None:
        super().__init__()
        enc_widths = [
            sum(leaf.shape[-1] for leaf in state_leaves(final_state_template(layer)))
            for layer in encoder.layers
        ]
        self.same_depth = encoder.num_layers == decoder.num_layers
        self.templates = [layer.initial_state(1) for layer in decoder.layers]
        self.maps = nn.ModuleList()
        for l, template in enumerate(self.templates):
            width = enc_widths[l] if self.same_depth else enc_widths[-1]
            self.maps.append(
                nn.ModuleList(nn.Linear(width, leaf.shape[-1]) for leaf in state_leaves(template))
            )

    def forward(self, encoder_state: list) -> list:
        decoder_state = []
        for l, (template, maps) in enumerate(zip(self.templates, self.maps, strict=True)):
            source = encoder_state[l] if self.same_depth else encoder_state[-1]
            z = torch.cat(state_leaves(source), dim=-1)  # (B, Z_l)
            produced = iter([torch.tanh(linear(z)) for linear in maps])  # each (B, width_k)
            decoder_state.append(map_state(lambda _, p=produced: next(p), template))
        return decoder_state


class EncoderOutput(NamedTuple):
    """What the decoder reads at every step; batch-first, batch B.

    memory (B, S, K) encoder outputs (zero on padding); keys: the attention's ``prepare``
    of the memory, or None without attention; mask (B, S) true on real source positions;
    summary (B, K) the plain context vector C (None with attention); state: the decoder's
    initial state (list, one entry per decoder layer); copy_ids (B, S): the source in the
    extended target numbering (copy models; else None), extended_size: the width
    :math:`V + n_{oov}` a copy model predicts over (0 without copy).
    """

    memory: Tensor
    keys: Tensor | None
    mask: Tensor
    summary: Tensor | None
    state: list
    copy_ids: Tensor | None = None
    extended_size: int = 0

    def repeat_interleave(self, k: int) -> EncoderOutput:
        """Each example ``k`` times in a row (``b -> b*k .. b*k+k-1``), for beam search."""

        def rep(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.repeat_interleave(k, dim=0)

        return EncoderOutput(
            rep(self.memory),
            rep(self.keys),
            rep(self.mask),
            rep(self.summary),
            map_state(lambda s: s.repeat_interleave(k, dim=0), self.state),
            rep(self.copy_ids),
            self.extended_size,
        )


class Seq2Seq(nn.Module):
    """Encoder-decoder of the module docstring, assembled from built parts.

    Use :func:`build_seq2seq` to wire one from sizes and cell factories.

    Args:
        src_embedding: ``nn.Embedding(V_src, E)``.
        encoder: :class:`Stacked` over the source embeddings, output width K.
        tgt_embedding: ``nn.Embedding(V_tgt, E)``.
        decoder: :class:`Stacked` (one direction), input width ``E (+ H if input_feeding)``,
            output width H.
        attention: a module with ``prepare``/``forward`` (see :mod:`rnnkit.models.attention`),
            or ``None`` for the plain context-vector model.
        bridge: :class:`Bridge`, or ``None`` to start the decoder from its own initial state.
        input_feeding: feed :math:`\\tilde h_{t-1}` into the decoder with :math:`y_{t-1}`.
        dropout: on the embeddings and on :math:`\\tilde h_t` before the output layer.
        teacher_forcing_ratio: probability of feeding the gold previous token in training.
        pad_index, bos_index, eos_index, unk_index: special target indices.
        copy: mix in copying source positions (module docstring; needs attention).

    Shape:
        forward: src (B, S), src_lengths (B,), tgt_in (B, T) starting with ``<bos>``, and
        for a copy model copy_ids (B, S) -> scores (B, T, V_tgt) (logits; for a copy model
        log-probabilities over the extended vocabulary, (B, T, V_ext): softmax and
        cross-entropy read both alike), attention weights (B, T, S) or None.
    """

    def __init__(
        self,
        src_embedding: nn.Embedding,
        encoder: Stacked,
        tgt_embedding: nn.Embedding,
        decoder: Stacked,
        attention: nn.Module | None = None,
        bridge: Bridge | None = None,
        input_feeding: bool = True,
        dropout: float = 0.0,
        teacher_forcing_ratio: float = 1.0,
        pad_index: int = 0,
        bos_index: int = 2,
        eos_index: int = 3,
        unk_index: int = 1,
        copy: bool = False,
    ) -> None:
        super().__init__()
        if copy and attention is None:
            raise ValueError(
                "Seq2Seq: copy=True copies through the attention weights; set an attention"
            )
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}"
            )
        hidden = decoder.output_size
        expected = tgt_embedding.embedding_dim + (hidden if input_feeding else 0)
        if decoder.input_size != expected:
            raise ValueError(
                f"Seq2Seq: decoder input_size must be embedding ({tgt_embedding.embedding_dim})"
                f"{' + hidden (' + str(hidden) + ') for input feeding' if input_feeding else ''}"
                f" = {expected}, got {decoder.input_size}"
            )
        self.src_embedding, self.encoder = src_embedding, encoder
        self.tgt_embedding, self.decoder = tgt_embedding, decoder
        self.attention, self.bridge = attention, bridge
        self.combine = nn.Linear(hidden + encoder.output_size, hidden)  # W_c
        self.generator = nn.Linear(hidden, tgt_embedding.num_embeddings)  # W_o, b_o
        self.copy = copy
        gate_width = hidden + encoder.output_size + tgt_embedding.embedding_dim
        self.copy_gate = nn.Linear(gate_width, 1) if copy else None  # w, b of p_gen
        self.dropout = nn.Dropout(dropout)
        self.input_feeding = input_feeding
        self.teacher_forcing_ratio = teacher_forcing_ratio
        self.pad_index, self.bos_index, self.eos_index = pad_index, bos_index, eos_index
        self.unk_index = unk_index

    @property
    def hidden_size(self) -> int:
        return self.decoder.output_size

    @property
    def vocab_size(self) -> int:
        return self.generator.out_features

    def encode(
        self, src: Tensor, src_lengths: Tensor, copy_ids: Tensor | None = None
    ) -> EncoderOutput:
        """Run the encoder and prepare everything the decoder steps read.

        ``copy_ids`` (B, S), the source in the extended target numbering, is needed by a copy
        model (and ignored by others).
        """
        if self.copy and copy_ids is None:
            raise ValueError("Seq2Seq(copy=True) needs copy_ids, the source in target numbering")
        src_lengths = src_lengths.to(src.device)
        memory, final = self.encoder(self.dropout(self.src_embedding(src)), src_lengths)
        B, S, _ = memory.shape  # (B, S, K)
        mask = torch.arange(S, device=src.device) < src_lengths[:, None]  # (B, S)
        keys = self.attention.prepare(memory) if self.attention is not None else None
        summary = self._summary(memory, src_lengths) if self.attention is None else None
        if self.bridge is not None:
            state = self.bridge(final)
        else:
            state = [
                layer.initial_state(B, device=src.device, dtype=memory.dtype)
                for layer in self.decoder.layers
            ]
        if not self.copy:
            return EncoderOutput(memory, keys, mask, summary, state)
        extended = max(self.vocab_size, int(copy_ids.max()) + 1)
        return EncoderOutput(memory, keys, mask, summary, state, copy_ids, extended)

    def _summary(self, memory: Tensor, lengths: Tensor) -> Tensor:
        """C: forward output at each sequence's last step, backward output at its first."""
        B = memory.shape[0]
        last = memory[torch.arange(B, device=memory.device), lengths - 1]  # (B, K)
        top = self.encoder.layers[-1]
        if not isinstance(top, Bidirectional):
            return last
        H_fwd = top.forward_layer.output_size
        return torch.cat([last[:, :H_fwd], memory[:, 0, H_fwd:]], dim=-1)  # (B, K)

    def initial_feed(self, batch_size: int, like: Tensor) -> Tensor:
        """:math:`\\tilde h_0 = 0`, shape (B, H)."""
        return like.new_zeros(batch_size, self.hidden_size)

    def decode_step(
        self, y_prev: Tensor, state: list, feed: Tensor, enc: EncoderOutput
    ) -> tuple[Tensor, list, Tensor, Tensor | None]:
        """One decoder step.

        Shape:
            y_prev (B,) previous tokens (extended ids are read as ``<unk>``), state (decoder
            state), feed (B, H) is :math:`\\tilde h_{t-1}` -> scores (B, V_tgt) (a copy model:
            log-probabilities (B, V_ext)), new state, :math:`\\tilde h_t` (B, H), attention
            weights (B, S) or None.
        """
        y_prev = y_prev.masked_fill(y_prev >= self.vocab_size, self.unk_index)
        x_t = self.dropout(self.tgt_embedding(y_prev))  # (B, E)
        embedded = x_t
        if self.input_feeding:
            x_t = torch.cat([x_t, feed], dim=-1)  # (B, E + H)
        out, state = self.decoder(x_t.unsqueeze(1), None, state)  # (B, 1, H)
        s_t = out.squeeze(1)  # (B, H)
        if self.attention is not None:
            context, weights = self.attention(s_t, enc.keys, enc.memory, enc.mask)  # (B, K)
        else:
            context, weights = enc.summary, None
        h_tilde = torch.tanh(self.combine(torch.cat([s_t, context], dim=-1)))  # (B, H)
        logits = self.generator(self.dropout(h_tilde))  # (B, V_tgt)
        if self.copy:
            gate_in = torch.cat([s_t, context, embedded], dim=-1)
            logits = self._mix_copy(logits, torch.sigmoid(self.copy_gate(gate_in)), weights, enc)
        return logits, state, h_tilde, weights

    @staticmethod
    def _mix_copy(logits: Tensor, p_gen: Tensor, weights: Tensor, enc: EncoderOutput) -> Tensor:
        r""":math:`\log P(w)` of the module docstring. Shape: logits (B, V), p_gen (B, 1),
        weights (B, S) -> (B, V_ext)."""
        generate = torch.softmax(logits.float(), dim=-1) * p_gen  # (B, V)
        mixed = F.pad(generate, (0, enc.extended_size - logits.shape[1]))  # (B, V_ext)
        mixed = mixed.scatter_add(1, enc.copy_ids, weights.float() * (1.0 - p_gen))
        return torch.log(mixed.clamp_min(1e-12)).to(logits.dtype)

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        teacher_forcing_ratio: float | None = None,
        copy_ids: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Score ``tgt_in`` (``<bos> y_1 .. y_{T-1}``); the scores predict ``y_1 .. y_T``.

        ``teacher_forcing_ratio`` defaults to the model's own in training and to 1 (always the
        gold token) in eval mode, so validation losses are teacher-forced.
        """
        ratio = teacher_forcing_ratio
        if ratio is None:
            ratio = self.teacher_forcing_ratio if self.training else 1.0
        enc = self.encode(src, src_lengths, copy_ids)
        B, T = tgt_in.shape
        state, feed = enc.state, self.initial_feed(B, enc.memory)
        gold = tgt_in.unbind(1)
        y_prev = gold[0]
        logits, weights = [], []
        for t in range(T):
            if t > 0 and ratio < 1.0:
                own = logits[-1].argmax(-1)  # (B,), no gradient through the choice
                use_gold = torch.rand(B, device=src.device) < ratio
                y_prev = torch.where(use_gold, gold[t], own)
            elif t > 0:
                y_prev = gold[t]
            logits_t, state, feed, w_t = self.decode_step(y_prev, state, feed, enc)
            logits.append(logits_t)
            weights.append(w_t)
        attn = torch.stack(weights, dim=1) if self.attention is not None else None  # (B, T, S)
        return torch.stack(logits, dim=1), attn  # (B, T, V_tgt)

    @torch.no_grad()
    def generate(
        self,
        src: Tensor,
        src_lengths: Tensor,
        beam_size: int = 1,
        max_length: int = 100,
        length_penalty: float = 0.0,
        min_length: int = 0,
        nbest: int = 1,
        copy_ids: Tensor | None = None,
    ) -> Hypotheses:
        """Decode greedily (``beam_size=1``) or with beam search; see :mod:`.decoding`.

        ``nbest`` hypotheses per example (beam search, ``nbest <= beam_size``) come back
        example-major, best first; ``min_length`` tokens at least come before ``<eos>``.
        """
        if beam_size == 1 and nbest == 1:
            return greedy_decode(self, src, src_lengths, max_length, min_length, copy_ids)
        return beam_search(
            self,
            src,
            src_lengths,
            beam_size,
            max_length,
            length_penalty,
            min_length=min_length,
            nbest=nbest,
            copy_ids=copy_ids,
        )


def build_seq2seq(
    src_vocab_size: int,
    tgt_vocab_size: int,
    encoder_cell: CellFactory = GRUCell,
    decoder_cell: CellFactory | None = None,
    *,
    embedding_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = True,
    attention: str = "general",
    attention_size: int | None = None,
    input_feeding: bool = True,
    bridge: bool = True,
    dropout: float = 0.0,
    teacher_forcing_ratio: float = 1.0,
    pad_index: int = 0,
    bos_index: int = 2,
    eos_index: int = 3,
    unk_index: int = 1,
    copy: bool = False,
    backend: str = "auto",
) -> Seq2Seq:
    """Wire a :class:`Seq2Seq` from sizes and cell factories.

    The widths have no default: ``configs/model/seq2seq.yaml`` (or the caller) chooses them.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (from the data).
        encoder_cell: cell factory of the encoder, e.g. ``rnnkit.cells.LSTMCell`` or a Hydra
            ``_partial_`` config.
        decoder_cell: cell factory of the decoder (default: the encoder's).
        embedding_size: E of both embeddings.
        hidden_size: H of the decoder and width K of the encoder's output; a bidirectional
            encoder gives each direction H/2 (so ``hidden_size`` must be even), which lets
            ``dot`` attention compare decoder and encoder states directly.
        num_layers: depth of the encoder and of the decoder.
        bidirectional: encoder reads both directions.
        attention: ``"bahdanau"``, ``"dot"``, ``"general"`` or ``"none"``.
        attention_size: hidden width of the additive score (default H).
        input_feeding: feed :math:`\\tilde h_{t-1}` back into the decoder (Luong et al.).
        bridge: initialise the decoder from the encoder's final state (else from zeros).
        dropout: between layers, on embeddings and before the output layer.
        teacher_forcing_ratio: probability of feeding the gold previous token in training.
        pad_index, bos_index, eos_index, unk_index: special indices (from the data).
        copy: the pointer-generator output (copy source tokens, unseen ones included).
        backend: execution backend of every recurrent layer.
    """
    check_positive(
        src_vocab_size=src_vocab_size,
        tgt_vocab_size=tgt_vocab_size,
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
    )
    if bidirectional and hidden_size % 2:
        raise ValueError(
            f"hidden_size must be even with a bidirectional encoder (H/2 per direction), "
            f"got {hidden_size}"
        )
    decoder_cell = decoder_cell or encoder_cell
    encoder = build_stack(
        encoder_cell,
        input_size=embedding_size,
        hidden_size=hidden_size // 2 if bidirectional else hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        backend=backend,
    )
    decoder = build_stack(
        decoder_cell,
        input_size=embedding_size + (hidden_size if input_feeding else 0),
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout,
        backend=backend,
    )
    return Seq2Seq(
        src_embedding=nn.Embedding(src_vocab_size, embedding_size, padding_idx=pad_index),
        encoder=encoder,
        tgt_embedding=nn.Embedding(tgt_vocab_size, embedding_size, padding_idx=pad_index),
        decoder=decoder,
        attention=build_attention(attention, hidden_size, encoder.output_size, attention_size),
        bridge=Bridge(encoder, decoder) if bridge else None,
        input_feeding=input_feeding,
        dropout=dropout,
        teacher_forcing_ratio=teacher_forcing_ratio,
        pad_index=pad_index,
        bos_index=bos_index,
        eos_index=eos_index,
        unk_index=unk_index,
        copy=copy,
    )
