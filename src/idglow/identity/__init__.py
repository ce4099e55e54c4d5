"""The identity branch, in the order of the paper's figure: encoder -> Variable-Condition Aggregator ->
Dynamics-Aware Gate (its lambda(sigma, task) schedules) -> Multi-ID cross-attention, bundled by the branch."""

from idglow.identity.branch import IdentityBranch, pad_references
from idglow.identity.config import GateConfig, IdentityConfig
from idglow.identity.gate import DynamicsAwareGate

__all__ = ["DynamicsAwareGate", "GateConfig", "IdentityBranch", "IdentityConfig", "pad_references"]
