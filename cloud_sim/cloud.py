"""The emulated cloud as one object: store, event bus, device endpoint, claim-code service."""

from __future__ import annotations

from firmware_sim.kernel.link import DatagramLink, DatagramPort, Receiver
from firmware_sim.kernel.world import World

from .claims import DEFAULT_CLAIM_CODE_TTL_S, issue_claim_code
from .device_endpoint import DeviceEndpoint, EndpointOptions
from .events import EventBus
from .model import ClaimCode, DeviceRecord, Principal
from .store import CloudStore, MemoryStore


class Cloud:
    """An emulated Particle cloud living in a :class:`World`."""

    def __init__(self, world: World, *, store: CloudStore | None = None,
                 options: EndpointOptions | None = None, name: str = "cloud",
                 claim_code_ttl_s: float = DEFAULT_CLAIM_CODE_TTL_S) -> None:
        self.world = world
        self.name = name
        self.store: CloudStore = store if store is not None else MemoryStore()
        self.bus = EventBus()
        self.endpoint = DeviceEndpoint(world, self.store, self.bus, options, name=name)
        self.claim_code_ttl_s = claim_code_ttl_s
        self._claim_rng = world.rng_for(f"{name}:claim-codes")
        self._links = 0
        self.tracer = world.trace.bind(name, "cloud")
        world.add_node(name, self)

    # -- device link ---------------------------------------------------------------------------

    def connector(self, *, latency_s: float = 0.09, loss: float = 0.0
                  ) -> _InProcessConnector:
        """A connector a device uses to open a datagram port to this cloud, in process."""
        return _InProcessConnector(self, latency_s, loss)

    # -- claim codes ---------------------------------------------------------------------------

    def create_claim_code(self, creator: Principal, product_id: int | None = None,
                          ttl_s: float | None = None) -> ClaimCode:
        claim = issue_claim_code(self.store, self._claim_rng, creator, product_id,
                                 self.world.clock.now_us,
                                 self.claim_code_ttl_s if ttl_s is None else ttl_s)
        self.tracer.emit("claim_code.issued", creator=str(creator), product_id=product_id,
                         code=claim.code)
        return claim

    def owner_of(self, device_id: str) -> Principal | None:
        device = self.store.get_device(device_id)
        return device.owner if device else None

    def device(self, device_id: str) -> DeviceRecord | None:
        return self.store.get_device(device_id)


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
