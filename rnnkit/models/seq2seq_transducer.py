r"""Edit-action transducer with hard monotonic attention (Aharoni & Goldberg 2017; Makarov &
Clematide 2018), for word forms: inflection, lemmas, spelling.

Instead of generating the target from scratch, the decoder edits the source left to right. A
pointer :math:`i` starts on the first source character; every step emits one action:

- ``COPY``: output :math:`x_i` and move the pointer on (a source character the target
  vocabulary lacks is output as itself, in the extended numbering of
  :mod:`rnnkit.data.extended_vocab`);
- ``DELETE``: move the pointer on, output nothing;
- ``INSERT(c)``: output the target token :math:`c`, the pointer stays;
- ``END`` (``INSERT(<eos>)``): only once the pointer has passed the last source character.

.. math::
    \begin{aligned}
    m_{1..S+1},\ z &= \text{BiEncoder}(E_x x_1, \dots, E_x x_S, e_{end})
        && \text{(a learned end-of-word symbol: the pointer past the end)} \\
    s_0 &= \text{Bridge}(z) \\
    s_t &= \text{Decoder}([E_a a_{t-1} ; m_{i_t}],\ s_{t-1})
        && \text{hard attention: the state under the pointer} \\
    p(a_t \mid a_{<t}, x) &= \text{softmax}_{\text{legal}}
        \big(W_o \tanh(W_c [s_t ; m_{i_t}]) + b_o\big)
    \end{aligned}

over the :math:`A = V + 2` actions (``INSERT`` of each of the V target tokens, ``COPY``,
``DELETE``); the softmax runs over the legal ones only (``COPY``/``DELETE`` need a character
under the pointer, ``END`` needs none; ``INSERT(<pad>)``/``INSERT(<bos>)`` never).
:math:`a_0` is ``<bos>``.

Training is teacher-forced on one *oracle* action sequence per pair
(:func:`oracle_actions`): a longest common subsequence of source and target is copied, and in
each gap between copied characters the source's characters are deleted before the target's
are inserted (``deletes_first``, so Dutch ``halfleeg -> halflege`` copies its ``g``: 6 C, DEL,
C, INS(e), END), or inserted first, so a substitution is decided while its source character
is under the pointer (``Abgott -> Abgötter``: C C C INS(ö) DEL C C INS(e) INS(r) END; the
better order depends on the language, a model option). With the oracle's pointer
positions known, the whole decoder input is known too, so training runs the decoder over the
sequence in one call. Decoding is greedy (:meth:`EditTransducer.generate`).

Why for word forms: copying is the default and costs the network nothing to learn, so on a few
hundred pairs it only has to learn where and what to edit, which is what the suffix rules of
:mod:`rnnkit.baselines.word_forms` know from the start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnkit.cells.base import check_positive
from rnnkit.cells.gru import GRUCell
from rnnkit.layers.stacked import Stacked
from rnnkit.models.builders import build_stack
from rnnkit.models.decoding import Hypotheses
from rnnkit.models.seq2seq import Bridge, CellFactory


def oracle_actions(
    source: Sequence[int],
    target: Sequence[int],
    copy: int,
    delete: int,
    end: int,
    unknown: int,
    deletes_first: bool = True,
) -> list[int]:
    """The edit actions turning ``source`` into ``target`` (module docstring).

    ``source`` and ``target`` are ids in one numbering (the extended target numbering: equal
    ids are equal tokens), without framing tokens. The action ids: ``INSERT(v)`` is ``v`` for
    the V vocabulary tokens, ``copy`` is V, ``delete`` V + 1, ``end`` the ``<eos>`` id; a
    token outside the vocabulary (an extended id) can only be copied, and is inserted as
    ``unknown``. Ends with ``end``.

    The actions follow a longest common subsequence (Wagner & Fischer 1974's table over the
    suffixes), copied as early as the table allows. Where the table allows both, a gap
    deletes first (``deletes_first``; ``halfleeg -> halflege``: 6 C, DEL, C, INS(e), the ``g``
    copied) or inserts first (6 C, INS(g), C, DEL: the ``g`` generated; ``Abgott ->
    Abgötter``: C C C INS(ö) DEL C C INS(e) INS(r), ``ö`` decided with ``o`` under the
    pointer, where deleting first gives C C C DEL INS(ö) C C INS(e) INS(r)).
    """
    S, T = len(source), len(target)
    # lcs[i][j]: longest common subsequence of source[i:] and target[j:]
    lcs = [[0] * (T + 1) for _ in range(S + 1)]
    for i in range(S - 1, -1, -1):
        for j in range(T - 1, -1, -1):
            if source[i] == target[j]:
                lcs[i][j] = lcs[i + 1][j + 1] + 1
            else:
                lcs[i][j] = max(lcs[i + 1][j], lcs[i][j + 1])
    actions, i, j = [], 0, 0
    while i < S or j < T:
        if i < S and j < T and source[i] == target[j] and lcs[i][j] == lcs[i + 1][j + 1] + 1:
            actions.append(copy)
            i, j = i + 1, j + 1
        elif i < S and (j == T or deletes_first and lcs[i + 1][j] == lcs[i][j]):
            actions.append(delete)
            i += 1
        elif j < T and (i == S or lcs[i][j + 1] == lcs[i][j]):
            actions.append(int(target[j]) if target[j] < copy else unknown)
            j += 1
        else:
            actions.append(delete)
            i += 1
    actions.append(end)
    return actions


def pointer_positions(actions: Sequence[int], copy: int, delete: int) -> list[int]:
    """The pointer before each action: how many ``COPY``/``DELETE`` precede it."""
    positions, i = [], 0
    for a in actions:
        positions.append(i)
        i += a in (copy, delete)
    return positions


class TransducerNet(nn.Module):
    """One network of the module docstring: encoder, bridge, decoder and action scores.

    Args:
        src_embedding: ``nn.Embedding(V_src, E)``.
        encoder: :class:`Stacked` over the source embeddings, output width K.
        action_embedding: ``nn.Embedding(V_tgt + 2, E)``, the previous action.
        decoder: :class:`Stacked` (one direction), input width ``E + K``, output width H.
        bridge: :class:`Bridge` from the encoder's final state, or ``None`` (zeros).
        dropout: on the embeddings and before the output layer.
    """

    def __init__(
        self,
        src_embedding: nn.Embedding,
        encoder: Stacked,
        action_embedding: nn.Embedding,
        decoder: Stacked,
        bridge: Bridge | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        K, H = encoder.output_size, decoder.output_size
        expected = action_embedding.embedding_dim + K
        if decoder.input_size != expected:
            raise ValueError(
                f"TransducerNet: decoder input_size must be action embedding "
                f"({action_embedding.embedding_dim}) + encoder output ({K}) = {expected}, "
                f"got {decoder.input_size}"
            )
        self.src_embedding, self.encoder = src_embedding, encoder
        self.action_embedding, self.decoder, self.bridge = action_embedding, decoder, bridge
        # the end-of-word symbol's embedding, read by the encoder after the last character
        self.end_embedding = nn.Parameter(torch.randn(src_embedding.embedding_dim))
        self.combine = nn.Linear(H + K, H)  # W_c
        self.actions = nn.Linear(H, action_embedding.num_embeddings)  # W_o, b_o
        self.dropout = nn.Dropout(dropout)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, list]:
        """Memory with the end position, (B, S + 1, K), and the decoder's initial state.

        The source is encoded with an end-of-word embedding after its last character, so the
        memory under the pointer past the end has read the whole word in both directions.
        """
        embedded = nn.functional.pad(self.src_embedding(src), (0, 0, 0, 1))  # (B, S + 1, E)
        at_end = torch.arange(src.shape[1] + 1, device=src.device) == src_lengths[:, None]
        embedded = torch.where(at_end[..., None], self.end_embedding.to(embedded.dtype), embedded)
        memory, final = self.encoder(self.dropout(embedded), src_lengths + 1)  # (B, S + 1, K)
        B = memory.shape[0]
        if self.bridge is not None:
            return memory, self.bridge(final)
        state = [
            layer.initial_state(B, device=src.device, dtype=memory.dtype)
            for layer in self.decoder.layers
        ]
        return memory, state

    def forward(
        self, previous: Tensor, pointed: Tensor, state: list, lengths: Tensor | None = None
    ) -> tuple[Tensor, list]:
        """Action logits for every step of a sequence.

        Shape: previous (B, N) actions :math:`a_{t-1}`, pointed (B, N, K) the memory under the
        pointer, lengths (B,) or None -> logits (B, N, A), the decoder's state.
        """
        inputs = torch.cat([self.dropout(self.action_embedding(previous)), pointed], dim=-1)
        out, state = self.decoder(inputs, lengths, state)  # (B, N, H)
        h_tilde = torch.tanh(self.combine(torch.cat([out, pointed], dim=-1)))
        return self.actions(self.dropout(h_tilde)).float(), state


class EditTransducer(nn.Module):
    """The transducer of the module docstring, an ensemble of one or more
    :class:`TransducerNet` (build one with :func:`build_transducer`).

    An ensemble's members are trained side by side on the same batches from their own random
    initialisations (the loss is the mean of theirs); decoding takes the action of highest
    mean probability over the members at every step (one pointer, one action history).

    Args:
        members: the networks (same vocabularies).
        pad_index, bos_index, eos_index, unk_index: special target indices.
        deletes_first: the oracle's order in a gap (:func:`oracle_actions`).

    Shape:
        :meth:`oracle_scores`: src (B, S), src_lengths (B,), copy_ids (B, S) the source in the
        extended target numbering, tgt (B, T) ``<bos> y .. <eos>`` in that numbering ->
        action log-probabilities (M*B, N, A) of the M members (member-major) and the oracle
        actions (M*B, N), ``<pad>`` after each example's ``END``.
    """

    def __init__(
        self,
        members: Sequence[TransducerNet],
        pad_index: int = 0,
        bos_index: int = 2,
        eos_index: int = 3,
        unk_index: int = 1,
        deletes_first: bool = True,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("EditTransducer needs at least one member network")
        self.members = nn.ModuleList(members)
        self.pad_index, self.bos_index, self.eos_index = pad_index, bos_index, eos_index
        self.unk_index, self.deletes_first = unk_index, deletes_first
        num_actions = members[0].action_embedding.num_embeddings
        self.copy_action, self.delete_action = num_actions - 2, num_actions - 1

    @property
    def vocab_size(self) -> int:
        """V, the target vocabulary (an action is ``INSERT`` of one of them, or COPY/DELETE)."""
        return self.copy_action

    def _legal(self, pointers: Tensor, lengths: Tensor) -> Tensor:
        """(..., A) true where an action may be taken with the pointer at ``pointers``."""
        shape = (*pointers.shape, self.copy_action + 2)
        legal = torch.ones(shape, dtype=torch.bool, device=pointers.device)
        legal[..., [self.pad_index, self.bos_index]] = False
        at_end = pointers >= lengths
        legal[..., self.eos_index] = at_end
        legal[..., self.copy_action] = ~at_end
        legal[..., self.delete_action] = ~at_end
        return legal

    def _log_softmax(self, logits: Tensor, legal: Tensor) -> Tensor:
        return torch.log_softmax(logits.masked_fill(~legal, -1e9), dim=-1)

    def oracle(self, copy_ids: Tensor, src_lengths: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        """Oracle actions (B, N) padded with ``<pad>`` and their pointer positions (B, N)."""
        rows, positions = [], []
        for source, length, target in zip(
            copy_ids.tolist(), src_lengths.tolist(), tgt.tolist(), strict=True
        ):
            inner = [t for t in target[1:] if t not in (self.pad_index, self.eos_index)]
            actions = oracle_actions(
                source[:length],
                inner,
                self.copy_action,
                self.delete_action,
                self.eos_index,
                self.unk_index,
                self.deletes_first,
            )
            rows.append(torch.tensor(actions))
            positions.append(
                torch.tensor(pointer_positions(actions, self.copy_action, self.delete_action))
            )
        pad = nn.utils.rnn.pad_sequence
        device = tgt.device
        actions = pad(rows, batch_first=True, padding_value=self.pad_index).to(device)
        return actions, pad(positions, batch_first=True).to(device)

    def oracle_scores(
        self, src: Tensor, src_lengths: Tensor, copy_ids: Tensor, tgt: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced action log-probabilities and the oracle actions (class docstring).

        The oracle fixes every step's pointer and previous action, so each member runs its
        decoder over the whole sequence in one call.
        """
        src_lengths = src_lengths.to(src.device)
        actions, pointers = self.oracle(copy_ids, src_lengths, tgt)  # (B, N) each
        B, N = actions.shape
        previous = torch.cat([actions.new_full((B, 1), self.bos_index), actions[:, :-1]], 1)
        lengths = (actions != self.pad_index).sum(-1)
        legal = self._legal(pointers, src_lengths[:, None].expand(B, N))  # (B, N, A)
        scores = []
        for member in self.members:
            memory, state = member.encode(src, src_lengths)
            index = pointers[..., None].expand(B, N, memory.shape[-1])
            logits, _ = member(previous, memory.gather(1, index), state, lengths)
            scores.append(self._log_softmax(logits, legal))
        return torch.cat(scores), actions.repeat(len(self.members), 1)

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
        """Greedy decoding: the legal action of highest (mean) probability at every step.

        ``copy_ids`` (B, S) is needed (COPY outputs it). An example stops at ``END`` or after
        ``max_length`` output tokens; ``END`` is barred until ``min_length`` tokens are out.
        The attention of each output token is one-hot on the pointer's position (a copied or
        inserted token's source character; the end position is dropped). ``length_penalty``
        is ignored (no beam).

        Shape: -> :class:`Hypotheses` (B, T), T <= max_length, attention (B, T, S).
        """
        if beam_size != 1 or nbest != 1:
            raise ValueError(
                "EditTransducer decodes greedily: set task.beam_size=1 and task.nbest=1, "
                f"got beam_size={beam_size}, nbest={nbest}"
            )
        if copy_ids is None:
            raise ValueError("EditTransducer.generate needs copy_ids (COPY outputs them)")
        B, device = src.shape[0], src.device
        lengths = src_lengths.to(device)
        encoded = [member.encode(src, lengths) for member in self.members]
        memories = [memory for memory, _ in encoded]
        states = [state for _, state in encoded]
        rows = torch.arange(B, device=device)
        pointer = torch.zeros(B, dtype=torch.long, device=device)
        previous = torch.full((B,), self.bos_index, dtype=torch.long, device=device)
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        scores = torch.zeros(B, device=device)
        outputs: list[list[tuple[int, int]]] = [[] for _ in range(B)]  # (token, pointer)
        padded_ids = nn.functional.pad(copy_ids, (0, 1), value=self.pad_index)  # (B, S + 1)
        for _ in range(max_length + src.shape[1]):  # each source character is passed once
            emitted = torch.tensor([len(o) for o in outputs], device=device)
            legal = self._legal(pointer, lengths)  # (B, A)
            legal[:, self.eos_index] &= emitted >= min_length
            member_logp = []
            for m, member in enumerate(self.members):
                logits, states[m] = member(
                    previous[:, None], memories[m][rows, pointer][:, None], states[m]
                )
                member_logp.append(self._log_softmax(logits[:, 0], legal))
            # the members' mean probability (B, A)
            logp = torch.logsumexp(torch.stack(member_logp), 0) - math.log(len(self.members))
            action = logp.argmax(-1)  # (B,)
            scores += torch.where(finished, 0.0, logp.gather(1, action[:, None])[:, 0])
            copied = action == self.copy_action
            token = torch.where(copied, padded_ids[rows, pointer], action)
            emits = ~finished & (action != self.delete_action)
            for b in emits.nonzero()[:, 0].tolist():
                outputs[b].append((int(token[b]), int(pointer[b])))
            finished |= (action == self.eos_index) | (emitted + emits.long() >= max_length)
            pointer = pointer + (copied | (action == self.delete_action)).long()
            previous = action
            if bool(finished.all()):
                break
        return self._hypotheses(outputs, scores, src_lengths, src.shape[1])

    def _hypotheses(
        self, outputs: list, scores: Tensor, src_lengths: Tensor, S: int
    ) -> Hypotheses:
        """Tokens and one-hot attention on the source position each was emitted at; a token
        emitted past example b's last character (``at == src_lengths[b]``) attends nowhere."""
        device = scores.device
        T = max(1, max(len(o) for o in outputs))
        tokens = torch.full((len(outputs), T), self.pad_index, dtype=torch.long, device=device)
        attention = torch.zeros(len(outputs), T, S, device=device)
        for b, produced in enumerate(outputs):
            for t, (token, at) in enumerate(produced):
                tokens[b, t] = token
                if at < int(src_lengths[b]):
                    attention[b, t, at] = 1.0
        lengths = torch.tensor([len(o) for o in outputs], device=device)
        return Hypotheses(tokens, lengths, scores, attention)


def build_transducer(
    src_vocab_size: int,
    tgt_vocab_size: int,
    encoder_cell: CellFactory = GRUCell,
    decoder_cell: CellFactory | None = None,
    *,
    embedding_size: int,
    hidden_size: int,
    dropout: float,
    num_layers: int = 1,
    bridge: bool = True,
    pad_index: int = 0,
    bos_index: int = 2,
    eos_index: int = 3,
    unk_index: int = 1,
    ensemble: int = 1,
    deletes_first: bool = True,
    backend: str = "auto",
) -> EditTransducer:
    """Wire an :class:`EditTransducer`: a bidirectional encoder of ``hidden_size`` (H/2 per
    direction, so it must be even) and a decoder of ``hidden_size``; ``embedding_size`` is E
    of the source and action embeddings; the other arguments as in
    :func:`rnnkit.models.seq2seq.build_seq2seq`; ``ensemble`` networks (each its own random
    initialisation) are trained side by side and decode together; ``deletes_first`` orders the
    oracle's gaps (:func:`oracle_actions`)."""
    check_positive(
        ensemble=ensemble,
        src_vocab_size=src_vocab_size,
        tgt_vocab_size=tgt_vocab_size,
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
    )
    if hidden_size % 2:
        raise ValueError(
            f"hidden_size must be even (the bidirectional encoder gives H/2 per direction), "
            f"got {hidden_size}"
        )
    decoder_cell = decoder_cell or encoder_cell

    def member() -> TransducerNet:
        encoder = build_stack(
            encoder_cell,
            input_size=embedding_size,
            hidden_size=hidden_size // 2,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout,
            backend=backend,
        )
        decoder = build_stack(
            decoder_cell,
            input_size=embedding_size + encoder.output_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            backend=backend,
        )
        return TransducerNet(
            src_embedding=nn.Embedding(src_vocab_size, embedding_size, padding_idx=pad_index),
            encoder=encoder,
            action_embedding=nn.Embedding(
                tgt_vocab_size + 2, embedding_size, padding_idx=pad_index
            ),
            decoder=decoder,
            bridge=Bridge(encoder, decoder) if bridge else None,
            dropout=dropout,
        )

    return EditTransducer(
        [member() for _ in range(ensemble)],
        pad_index=pad_index,
        bos_index=bos_index,
        eos_index=eos_index,
        unk_index=unk_index,
        deletes_first=deletes_first,
    )
