"""Test firmware used by the scenarios: the forum workaround and its variants.

Each app keeps a ``stage`` string and logs its decisions under the ``app`` category, so the
timeline shows why it published or disconnected.
"""

from __future__ import annotations

from ..system.app import Firmware, Particle
from ..system.events import CloudStatus, NetworkCredentials, SystemEvent

SESSION_END_EVENT = "spark/device/session/end"


class _CredentialsWatcher(Firmware):
    stage = "idle"

    def setup(self, particle: Particle) -> None:
        self.particle = particle
        self.stage = "idle"
        particle.on_system_event(SystemEvent.NETWORK_CREDENTIALS, self._credentials)
        particle.on_system_event(SystemEvent.CLOUD_STATUS, self._cloud)

    def _credentials(self, event: SystemEvent, param: int) -> None:
        if param == NetworkCredentials.ADDED:
            self.on_credentials_added()

    def _cloud(self, event: SystemEvent, param: int) -> None:
        self.on_cloud_status(CloudStatus(param))

    def on_credentials_added(self) -> None:
        self.stage = "credentials-added"

    def on_cloud_status(self, status: CloudStatus) -> None:
        pass


class SessionEndWorkaround(_CredentialsWatcher):
    """The forum workaround: once new credentials were added, disconnect and reconnect, and only
    when the cloud is connected again publish ``spark/device/session/end`` (PRIVATE, empty)."""

    def on_cloud_status(self, status: CloudStatus) -> None:
        p = self.particle
        if status is CloudStatus.CONNECTED and self.stage == "credentials-added":
            self.stage = "disconnecting"
            p.log("new credentials: forcing a disconnect before ending the session")
            p.disconnect()
        elif status is CloudStatus.DISCONNECTED and self.stage == "disconnecting":
            self.stage = "reconnecting"
            p.connect()
        elif status is CloudStatus.CONNECTED and self.stage == "reconnecting":
            sent = p.publish(SESSION_END_EVENT, "", private=True)
            self.stage = "session-end-sent" if sent else "session-end-lost"
            p.log(f"published {SESSION_END_EVENT}: {'ok' if sent else 'lost'}")


class SessionEndTooEarly(_CredentialsWatcher):
    """Publishes ``spark/device/session/end`` as soon as new credentials are added - while the
    device is reconnecting - so the publish is lost."""

    def on_credentials_added(self) -> None:
        sent = self.particle.publish(SESSION_END_EVENT, "", private=True)
        self.stage = "session-end-sent" if sent else "session-end-lost"
        self.particle.log(f"published {SESSION_END_EVENT}: {'ok' if sent else 'lost'}")


class ClearSessionOnNewCredentials(_CredentialsWatcher):
    """The documented path: ``Particle.disconnect(CloudDisconnectOptions().clearSession(true))``
    after new credentials, then connect again."""

    def on_cloud_status(self, status: CloudStatus) -> None:
        p = self.particle
        if status is CloudStatus.CONNECTED and self.stage == "credentials-added":
            self.stage = "clearing"
            p.log("new credentials: disconnecting with clearSession(true)")
            p.disconnect(clear_session=True)
        elif status is CloudStatus.DISCONNECTED and self.stage == "clearing":
            self.stage = "reconnecting"
            p.connect()
