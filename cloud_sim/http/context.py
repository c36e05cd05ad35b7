"""What every handler needs: the cloud, the real-time runtime, limits, the open event streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cloud import Cloud
from ..runtime import NullRuntime, Runtime
from .fanout import StreamHub
from .guard import AdminAccess, HostPolicy


@dataclass
class ApiConfig:
    max_body_bytes: int = 64 * 1024
    #: seconds a request body may take to arrive (408 after)
    body_timeout_s: float = 20.0
    #: seconds between SSE keep-alive comments (particle-api-js drops a stream idle for 15 s)
    sse_keepalive_s: float = 5.0
    sse_queue_size: int = 1000
    #: open event streams, in all and per access token (429 beyond)
    max_streams: int = 256
    max_streams_per_token: int = 32
    #: the ``/fwsim`` namespace; in process it is open (there is no socket), a served cloud
    #: sets it from ``ServerConfig`` (off, or behind a token)
    admin: AdminAccess = field(default_factory=AdminAccess)
    #: the Host/Origin check of a served API (None in process)
    hosts: HostPolicy | None = None


@dataclass
class ApiContext:
    cloud: Cloud
    runtime: Runtime = field(default_factory=NullRuntime)
    config: ApiConfig = field(default_factory=ApiConfig)
    #: the open event streams (``close_streams`` ends them: server shutdown)
    hub: StreamHub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = StreamHub(self.cloud, self.config.sse_queue_size, self.config.max_streams,
                             self.config.max_streams_per_token)

    def close_streams(self) -> None:
        self.hub.close_all()
