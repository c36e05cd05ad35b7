"""The emulated Particle cloud: device endpoint, accounts, claiming rules, stores, event bus.

The REST API (``cloud_sim.http``, FastAPI) and the real-socket server (``cloud_sim.server``,
uvicorn + UDP) need the ``cloud`` extra and are imported explicitly.
"""

from .accounts import IssuedTokens, hash_password, verify_password
from .claims import (
    CLAIM_CODE_LENGTH,
    ApiClaimOutcome,
    ApiClaimPolicy,
    ClaimOutcome,
    ClaimResult,
    TransferDecision,
    decide_api_claim,
    decide_claim_code,
    decide_transfer,
    generate_claim_code,
    is_well_formed,
    issue_claim_code,
    redeem_claim_code,
)
from .cloud import Cloud
from .device_endpoint import CloudSession, DeviceEndpoint, EndpointOptions
from .events import CloudEvent, EventBus
from .model import (
    ClaimCode,
    Customer,
    DeviceGroup,
    DeviceRecord,
    Email,
    OAuthClient,
    Principal,
    PrincipalKind,
    Product,
    Token,
    TokenKind,
    Transfer,
    TransferStatus,
    User,
)
from .ownership import ApiClaimResult
from .sqlite_store import SqliteStore
from .store import CloudStore, MemoryStore

__all__ = [
    "CLAIM_CODE_LENGTH",
    "ApiClaimOutcome",
    "ApiClaimPolicy",
    "ApiClaimResult",
    "ClaimCode",
    "ClaimOutcome",
    "ClaimResult",
    "Cloud",
    "CloudEvent",
    "CloudSession",
    "CloudStore",
    "Customer",
    "DeviceEndpoint",
    "DeviceGroup",
    "DeviceRecord",
    "Email",
    "EndpointOptions",
    "EventBus",
    "IssuedTokens",
    "MemoryStore",
    "OAuthClient",
    "Principal",
    "PrincipalKind",
    "Product",
    "SqliteStore",
    "Token",
    "TokenKind",
    "Transfer",
    "TransferDecision",
    "TransferStatus",
    "User",
    "decide_api_claim",
    "decide_claim_code",
    "decide_transfer",
    "generate_claim_code",
    "hash_password",
    "is_well_formed",
    "issue_claim_code",
    "redeem_claim_code",
    "verify_password",
]
