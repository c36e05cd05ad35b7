"""The emulated cloud as one object: store, event bus, device endpoint, accounts and claiming.

Randomness: in process, token values, ids, salts, claim codes and session ids come from seeded
streams of the World (replayable); with ``unpredictable=True`` (every cloud that serves
sockets: ``ParticleSettings(unpredictable=True)`` in the testbed) they come from the OS CSPRNG
instead (``cloud_sim.security``).

Time: the cloud's World runs on virtual time; everything the store keeps is stamped in *cloud
time* (``unix_us`` = ``EndpointOptions.epoch`` seconds + virtual time). In-process scenarios keep
the fixed default epoch (2026-01-01), so they stay deterministic; ``fwsim cloud serve`` sets the
epoch to the wall clock at start-up, so a persistent store's expiry times survive restarts.
"""

from __future__ import annotations

import random

from firmware_sim.kernel.link import DatagramLink, DatagramPort, Receiver
from firmware_sim.kernel.world import World

from . import accounts, ownership
from .claims import (
    DEFAULT_CLAIM_CODE_TTL_S,
    ApiClaimPolicy,
    TransferDecision,
    issue_claim_code,
)
from .device_endpoint import DeviceEndpoint, EndpointOptions
from .device_keys import DeviceKeyRegistry
from .events import CloudEvent, EventBus
from .model import (
    ClaimCode,
    Customer,
    DeviceRecord,
    OAuthClient,
    Principal,
    Product,
    Transfer,
    User,
)
from .security import csprng
from .store import CloudStore, MemoryStore


class Cloud:
    """An emulated Particle cloud living in a :class:`World`."""

    def __init__(self, world: World, *, store: CloudStore | None = None,
                 options: EndpointOptions | None = None, name: str = "cloud",
                 claim_code_ttl_s: float = DEFAULT_CLAIM_CODE_TTL_S,
                 claim_policy: ApiClaimPolicy | None = None,
                 unpredictable: bool = False,
                 device_keys: DeviceKeyRegistry | None = None) -> None:
        self.world = world
        self.name = name
        self.store: CloudStore = store if store is not None else MemoryStore()
        self.bus = EventBus()
        self.endpoint = DeviceEndpoint(world, self.store, self.bus, options, name=name)
        #: every device's public key and the server key pair (the device link's DTLS)
        self.device_keys = device_keys if device_keys is not None else DeviceKeyRegistry()
        self.endpoint.known_device = self.device_keys.__contains__
        self.claim_code_ttl_s = claim_code_ttl_s
        self.claim_policy = claim_policy or ApiClaimPolicy()
        self._claim_rng = world.rng_for(f"{name}:claim-codes")
        #: tokens, ids, password salts
        self.rng: random.Random = world.rng_for(f"{name}:accounts")
        self.unpredictable = unpredictable
        if unpredictable:
            self._claim_rng = self.rng = csprng()
            # the device link's session ids (the endpoint takes no option for it yet)
            self.endpoint._rng = csprng()
        self._links = 0
        self.tracer = world.trace.bind(name, "cloud")
        world.add_node(name, self)
        accounts.ensure_public_clients(self.store)

    @property
    def unix_us(self) -> int:
        return self.endpoint.unix_us

    # -- device link ---------------------------------------------------------------------------

    def connector(self, *, latency_s: float = 0.09, loss: float = 0.0
                  ) -> _InProcessConnector:
        """A connector a device uses to open a datagram port to this cloud, in process."""
        return _InProcessConnector(self, latency_s, loss)

    def register_device_key(self, device_id: str, public_key: bytes | str) -> bytes:
        """Record a device's public key (what the DTLS handshake authenticates it with)."""
        return self.device_keys.register(device_id, public_key)

    def mark_all_offline(self) -> int:
        """At start-up: no device has a session with a cloud that just started."""
        count = 0
        with self.store.transaction():
            for device in self.store.list_devices():
                if device.online:
                    device.online = False
                    self.store.put_device(device)
                    count += 1
        return count

    # -- accounts ------------------------------------------------------------------------------

    def new_id(self) -> str:
        return self.rng.randbytes(12).hex()

    def create_user(self, username: str, password: str, *, user_id: str | None = None) -> User:
        user = User(user_id or self.new_id(), username,
                    accounts.hash_password(password, self.rng), self.unix_us)
        self.store.add_user(user)
        self.tracer.emit("user.created", username=username)
        return user

    def create_product(self, product_id: int, slug: str, name: str = "", *,
                       team: set[str] | None = None, platform_id: int = 32) -> Product:
        product = Product(product_id, slug, name or slug, set(team or ()), platform_id)
        self.store.add_product(product)
        self.tracer.emit("product.created", product_id=product_id, slug=slug)
        return product

    def create_product_client(self, product: Product, client_id: str, secret: str,
                              owner: str | None = None) -> OAuthClient:
        client = OAuthClient(client_id, secret, f"{product.slug} client", product.id,
                             owner or next(iter(sorted(product.team)), None))
        self.store.add_client(client)
        return client

    def create_customer(self, product_id: int, email: str, password: str = "") -> Customer:
        customer = Customer(self.new_id(), email, product_id,
                            accounts.hash_password(password, self.rng) if password else "",
                            self.unix_us)
        self.store.add_customer(customer)
        self.tracer.emit("customer.created", product_id=product_id, email=email)
        return customer

    def delete_customer(self, customer: Customer) -> None:
        """Deleting a customer revokes its tokens and claim codes (cloud.md A5); fwsim also
        releases the devices it owned (UNVERIFIED, docs/claiming.md)."""
        principal = Principal.customer(customer.id)
        with self.store.transaction():
            accounts.revoke_tokens_of(self.store, principal)
            self.store.delete_claim_codes_of(principal)
            for device in self.store.devices_owned_by(principal):
                device.owner = None
                self.store.put_device(device)
            self.store.delete_customer(customer.id)

    def issue_tokens(self, principal: Principal, client_id: str, *,
                     expires_in_s: int = accounts.DEFAULT_TOKEN_DURATION_S, scope: str = "",
                     with_refresh: bool = True) -> accounts.IssuedTokens:
        return accounts.issue_tokens(self.store, self.rng, principal, client_id, self.unix_us,
                                     expires_in_s=expires_in_s, scope=scope,
                                     with_refresh=with_refresh)

    # -- claiming ------------------------------------------------------------------------------

    def create_claim_code(self, creator: Principal, product_id: int | None = None,
                          ttl_s: float | None = None) -> ClaimCode:
        claim = issue_claim_code(self.store, self._claim_rng, creator, product_id,
                                 self.unix_us,
                                 self.claim_code_ttl_s if ttl_s is None else ttl_s)
        self.tracer.emit("claim_code.issued", creator=str(creator), product_id=product_id,
                         code=claim.code)
        return claim

    def api_claim(self, caller: Principal, device_id: str,
                  request_transfer: bool = False) -> ownership.ApiClaimResult:
        result = ownership.api_claim(self.store, self.rng, caller, device_id, request_transfer,
                                     self.unix_us, self.claim_policy)
        self.tracer.emit("claim.api", device_id=device_id, caller=str(caller),
                         request_transfer=request_transfer, outcome=result.outcome.value,
                         transfer_id=result.transfer.id if result.transfer else None)
        return result

    def answer_transfer(self, transfer_id: str, approve: bool, token: str
                        ) -> tuple[TransferDecision, Transfer] | None:
        """The owner's answer through a link of the email (``token``: the link's secret)."""
        answer = ownership.answer_transfer(self.store, transfer_id, approve, self.unix_us,
                                           token)
        if answer is not None:
            self.tracer.emit("transfer.answered", transfer_id=transfer_id,
                             decision=answer[0].value)
        return answer

    def owner_of(self, device_id: str) -> Principal | None:
        device = self.store.get_device(device_id)
        return device.owner if device else None

    def device(self, device_id: str) -> DeviceRecord | None:
        return self.store.get_device(device_id)

    # -- events --------------------------------------------------------------------------------

    def publish_event(self, publisher: Principal, name: str, data: str = "", *,
                      product: Product | None = None, private: bool = True,
                      ttl: int = 60) -> list[str]:
        """An event published through the REST API (``POST /v1/devices/events``, or with
        ``product`` ``POST /v1/products/:p/events``; the caller checked who may).

        It goes on the bus once - to the publisher's own event streams, or the product's - with
        ``coreid`` ``api``, and to every device of the publisher (of the product) that is online
        and whose current session subscribed to a prefix of ``name``. Returns the ids of the
        devices it was sent to."""
        payload = data.encode("utf-8")
        self.tracer.emit("event.api_publish", name=name, publisher=str(publisher),
                         product_id=product.id if product else None, size=len(payload),
                         private=private)
        self.bus.publish(CloudEvent(name, data, None, self.unix_us, ttl, not private,
                                    product.id if product else None, direction="device",
                                    publisher=None if product else publisher, via_api=True))
        devices = (self.store.devices_in_product(product.id) if product
                   else self.store.devices_owned_by(publisher))
        return [device.id for device in sorted(devices, key=lambda d: d.id)
                if device.online and self.endpoint.send_published_event(
                    device.id, name, payload, private=private)]


class _InProcessConnector:
    def __init__(self, cloud: Cloud, latency_s: float, loss: float) -> None:
        self.cloud = cloud
        self.latency_s = latency_s
        self.loss = loss

    def __call__(self, receiver: Receiver) -> DatagramPort:
        cloud = self.cloud
        cloud._links += 1
        link = DatagramLink(cloud.world, f"{cloud.name}-link-{cloud._links}",
                            latency_s=self.latency_s, loss=self.loss)
        address = link.name
        link.a.receiver = receiver
        link.b.receiver = lambda data: cloud.endpoint.datagram_received(address, data,
                                                                        link.b.send)
        return link.a
