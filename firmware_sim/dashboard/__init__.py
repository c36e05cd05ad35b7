"""A live web view of a running testbed: devices, sessions, claim codes, owners and events,
steered from the browser.

``fwsim up`` and ``fwsim cloud serve --admin`` (either cloud) mount it on their HTTP server::

    from firmware_sim.dashboard import mount_dashboard
    dashboard = mount_dashboard(served, testbed, steering=steering)
    print(dashboard.url)        # http://127.0.0.1:8080/ui/#token=...
    ...
    dashboard.close()           # before the server stops: ends the live streams

It is served at ``/ui`` (and ``/`` redirects there when the app has nothing at ``/``), guarded
like the ``/fwsim`` admin namespace: the admin token printed at start-up (a Particle cloud's
admin token; a fresh one, or ``token``, for ThingsBoard), exchanged once for a session cookie
(:mod:`.security`). Pages are rendered by Jinja2 and kept live over Server-Sent Events
(:mod:`.app`); what they show and do comes from a backend per cloud (:mod:`.backends`) - the
Particle devices through :class:`~firmware_sim.testbed.steering.Steering`, the operations of
``fwsim ctl`` - built on trace records sorted per device (:mod:`.feed`), view models
(:mod:`.views`) and the sequence-diagram renderer (:mod:`.flow`). Every asset ships in the
package: no build step, no CDN, works offline. See docs/dashboard.md.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..kernel.errors import ConfigurationError

if TYPE_CHECKING:
    from ..testbed import ServedCloud, Testbed
    from ..testbed.clouds.particle import ParticlePlug
    from ..testbed.clouds.thingsboard import ThingsBoardPlug
    from ..testbed.steering import Steering
    from .app import DashboardApp
    from .backends import Backend

PATH = "/ui"


@dataclass
class Dashboard:
    """A mounted dashboard: where to open it, its token, and how to stop its streams."""

    url: str
    login_url: str
    token: str
    backend: Backend
    lines: list[tuple[str, str]] = field(default_factory=list)
    #: the mounted app (its sessions, its open live streams)
    app: DashboardApp | None = None

    def close(self) -> None:
        self.backend.close()


def _has_root(app: Any) -> bool:
    return any(getattr(route, "path", None) in ("/", "") for route in app.routes)


def mount_dashboard(served: ServedCloud, testbed: Testbed, *, steering: Steering | None = None,
                    token: str | None = None) -> Dashboard:
    """Mount the dashboard on the served cloud's HTTP app (see the module header).

    ``steering``: the running :class:`Steering` to share (its session counts), else one of its
    own; ``token``: the ThingsBoard dashboard's token (default: a fresh one; a Particle cloud's
    is its admin token). A Particle cloud without its admin namespace has no dashboard
    (``ConfigurationError``)."""
    try:
        from starlette.responses import RedirectResponse
        from starlette.routing import Mount

        from cloud_sim.http.guard import HostPolicy

        from .app import Settings, build_app
        from .backends import ParticleBackend, ThingsBoardBackend
        from .security import SameOrigin, Sessions, cookie_name
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"the dashboard needs {exc.name}: install fwsim[cloud]"
                                 ) from None
    server = served.server
    if server is None or not hasattr(server, "app"):
        raise ConfigurationError("the dashboard needs a cloud served over HTTP")
    plug = testbed.cloud
    runtime = testbed.driver()
    backend: Backend
    if plug is not None and plug.kind == "particle":
        admin_token = getattr(server, "admin_token", None)
        if admin_token is None:
            raise ConfigurationError("the dashboard is guarded by the admin token: serve the "
                                     "/fwsim admin namespace (--admin)")
        token = admin_token
        backend = ParticleBackend(testbed, cast("ParticlePlug", plug), runtime,
                                  steering=steering)
    elif plug is not None and plug.kind == "thingsboard":
        token = token or secrets.token_urlsafe(32)
        backend = ThingsBoardBackend(testbed, cast("ThingsBoardPlug", plug), runtime)
    else:
        raise ConfigurationError("the dashboard knows the particle and thingsboard clouds")
    config = server.config
    hosts = HostPolicy.for_bound(config.host, server.http_port,
                                 tuple(getattr(config, "allowed_hosts", ())))
    settings = Settings(base=PATH, cookie=cookie_name(server.http_port),
                        title=f"fwsim {plug.kind} dashboard")
    dashboard_app = build_app(backend, Sessions(token), SameOrigin(hosts), settings)
    app = server.app
    root_free = not _has_root(app)

    async def to_dashboard(request: Any) -> Any:
        return RedirectResponse(f"{PATH}/", 307)

    app.add_route(PATH, to_dashboard, include_in_schema=False)
    if root_free:
        app.add_route("/", to_dashboard, include_in_schema=False)
    app.router.routes.append(Mount(PATH, app=dashboard_app.asgi))
    login_url = f"{served.http_url}{PATH}/"
    url = f"{login_url}#token={token}"
    return Dashboard(url, login_url, token, backend, lines=[("dashboard", url)],
                     app=dashboard_app)


__all__ = ["PATH", "Dashboard", "mount_dashboard"]
