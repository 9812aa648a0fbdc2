# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Sequence to sequence with attention
#
# Transduction: reverse a string, `"cfab" -> "bafc"`. The first output symbol depends on the last
# input symbol, so a plain encoder-decoder must squeeze the whole source into one context vector;
# with attention the decoder looks back at every source position at every step, and what it looks
# at is the alignment (here: the anti-diagonal).
#
# We train the same model with Luong "general" attention and without attention, on the same data.

# %%
import tempfile
from pathlib import Path

import torch
from IPython.display import Image, display
from torch import nn

from rnnkit.models.seq2seq import build_seq2seq
from rnnkit.plots import plot_attention

torch.set_num_threads(1)  # tiny model: threads cost more than they bring
PAD, BOS, EOS = 0, 1, 2
SYMBOLS = "abcdefgh"
V = 3 + len(SYMBOLS)  # specials, then one index per symbol


def make_batch(n, generator, lo=6, hi=10):
    # n random strings of lo..hi symbols: src (n, S), lengths (n,), tgt (n, S + 2) = <bos> reversed <eos>
    lengths = torch.randint(lo, hi + 1, (n,), generator=generator)
    S = int(lengths.max())
    src, tgt = torch.full((n, S), PAD), torch.full((n, S + 2), PAD)
    for b, L in enumerate(lengths.tolist()):
        s = torch.randint(3, V, (L,), generator=generator)
        src[b, :L] = s
        tgt[b, 0], tgt[b, 1 : L + 1], tgt[b, L + 1] = BOS, s.flip(0), EOS
    return src, lengths, tgt


def text(indices):
    return "".join(SYMBOLS[i - 3] for i in indices if i >= 3)


# %%
def train(attention):
    torch.manual_seed(0)
    model = build_seq2seq(
        V,
        V,
        embedding_size=16,
        hidden_size=32,
        attention=attention,
        pad_index=PAD,
        bos_index=BOS,
        eos_index=EOS,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _step in range(400):
        src, lengths, tgt = make_batch(32, g)
        logits, _ = model(src, lengths, tgt[:, :-1])  # teacher forcing: <bos> y_1 .. y_{T-1}
        loss = nn.functional.cross_entropy(
            logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


test_src, test_lengths, test_tgt = make_batch(200, torch.Generator().manual_seed(99))


def exact_match(model):
    hyp = model.generate(test_src, test_lengths, max_length=13)  # greedy decoding
    right = [
        hyp.tokens[b, : L + 1].tolist() == test_tgt[b, 1 : L + 2].tolist()
        for b, L in enumerate(test_lengths.tolist())
    ]
    return sum(right) / len(right), hyp


models = {name: train(name) for name in ("general", "none")}
scores = {}
for name, model in models.items():
    scores[name], hyp = exact_match(model)
    print(f"attention={name:8s} exact match on 200 unseen strings: {scores[name]:.1%}")
    if name == "general":
        attended = hyp
assert scores["general"] > 0.8, "attention should learn reversal"
assert scores["general"] > scores["none"] + 0.3, "attention should beat one context vector"

# %% [markdown]
# ## Where does the decoder look?
#
# For output step $t$ of a length-$L$ string the right source position is $L - 1 - t$. Count how
# often the attention's largest weight lands there, then draw one example.

# %%
hits = total = 0
for b, L in enumerate(test_lengths.tolist()):
    for t in range(L):
        hits += int(attended.attention[b, t, :L].argmax()) == L - 1 - t
        total += 1
print(f"attention peaks on the mirrored source position for {hits / total:.1%} of output symbols")
assert hits / total > 0.9

b = 0
L = int(test_lengths[b])
source, output = text(test_src[b, :L].tolist()), text(attended.tokens[b].tolist())
print(f"{source!r} -> {output!r}")
path = plot_attention(
    attended.attention[b, : L + 1, :L],
    Path(tempfile.mkdtemp()) / "attention.png",
    source_tokens=list(source),
    target_tokens=list(output) + ["</s>"],
    title="Luong general attention, reversal",
)
display(Image(filename=str(path)))
