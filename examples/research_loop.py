"""A stacked bidirectional GRU built by hand from rnnkit parts, trained in a plain PyTorch loop.

Task: is the first value of a variable-length sequence larger than its last one? The forward
direction reaches the last step and the backward direction the first, at each true length.
"""

import torch
from torch import nn

from rnnkit.cells import GRUCell
from rnnkit.layers import Bidirectional, Recurrent, Stacked

torch.manual_seed(0)
F, H, B, T = 1, 32, 64, 20  # features, hidden size, batch, longest sequence


def gru_layer(input_size: int) -> Bidirectional:
    """One bidirectional layer: two Recurrent layers, each owning one GRUCell."""
    return Bidirectional(Recurrent(GRUCell(input_size, H)), Recurrent(GRUCell(input_size, H)))


encoder = Stacked([gru_layer(F), gru_layer(2 * H)], dropout=0.1)  # (B, T, F) -> (B, T, 2H)
head = nn.Linear(2 * H, 2)
optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)


def batch(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = torch.randint(5, T + 1, (size,))  # (B,)
    x = torch.randn(size, T, F) * (torch.arange(T) < lengths[:, None]).unsqueeze(-1)  # (B, T, F)
    last = x[torch.arange(size), lengths - 1, 0]  # (B,)
    return x, lengths, (x[:, 0, 0] > last).long()


for _ in range(100):
    x, lengths, y = batch(B)
    outputs, states = encoder(x, lengths)  # outputs (B, T, 2H); states: one per layer
    h_fwd, h_bwd = states[-1]  # last layer: forward state at each true end, backward at t=0
    loss = nn.functional.cross_entropy(head(torch.cat([h_fwd, h_bwd], dim=-1)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

encoder.eval()
with torch.no_grad():
    x, lengths, y = batch(1000)
    h_fwd, h_bwd = encoder(x, lengths)[1][-1]
    accuracy = (head(torch.cat([h_fwd, h_bwd], dim=-1)).argmax(-1) == y).float().mean().item()
print(f"loss {loss.item():.3f}, held-out accuracy {accuracy:.3f} (chance 0.5)")
assert accuracy > 0.8, accuracy
