"""The hand-written backwards (``bptt``, ``native``) compute first derivatives only."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


def first_order_only(backward: Callable) -> Callable:
    """Mark a hand-written backward as not differentiable itself: a gradient of a gradient
    (``create_graph=True``, e.g. a gradient penalty) raises a clear error instead of running
    out= ops that autograd cannot follow (or, worse, returning numbers missing a term)."""

    @functools.wraps(backward)
    def checked(ctx, *grads):
        if torch.is_grad_enabled():  # the engine enables grad mode only for create_graph=True
            raise RuntimeError(
                "the hand-written backward of backends 'bptt' and 'native' is first order only; "
                "for a gradient of a gradient (create_graph=True) use backend='loop'"
            )
        return backward(ctx, *grads)

    return checked
