"""Built-in application firmware: the forum workaround and its variants, selectable by name.

Each app keeps a ``stage`` string and logs its decisions under the ``app`` category, so the
timeline shows why it published or disconnected.

Anywhere fwsim takes a firmware (``--firmware`` on the command line, ``DeviceSpec.firmware`` in a
testbed, the pytest plugin's device factory) it accepts, through :func:`resolve_firmware`:

* a built-in name (``fwsim device run --help`` lists them): ``default`` (an empty app),
  ``session-end-workaround``, ``session-end-too-early``, ``clear-session``;
* a Python import path ``package.module:ClassName``;
* a file path ``path/to/app.py:ClassName`` (or ``path/to/app.py`` when the file defines exactly
  one :class:`~firmware_sim.system.app.Firmware` subclass);
* a :class:`~firmware_sim.system.app.Firmware` subclass (or any zero-argument factory).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from .communication.event_names import SESSION_END_EVENT
from .kernel.errors import ConfigurationError
from .kernel.user_modules import USER_MODULE_PREFIX, import_location, load_file
from .system.app import Firmware, Particle
from .system.events import CloudStatus, NetworkCredentials, SystemEvent


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


FirmwareFactory = Callable[[], Firmware]

#: Built-in firmware by name (what ``--firmware NAME`` accepts besides import and file paths).
BUILTIN_FIRMWARE: dict[str, type[Firmware]] = {
    "default": Firmware,
    "session-end-workaround": SessionEndWorkaround,
    "session-end-too-early": SessionEndTooEarly,
    "clear-session": ClearSessionOnNewCredentials,
}


def firmware_name(factory: FirmwareFactory) -> str:
    """A short name for a firmware factory (the built-in name, else ``module:Qualname``)."""
    for name, cls in BUILTIN_FIRMWARE.items():
        if factory is cls:
            return name
    module = getattr(factory, "__module__", "?")
    if module.startswith(USER_MODULE_PREFIX):  # loaded from a file: name the file
        source = getattr(sys.modules.get(module), "__file__", None)
        if source:
            module = Path(source).name
    return f"{module}:{getattr(factory, '__qualname__', repr(factory))}"


def resolve_firmware(ref: str | FirmwareFactory | None) -> FirmwareFactory:
    """Turn a firmware reference (see the module header) into a factory.

    Raises :class:`~firmware_sim.kernel.errors.ConfigurationError` with a one-line message when
    the reference names nothing usable.
    """
    if ref is None:
        return Firmware
    if not isinstance(ref, str):
        if not callable(ref):
            raise ConfigurationError(f"firmware {ref!r} is not a class or factory")
        return ref
    text = ref.strip()
    if text in BUILTIN_FIRMWARE:
        return BUILTIN_FIRMWARE[text]
    location, _, attr = text.rpartition(":") if ":" in text else (text, "", "")
    if location.endswith(".py") or (not attr and text.endswith(".py")):
        module = load_file(Path(location or text), "firmware")
    elif location and attr:
        module = import_location(location, "firmware", text)
    else:
        known = ", ".join(BUILTIN_FIRMWARE)
        raise ConfigurationError(f"unknown firmware {text!r}: give a built-in name ({known}), "
                                 "module:Class or path/to/app.py[:Class]")
    return _pick_class(module, attr, text)


def _pick_class(module: object, attr: str, text: str) -> FirmwareFactory:
    if attr:
        found = getattr(module, attr, None)
        if found is None:
            raise ConfigurationError(f"firmware {text!r}: no attribute {attr!r}")
        if inspect.isclass(found) and not issubclass(found, Firmware):
            raise ConfigurationError(f"firmware {text!r}: {attr} is not a Firmware subclass")
        if not callable(found):
            raise ConfigurationError(f"firmware {text!r}: {attr} is not callable")
        factory: FirmwareFactory = found
        return factory
    candidates = [value for value in vars(module).values()
                  if inspect.isclass(value) and issubclass(value, Firmware)
                  and value.__module__ == getattr(module, "__name__", None)]
    if len(candidates) != 1:
        raise ConfigurationError(f"firmware {text!r} defines {len(candidates)} Firmware "
                                 "subclasses; name one as path.py:ClassName")
    return candidates[0]


__all__ = ["BUILTIN_FIRMWARE", "ClearSessionOnNewCredentials", "FirmwareFactory",
           "SessionEndTooEarly", "SessionEndWorkaround", "firmware_name", "resolve_firmware"]
