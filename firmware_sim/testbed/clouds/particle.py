"""The Particle cloud in a testbed: :class:`cloud_sim.Cloud` built, linked and served.

In process, each device gets its own datagram link to the cloud's device endpoint (latency and
seeded loss from the device's :class:`~firmware_sim.testbed.spec.LinkSpec`). Served, the cloud
listens on a REST port (FastAPI on uvicorn) and a CoAP/UDP port through
:class:`cloud_sim.server.CloudServer`; both need the ``cloud`` extra, imported only then.

Settings (:class:`ParticleSettings`): an SQLite database (``db``; None keeps everything in
memory), the device endpoint's options, the claim-code lifetime and the API claim policy, and
the cloud-time epoch (None: the fixed 2026-01-01 of in-process runs; the serving commands pass
the wall clock so a persistent database's expiry times survive restarts), and whether silent
devices are marked offline (the serving commands: after 75 s, three keepalives).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cloud_sim import (
    ApiClaimPolicy,
    Cloud,
    CloudStore,
    EndpointOptions,
    MemoryStore,
    Principal,
    is_well_formed,
)

from ...kernel.errors import ConfigurationError
from ...kernel.world import World
from ..actors import ApiClient
from ..spec import CloudSpec, LinkSpec
from . import ServedCloud, ServeOptions

if TYPE_CHECKING:
    from ...kernel.realtime import AsyncioDriver
    from ...system.device import Device

#: a device silent for three keepalives (25 s each) is marked offline when served
SERVED_OFFLINE_AFTER_S = 75.0


@dataclass(frozen=True)
class ParticleSettings:
    db: str | None = None
    endpoint: EndpointOptions | None = None
    claim_code_ttl_s: float | None = None
    claim_policy: ApiClaimPolicy | None = None
    epoch: int | None = None
    #: mark devices offline after this many silent seconds (None: never, as in process)
    offline_after_s: float | None = None


def _missing_extra(exc: ModuleNotFoundError) -> ConfigurationError:
    return ConfigurationError(f"this needs the Particle cloud's REST API, which needs "
                              f"{exc.name}: install fwsim[cloud]")


class ParticlePlug:
    kind = "particle"

    def __init__(self, world: World, spec: CloudSpec) -> None:
        settings = spec.settings if spec.settings is not None else ParticleSettings()
        if not isinstance(settings, ParticleSettings):
            raise ConfigurationError("the particle cloud takes ParticleSettings")
        self.world = world
        self.name = spec.name
        self.settings = settings
        store: CloudStore
        if settings.db is not None:
            from cloud_sim import SqliteStore

            store = SqliteStore(settings.db)
        else:
            store = MemoryStore()
        options = settings.endpoint
        if settings.epoch is not None:
            options = replace(options or EndpointOptions(), epoch=settings.epoch)
        if settings.offline_after_s is not None:
            options = replace(options or EndpointOptions(),
                              offline_after_s=settings.offline_after_s)
        kwargs: dict[str, Any] = {}
        if settings.claim_code_ttl_s is not None:
            kwargs["claim_code_ttl_s"] = settings.claim_code_ttl_s
        self.cloud = Cloud(world, store=store, options=options, name=spec.name,
                           claim_policy=settings.claim_policy, **kwargs)
        if settings.db is not None:
            # a cloud that just started has no device session; stale codes go
            self.cloud.mark_all_offline()
            store.delete_expired_claim_codes(self.cloud.unix_us)

    # -- the testbed's interface ---------------------------------------------------------------

    def connect_device(self, device: Device, link: LinkSpec) -> None:
        device.attach_cloud(self.cloud.connector(latency_s=link.latency_s, loss=link.loss))

    async def serve(self, driver: AsyncioDriver, options: ServeOptions) -> ServedCloud:
        try:
            from cloud_sim.server import CloudServer, ServerConfig
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        config = ServerConfig(host=options.host, http_port=options.http_port,
                              coap_host=options.host, coap_port=options.device_port,
                              speed=options.speed, **options.extra)
        server = CloudServer(self.cloud, config, driver=driver, run_driver=False)
        await server.start()
        lines = [("REST API", f"{server.http_url}  (OpenAPI {server.http_url}/openapi.json)"),
                 ("CoAP/UDP", server.coap_url)]
        return ServedCloud(lines, server.http_url, server.coap_url, server.stop, server)

    def close(self) -> None:
        self.cloud.store.close()

    # -- what scenarios and actors use ---------------------------------------------------------

    @staticmethod
    def user(email: str) -> Principal:
        return Principal.user(email)

    def create_claim_code(self, owner: Principal, *, product_id: int | None = None,
                          ttl_s: float | None = None) -> str:
        return self.cloud.create_claim_code(owner, product_id, ttl_s).code

    def owner_of(self, device_id: str) -> Principal | None:
        return self.cloud.owner_of(device_id)

    def claim_code_consumed(self, code: str) -> bool:
        claim = self.cloud.store.get_claim_code(code)
        return bool(claim and claim.consumed)

    def forget_session(self, device_id: str) -> bool:
        """The cloud drops the device's session: its next resume gets a RST."""
        return self.cloud.endpoint.forget_session(device_id)

    def api(self) -> AbstractContextManager[ApiClient]:
        """The REST API called in process through its whole ASGI stack (virtual time)."""
        try:
            from cloud_sim.http import create_app
            from cloud_sim.http.client import AsgiApiClient
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        return AsgiApiClient(create_app(self.cloud))


def remote_api(base_url: str) -> AbstractContextManager[ApiClient]:
    """A client of a Particle cloud's REST API in another process (HTTP)."""
    try:
        from cloud_sim.http.client import HttpApiClient
    except ModuleNotFoundError as exc:
        raise _missing_extra(exc) from None
    return HttpApiClient(base_url)


def claim_code_well_formed(code: str) -> bool:
    """63 characters of the claim-code alphabet (what the cloud issues)."""
    return is_well_formed(code)


__all__ = ["SERVED_OFFLINE_AFTER_S", "ParticlePlug", "ParticleSettings", "claim_code_well_formed",
           "remote_api"]
