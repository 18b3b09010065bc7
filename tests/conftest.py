"""Test-wide settings."""

import torch

# The test models are tiny: one intra-op thread avoids OpenMP spin contention on the 2-core CI
# machine (measured: a small FNO step took 12 ms with one thread, over 1 s with two threads while
# other processes were busy).
torch.set_num_threads(1)
