"""float32 means float32 in the GPU tests: TF32 off for cuDNN and for matmuls.

cuDNN allows TF32 (products with a 10-bit mantissa) by default on Ampere and later, which
would put the fused backend's error near 1e-3 and hide real differences at float32's
tolerance (:data:`cuda_helpers.FLOAT32`). The CPU ignores both switches.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def true_float32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
