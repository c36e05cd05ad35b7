"""The emulated Particle cloud: device endpoint, claim codes and ownership rules, event bus."""

from .claims import (
    CLAIM_CODE_LENGTH,
    ClaimOutcome,
    ClaimResult,
    generate_claim_code,
    is_well_formed,
    issue_claim_code,
    redeem_claim_code,
)
from .cloud import Cloud
from .device_endpoint import CloudSession, DeviceEndpoint, EndpointOptions
from .events import CloudEvent, EventBus
from .model import ClaimCode, Customer, DeviceRecord, Principal, PrincipalKind, Product, User
from .store import CloudStore, MemoryStore

__all__ = [
    "CLAIM_CODE_LENGTH",
    "ClaimCode",
    "ClaimOutcome",
    "ClaimResult",
    "Cloud",
    "CloudEvent",
    "CloudSession",
    "CloudStore",
    "Customer",
    "DeviceEndpoint",
    "DeviceRecord",
    "EndpointOptions",
    "EventBus",
    "MemoryStore",
    "Principal",
    "PrincipalKind",
    "Product",
    "User",
    "generate_claim_code",
    "is_well_formed",
    "issue_claim_code",
    "redeem_claim_code",
]
