"""The emulated ThingsBoard service as one sans-IO object on a World.

How this works
--------------
:class:`ThingsBoardService` owns the SQLite store, the claim rules (and so the in-memory
``claimDevices`` cache) and the JWT signer, and exposes what the edges call:

* set-up (tenants, customers, users, device profiles, devices with access tokens, attributes);
* people: ``login``/``refresh``/``user_from_jwt``, ``claim_device``/``reclaim_device``;
* devices: ``device_claim(token, payload, transport=...)`` and ``gateway_claim`` - the device is
  acknowledged whenever the message could be *accepted* (docs/thingsboard.md, B2): a registration
  that the rules refuse is still :attr:`DeviceAck.ACCEPTED`, and the reason goes to the trace and to
  the device's claim history;
* ``why(device)``: that history plus the device's current claim state.

Time is *cloud time*: ``epoch_ms`` + the World's virtual time. In-process worlds keep the fixed
default epoch (deterministic traces); a real server anchors it at the wall clock. JWTs carry
cloud time (``iat``, ``exp``), and the service checks their expiry against it itself: with
``--speed N`` cloud time runs ahead of the wall clock, so no wall-clock check may apply.

Randomness: ids, device access tokens and password salts come from a seeded stream of the World
(replayable scenarios); ``unpredictable=True`` (every served world) draws them from the OS
CSPRNG instead, so neither the seed nor observed tokens predict another. The JWT signing key is
64 bytes from ``secrets`` either way (JWTs never enter a trace).

Sessions: one login is one session (``sessionId`` in both of its JWTs); ``logout`` ends it, so
its access and refresh tokens stop working, as ThingsBoard's ``UserSessionInvalidationEvent``
does.

The MQTT, HTTP and CoAP faces (``mqtt_session``, ``http_api``, ``coap``) are thin adapters over
this.
"""

from __future__ import annotations

import random
import secrets
import string
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import jwt

from cloud_sim.accounts import hash_password, verify_password
from cloud_sim.security import csprng
from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.world import World

from . import errors
from .claiming import (
    ClaimOutcome,
    ClaimRules,
    ReclaimOutcome,
    Registration,
    fingerprint,
)
from .model import (
    CLAIM_ATTRIBUTE_NAME,
    CLAIM_DATA_ATTRIBUTE_NAME,
    SCOPES,
    SERVER_SCOPE,
    Authority,
    Customer,
    Device,
    DeviceProfile,
    PayloadType,
    Tenant,
    User,
    new_uuid,
)
from .payloads import MalformedPayload, parse_claim, parse_gateway_claim
from .settings import DEFAULT_EPOCH_MS, ThingsBoardSettings
from .store import TbStore

TOKEN_ALPHABET = string.ascii_letters + string.digits
JWT_ISSUER = "thingsboard.io"
JWT_ALGORITHM = "HS512"
#: ended sessions remembered at most (the oldest forgotten first; each is also forgotten once
#: its refresh token would have expired anyway)
MAX_ENDED_SESSIONS = 10_000


def is_unicode(text: str) -> bool:
    """Can ``text`` be stored (UTF-8)? A lone surrogate, which JSON can escape, cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_unicode(*texts: str | None) -> None:
    if not all(text is None or is_unicode(text) for text in texts):
        raise errors.invalid_argument("Text must be valid Unicode (no lone surrogates)")


class DeviceAck(Enum):
    """What a device transport answers: accepted (PUBACK / 200 / 2.01), bad token, bad payload."""

    ACCEPTED = "accepted"
    UNAUTHORIZED = "unauthorized"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class ClaimEvent:
    """One entry of a device's claim history."""

    t_ms: int
    action: str
    outcome: str
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.t_ms, "action": self.action, "outcome": self.outcome,
                "reason": self.reason, "message": self.message, "details": self.details}


class ThingsBoardService:
    def __init__(self, world: World, *, store: TbStore | None = None,
                 settings: ThingsBoardSettings | None = None, name: str = "thingsboard",
                 epoch_ms: int = DEFAULT_EPOCH_MS, jwt_secret: bytes | None = None,
                 unpredictable: bool = False) -> None:
        self.world = world
        self.name = name
        self.settings = settings or ThingsBoardSettings()
        self.store = store if store is not None else TbStore()
        self.epoch_ms = epoch_ms
        self.unpredictable = unpredictable
        #: ids, access tokens, password salts, session ids (module header: "Randomness")
        self.rng: random.Random = csprng() if unpredictable else world.rng_for(f"{name}:ids")
        self._jwt_secret = jwt_secret or secrets.token_bytes(64)
        #: ended sessions (logout): session id -> cloud time (s) after which no token of it
        #: is valid anyway
        self._ended_sessions: OrderedDict[str, int] = OrderedDict()
        self.tracer = world.trace.bind(name, "tb")
        self.rules = ClaimRules(self.store, self.settings, self.now_ms)
        self._history: dict[str, deque[ClaimEvent]] = {}
        #: claim buttons of simulated devices, by device name (``press``)
        self.buttons: dict[str, Callable[[], None]] = {}
        world.add_node(name, self)

    # -- time ----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.epoch_ms + self.world.clock.now_us // 1000

    # -- set-up --------------------------------------------------------------------------------

    def create_tenant(self, title: str) -> Tenant:
        tenant = Tenant(new_uuid(self.rng), title, self.now_ms())
        with self.store.transaction():
            self.store.add_tenant(tenant)
            self.create_profile(tenant.id, "default", PayloadType.JSON)
        self.tracer.emit("tb.tenant.created", title=title)
        return tenant

    def create_profile(self, tenant_id: str, name: str,
                       payload_type: PayloadType = PayloadType.JSON) -> DeviceProfile:
        profile = DeviceProfile(new_uuid(self.rng), tenant_id, name, payload_type,
                                self.now_ms())
        self.store.add_profile(profile)
        return profile

    def create_customer(self, tenant_id: str, title: str, email: str | None = None) -> Customer:
        if not title.strip():
            raise errors.invalid_argument("Customer title should be specified!")
        _check_unicode(title, email)
        customer = Customer(new_uuid(self.rng), tenant_id, title, email, self.now_ms())
        try:
            self.store.add_customer(customer)
        except UsageError:
            raise errors.bad_request(
                f"Customer with such title '{title}' already exists!") from None
        self.tracer.emit("tb.customer.created", title=title)
        return customer

    def create_user(self, email: str, authority: Authority, *, tenant_id: str | None,
                    customer_id: str | None = None, password: str | None = None,
                    first_name: str | None = None, last_name: str | None = None) -> User:
        """A user; without a password it gets an activation token (``activationLink``)."""
        _check_unicode(email, password, first_name, last_name)
        if "@" not in email or len(email) > 255:
            raise errors.invalid_argument(f"Invalid email address format '{email}'!")
        user = User(new_uuid(self.rng), tenant_id, customer_id, email, authority,
                    hash_password(password, self.rng) if password else "", first_name,
                    last_name, self.now_ms(),
                    None if password else secrets.token_urlsafe(22))
        try:
            self.store.add_user(user)
        except UsageError:
            raise errors.bad_request(
                f"User with email '{email}'  already present in database!") from None
        self.tracer.emit("tb.user.created", email=email, authority=authority.value)
        return user

    def activate_user(self, activate_token: str, password: str) -> User:
        user = self.store.find_user_by_activate_token(activate_token)
        if user is None or not activate_token:
            raise errors.not_found()
        if not password:
            raise errors.invalid_argument("Password should be specified!")
        user.password_hash = hash_password(password, self.rng)
        user.activate_token = None
        self.store.update_user(user)
        return user

    def new_access_token(self) -> str:
        """20 random alphanumerics, like ThingsBoard's generated access tokens (from the OS
        CSPRNG when ``unpredictable``)."""
        return "".join(self.rng.choice(TOKEN_ALPHABET) for _ in range(20))

    def create_device(self, tenant_id: str, name: str, *, token: str | None = None,
                      profile: DeviceProfile | None = None, type: str | None = None,
                      label: str | None = None, gateway: bool = False,
                      customer_id: str | None = None) -> Device:
        if not name or not name.strip():
            raise errors.invalid_argument("Device name should be specified!")
        if len(name) > 255:
            raise errors.invalid_argument("Device name length must be equal or less than 255")
        _check_unicode(name, token, type, label)
        if profile is None:
            profile = self.store.find_profile(tenant_id, "default")
            if profile is None:
                raise errors.not_found()
        if token is not None and not (0 < len(token) <= 255):
            raise errors.invalid_argument("Incorrect access token length")
        device = Device(new_uuid(self.rng), tenant_id, customer_id, name,
                        type or profile.name, label, profile.id, self.now_ms(), gateway)
        if self.store.find_device(tenant_id, name) is not None:
            raise errors.bad_request("Device with such name already exists!")
        access_token = token or self.new_access_token()
        try:
            self.store.add_device(device, access_token, new_uuid(self.rng))
        except UsageError:
            raise errors.bad_request("Device credentials are already assigned to another "
                                     "device!") from None
        self.tracer.emit("tb.device.created", device=name, gateway=gateway)
        return device

    def device_named(self, tenant_id: str, name: str) -> Device:
        device = self.store.find_device(tenant_id, name)
        if device is None:
            raise errors.not_found()
        return device

    def access_token_of(self, device: Device) -> str:
        credentials = self.store.credentials_of(device.id)
        assert credentials is not None, "every device is created with credentials"
        return credentials[1]

    def payload_type_of(self, device: Device) -> PayloadType:
        profile = self.store.get_profile(device.profile_id)
        return profile.payload_type if profile else PayloadType.JSON

    def save_attributes(self, device: Device, scope: str, values: dict[str, Any]) -> None:
        if scope not in SCOPES:
            raise errors.bad_request(f"Invalid attribute scope: {scope}")
        self.store.save_attributes(device.id, scope, values, self.now_ms())
        if scope == SERVER_SCOPE and {CLAIM_ATTRIBUTE_NAME, CLAIM_DATA_ATTRIBUTE_NAME} & set(
                values):
            self._remember(device, "attribute", "saved", "attributes_saved",
                           "SERVER_SCOPE claiming attributes saved",
                           {"keys": sorted(values)})

    def delete_attributes(self, device: Device, scope: str, keys: list[str]) -> int:
        if scope not in SCOPES:
            raise errors.bad_request(f"Invalid attribute scope: {scope}")
        return self.store.delete_attributes(device.id, scope, keys)

    # -- people --------------------------------------------------------------------------------

    def _jwt(self, user: User, session_id: str, *, refresh: bool) -> str:
        now_s = self.now_ms() // 1000
        lifetime = (self.settings.jwt_refresh_expiration_s if refresh
                    else self.settings.jwt_expiration_s)
        claims: dict[str, Any] = {
            "sub": user.email, "userId": user.id,
            "scopes": ["REFRESH_TOKEN"] if refresh else [user.authority.value],
            "sessionId": session_id, "iss": JWT_ISSUER, "iat": now_s,
            "exp": now_s + lifetime, "enabled": True, "isPublic": False,
            "tenantId": user.tenant_id, "customerId": user.customer_id or None,
        }
        if not refresh:
            claims.update(firstName=user.first_name, lastName=user.last_name)
        return jwt.encode(claims, self._jwt_secret, algorithm=JWT_ALGORITHM)

    def _tokens(self, user: User, session_id: str | None = None) -> dict[str, Any]:
        """A JWT pair of one session: a new one (login), or ``session_id``'s (refresh)."""
        session = session_id or new_uuid(self.rng)
        return {"token": self._jwt(user, session, refresh=False),
                "refreshToken": self._jwt(user, session, refresh=True), "scope": None}

    def login(self, email: str, password: str) -> dict[str, Any]:
        user = self.store.find_user(email)
        if (user is None or not user.password_hash
                or not verify_password(password, user.password_hash)):
            self.tracer.emit("tb.auth.login", email=email[:100], ok=False)
            raise errors.authentication_failed("Invalid username or password")
        self.tracer.emit("tb.auth.login", email=email, ok=True)
        return self._tokens(user)

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a JWT this service signed. Its times are checked here against cloud
        time, not by PyJWT against the wall clock: ``iat`` of a server at ``--speed 60`` lies
        ahead of the wall clock, which PyJWT would refuse as "not yet valid"."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._jwt_secret, algorithms=[JWT_ALGORITHM],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["exp", "sub", "scopes"]},
                issuer=JWT_ISSUER)
        except (jwt.PyJWTError, UnicodeError):
            raise errors.authentication_failed() from None
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise errors.authentication_failed()
        if self.now_ms() // 1000 >= exp:
            raise errors.token_expired()
        return claims

    def _session_ended(self, claims: dict[str, Any]) -> bool:
        session = claims.get("sessionId")
        return isinstance(session, str) and session in self._ended_sessions

    def logout(self, access_token: str) -> None:
        """End the session of ``access_token``: its access and refresh tokens are refused from
        now on (401 "Token has expired", as ThingsBoard's outdated tokens)."""
        user = self.user_from_jwt(access_token)
        session = self._decode(access_token).get("sessionId")
        if isinstance(session, str):
            now_s = self.now_ms() // 1000
            for ended, until_s in list(self._ended_sessions.items()):
                if until_s <= now_s:  # no token of it can still be valid
                    del self._ended_sessions[ended]
            self._ended_sessions[session] = now_s + self.settings.jwt_refresh_expiration_s
            while len(self._ended_sessions) > MAX_ENDED_SESSIONS:
                self._ended_sessions.popitem(last=False)
        self.tracer.emit("tb.auth.logout", email=user.email)

    def _user_of(self, claims: dict[str, Any]) -> User:
        user_id = claims.get("userId")
        user = self.store.get_user(user_id) if isinstance(user_id, str) else None
        if user is None:
            raise errors.authentication_failed("User not found")
        return user

    def user_from_jwt(self, token: str) -> User:
        claims = self._decode(token)
        if "REFRESH_TOKEN" in claims["scopes"]:
            raise errors.authentication_failed("Invalid JWT token")
        if self._session_ended(claims):  # ThingsBoard: JwtExpiredTokenException
            raise errors.token_expired()
        return self._user_of(claims)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        claims = self._decode(refresh_token)
        if claims["scopes"] != ["REFRESH_TOKEN"]:
            raise errors.authentication_failed("Invalid refresh token")
        if self._session_ended(claims):  # ThingsBoard: CredentialsExpiredException
            raise errors.authentication_failed("Token is outdated")
        session = claims.get("sessionId")
        return self._tokens(self._user_of(claims),
                            session if isinstance(session, str) and session else None)

    def claim_device(self, user: User, device_name: str, secret_key: str) -> ClaimOutcome:
        """``POST /api/customer/device/{name}/claim`` for an authenticated user (B4, B8)."""
        if user.authority is not Authority.CUSTOMER_USER or user.tenant_id is None:
            raise errors.permission_denied()
        device = self.device_named(user.tenant_id, device_name)
        outcome = self.rules.claim(user, device, secret_key)
        details = {"user": user.email, "source": outcome.source, "evicted": outcome.evicted,
                   **outcome.details}
        self.tracer.emit("tb.claim.customer", device=device.name, response=outcome.response.value,
                         reason=outcome.reason.value, **details)
        self._remember(device, "claim", outcome.response.value, outcome.reason.value,
                       outcome.message, details)
        return outcome

    def reclaim_device(self, user: User, device_name: str) -> ReclaimOutcome:
        """``DELETE /api/customer/device/{name}/claim`` (B5, B8)."""
        if user.authority not in (Authority.TENANT_ADMIN, Authority.CUSTOMER_USER) or (
                user.tenant_id is None):
            raise errors.permission_denied()
        device = self.device_named(user.tenant_id, device_name)
        outcome = self.rules.reclaim(device)
        self.tracer.emit("tb.claim.reclaim", device=device.name, reason=outcome.reason.value,
                         user=user.email,
                         claiming_allowed_restored=outcome.claiming_allowed_restored)
        self._remember(device, "reclaim", "done", outcome.reason.value,
                       "device unassigned" if outcome.previous_customer_id else
                       "device was not assigned; cache entry evicted",
                       {"user": user.email, "previous_customer_id": outcome.previous_customer_id,
                        "claiming_allowed_restored": outcome.claiming_allowed_restored})
        return outcome

    # -- devices -------------------------------------------------------------------------------

    def authenticate_device(self, token: str) -> Device | None:
        if not token or len(token) > 1024:
            return None
        return self.store.device_by_token(token)

    def register_claiming_info(self, device: Device, secret_key: str, duration_ms: int, *,
                               transport: str) -> Registration:
        # the device actor works on the current device, not the one the session started with
        device = self.store.get_device(device.id) or device
        outcome = self.rules.register(device, secret_key, duration_ms)
        details = {"transport": transport, "secret": fingerprint(secret_key),
                   "duration_ms": duration_ms,
                   "expiration_time_ms": outcome.expiration_time_ms}
        self.tracer.emit("tb.claim.register", device=device.name,
                         outcome="saved" if outcome.saved else "not_saved",
                         reason=outcome.reason.value, **details)
        self._remember(device, "register", "saved" if outcome.saved else "not_saved",
                       outcome.reason.value, outcome.message, details)
        return outcome

    def device_claim(self, token: str, payload: bytes | None, *, transport: str) -> DeviceAck:
        """A claim request of the device owning ``token`` (MQTT, HTTP or CoAP)."""
        device = self.authenticate_device(token)
        if device is None:
            self.tracer.emit("tb.device.rejected", transport=transport, reason="unknown_token")
            return DeviceAck.UNAUTHORIZED
        return self.device_claim_from(device, payload, transport=transport)

    def device_claim_from(self, device: Device, payload: bytes | None, *,
                          transport: str) -> DeviceAck:
        try:
            request = parse_claim(payload, self.payload_type_of(device))
        except MalformedPayload as exc:
            self._malformed(device, transport, str(exc))
            return DeviceAck.MALFORMED
        self.register_claiming_info(device, request.secret_key, request.duration_ms,
                                    transport=transport)
        return DeviceAck.ACCEPTED

    def gateway_claim(self, gateway: Device, payload: bytes, *, transport: str) -> DeviceAck:
        """``v1/gateway/claim``: claim info for several devices behind a gateway (B2).

        A device unknown to the tenant is created, as ThingsBoard's gateway session does, with
        the gateway's customer (UNVERIFIED detail, docs/thingsboard.md)."""
        try:
            claims = parse_gateway_claim(payload, self.payload_type_of(gateway))
        except MalformedPayload as exc:
            self._malformed(gateway, transport, str(exc))
            return DeviceAck.MALFORMED
        for skipped in claims.skipped:
            self.tracer.emit("tb.gateway.skipped", gateway=gateway.name, device=skipped[:255],
                             reason="not_a_json_object")
        for name, request in claims.claims.items():
            if not is_unicode(name):
                self.tracer.emit("tb.gateway.skipped", gateway=gateway.name,
                                 device=name[:255].encode("utf-8", "replace").decode(),
                                 reason="not_unicode_text")
                continue
            device = self.store.find_device(gateway.tenant_id, name)
            if device is None:
                try:
                    device = self.create_device(gateway.tenant_id, name,
                                                customer_id=gateway.customer_id)
                except errors.TbError as exc:
                    self.tracer.emit("tb.gateway.skipped", gateway=gateway.name,
                                     device=name[:255], reason=exc.message)
                    continue
            self.register_claiming_info(device, request.secret_key, request.duration_ms,
                                        transport=f"{transport}-gateway")
        return DeviceAck.ACCEPTED

    def _malformed(self, device: Device, transport: str, message: str) -> None:
        self.tracer.emit("tb.claim.rejected", device=device.name, transport=transport,
                         reason="malformed_payload", message=message[:200])
        self._remember(device, "register", "rejected", "malformed_payload", message[:200],
                       {"transport": transport})

    # -- claim buttons -------------------------------------------------------------------------

    def press(self, device_name: str) -> None:
        """Press the claim button of the simulated device ``device_name``."""
        button = self.buttons.get(device_name)
        if button is None:
            raise errors.not_found()
        self.tracer.emit("tb.button.pressed", device=device_name)
        button()

    # -- why -----------------------------------------------------------------------------------

    def _remember(self, device: Device, action: str, outcome: str, reason: str, message: str,
                  details: dict[str, Any]) -> None:
        history = self._history.get(device.id)
        if history is None:
            history = self._history[device.id] = deque(maxlen=self.settings.history_per_device)
        history.append(ClaimEvent(self.now_ms(), action, outcome, reason, message, details))

    def history(self, device: Device) -> list[ClaimEvent]:
        return list(self._history.get(device.id, ()))

    def why(self, device: Device) -> dict[str, Any]:
        """The device's claim state now and the history that led to it."""
        device = self.store.get_device(device.id) or device
        cached = self.rules.cache.get(device.id)
        allowed = self.store.get_attribute(device.id, SERVER_SCOPE, CLAIM_ATTRIBUTE_NAME)
        data = self.store.get_attribute(device.id, SERVER_SCOPE, CLAIM_DATA_ATTRIBUTE_NAME)
        customer = self.store.get_customer(device.customer_id) if device.customer_id else None
        now = self.now_ms()
        return {
            "device": device.name,
            "now": now,
            "assigned_to": customer.title if customer else None,
            "allow_claiming_by_default": self.settings.allow_claiming_by_default,
            "cached_claim_data": None if cached is None else {
                "secret": fingerprint(cached.secret_key),
                "expiration_time": cached.expiration_time_ms,
                "expired": now > cached.expiration_time_ms},
            "attributes": {
                CLAIM_ATTRIBUTE_NAME: None if allowed is None else allowed.value,
                CLAIM_DATA_ATTRIBUTE_NAME: None if data is None else "(set)"},
            "history": [event.to_json() for event in self.history(device)],
        }
