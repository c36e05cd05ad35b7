"""Steering a running testbed from outside: the operations behind ``fwsim ctl`` and the
``/fwsim/devices`` admin routes (and, later, the dashboard's buttons).

How this works
--------------
:class:`Steering` wraps a built :class:`~firmware_sim.testbed.Testbed` and offers one method per
operation, each taking a device by name or id: drop its cloud session, power-cycle, reset,
enter/leave listening mode, cut/restore its network, set its link's loss and latency, publish
an event as its application, set a claim code as a phone would (an encoded ``SET_CLAIM_CODE``
control request through the device's dispatcher), and read its state. Every operation goes
through the testbed's :class:`~firmware_sim.testbed.actors.Operator` (or the phone's carrier), so
it is a trace record like any other actor's step, and answers a JSON-ready ``dict``.

The object is sans-IO and runs on the world's thread: whoever calls it from real time (the HTTP
routes of :mod:`.steering_routes`) brings the world up to the wall clock first and wakes the
driver after. Operations that complete later (the control request) take a ``done`` callback.

Session counts are counted here from the trace (``handshake.full`` / ``handshake.resumed`` of
the device's ``cloud`` layer) since the steering started, so they survive reboots - the
device's own ``CloudConnection.handshakes`` restarts at every boot. The same watch keeps what
explains a device that is not running: its last panic (``device.panic``: code, SOS length) and
the firmware failure that caused it (``app.failed`` of the same boot: where, error), and when an
off device boots again (a power cycle steered from here: its off time; a ``device.reset``: the
profile's boot delay) - so :meth:`Steering.state` says why and until when, and an operation on
an off device says "a power cycle is in progress; it boots in 3 s" rather than "off".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..apps import firmware_name
from ..kernel.errors import ConfigurationError, UsageError
from ..kernel.trace import TraceRecord
from ..system.cloud import CloudState, reset_reason_event_data
from ..system.device import Device, DeviceState
from .actors import ControlRequestProvisioning, Operator
from .testbed import Testbed

#: the states :meth:`Steering.state` reports, in the order a device goes through them
DEVICE_STATES = ("off", "panic", "dfu", "listening", "disconnected", "connecting", "handshake",
                 "connected")


class UnknownDevice(UsageError):
    """No device of that name or id in the testbed."""


class Steering:
    """Operations on the devices (and their cloud) of a running testbed."""

    def __init__(self, testbed: Testbed, operator: Operator | None = None) -> None:
        self.testbed = testbed
        self.world = testbed.world
        self.operator = operator or Operator(testbed.world)
        self._counts: dict[str, dict[str, int]] = {name: {"full": 0, "resumed": 0}
                                                   for name in testbed.devices}
        self._last: dict[str, str | None] = {name: None for name in testbed.devices}
        #: per device: its last firmware failure (boot, where, error) and panic (boot, t_us,
        #: code, sos_s), and the boot it waits for (world µs, what it waits through)
        self._failures: dict[str, tuple[int, str, str]] = {}
        self._panics: dict[str, tuple[int, int, int, float]] = {}
        self._boots: dict[str, tuple[int, str]] = {}
        self._reset_reasons: dict[str, str] = {}
        self._unsubscribe = self.world.trace.subscribe(self._watch)

    def close(self) -> None:
        self._unsubscribe()

    def _watch(self, record: TraceRecord) -> None:
        if record.layer == "cloud" and record.kind in ("handshake.full", "handshake.resumed"):
            counts = self._counts.get(record.node)
            if counts is not None:
                kind = "full" if record.kind == "handshake.full" else "resumed"
                counts[kind] += 1
                self._last[record.node] = kind
            return
        device = self.testbed.devices.get(record.node)
        if device is None:
            return
        fields = record.fields
        if record.kind == "app.failed":
            self._failures[device.name] = (device.boot_count, str(fields.get("where")),
                                           str(fields.get("error")))
        elif record.kind == "device.panic":
            code, sos_s = fields.get("code"), fields.get("sos_s")
            self._panics[device.name] = (
                device.boot_count, record.t_us, code if isinstance(code, int) else 0,
                float(sos_s) if isinstance(sos_s, int | float) else 0.0)
        elif record.kind == "device.reset":
            boot_at = record.t_us + round(device.timing.boot_delay_s * 1e6)
            what = "a panic reset" if fields.get("reason") == "panic" else "a reset"
            self._expect_boot(device.name, boot_at, what)
        elif record.kind == "device.boot":
            self._boots.pop(device.name, None)
            self._reset_reasons[device.name] = str(fields.get("reset_reason"))

    def _expect_boot(self, name: str, at_us: int, what: str) -> None:
        pending = self._boots.get(name)
        if pending is None or at_us < pending[0]:  # the device boots at the first of them
            self._boots[name] = (at_us, what)

    # -- finding devices -----------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.testbed.devices)

    def device(self, key: str) -> Device:
        """The device called ``key``, or whose id is ``key`` (any case)."""
        found = self.testbed.devices.get(key)
        if found is not None:
            return found
        for device in self.testbed.devices.values():
            if device.device_id == key.lower():
                return device
        known = ", ".join(self.testbed.devices) or "none"
        raise UnknownDevice(f"unknown device {key!r} (devices: {known})")

    # -- reading -------------------------------------------------------------------------------

    def states(self) -> list[dict[str, Any]]:
        return [self.state(name) for name in self.testbed.devices]

    def state(self, key: str) -> dict[str, Any]:
        """Everything a person looking at the device wants to know, JSON-ready."""
        device = self.device(key)
        running = device.running
        pending = device.claim.pending_code() if running or device.state is DeviceState.OFF \
            else None
        state: dict[str, Any] = {
            "name": device.name,
            "device_id": device.device_id,
            "profile": device.profile.name,
            "firmware": firmware_name(device.firmware_factory),
            "serial_number": device.serial_number,
            "state": device_state(device),
            "uptime_ms": device.uptime_ms() if running else None,
            "listening": running and device.listening.active,
            "network": {"state": device.network.state.value if running else "off",
                        "ssid": device.network.current.ssid
                        if running and device.network.current else None},
            "cloud": {"state": device.cloud.state.value if running else "off",
                      "connected": device.cloud_connected,
                      "session_persisted": device.session.load() is not None},
            "sessions": dict(self._counts.get(device.name, {"full": 0, "resumed": 0})),
            "last_session": self._last.get(device.name),
            "claim_code_pending": pending is not None,
            "claim_code": pending,
            "claimed_flag": device.claim.is_device_claimed(),
            "boot_count": device.boot_count,
            # the last boot's reason (System.resetReason()), seen since the steering started
            "last_reset_reason": self._reset_reasons.get(device.name),
            "panic": self._panic_view(device),
            "boots_in_s": self._boots_in_s(device),
        }
        state.update(self._cloud_view(device))
        return state

    def _panic_view(self, device: Device) -> dict[str, Any] | None:
        """A panicking device's panic: code, name, virtual seconds until its own reset, and
        why (the firmware failure that caused it, if one did)."""
        panic = self._panics.get(device.name)
        if device.state is not DeviceState.PANIC or panic is None:
            return None
        boot, t_us, code, sos_s = panic
        left_s = max(0.0, (t_us + sos_s * 1e6 - self.world.clock.now_us) / 1e6)
        failure = self._failures.get(device.name)
        why = None
        if failure is not None and failure[0] == boot:
            why = {"where": failure[1], "error": failure[2]}
        return {"code": code, "name": reset_reason_event_data("panic", code).split(", ", 1)[1],
                "sos_s": sos_s, "resets_in_s": round(left_s, 1), "why": why}

    def _boots_in_s(self, device: Device) -> float | None:
        """Virtual seconds until an off device boots (a power cycle or reset under way)."""
        pending = self._boots.get(device.name)
        if device.state is not DeviceState.OFF or pending is None:
            return None
        return round(max(0.0, (pending[0] - self.world.clock.now_us) / 1e6), 1)

    def _cloud_view(self, device: Device) -> dict[str, Any]:
        """What the testbed's cloud knows of the device (the Particle cloud only)."""
        plug = self.testbed.cloud
        cloud = getattr(plug, "cloud", None)
        if cloud is None or not hasattr(cloud, "store"):
            return {"owner": None, "owner_name": None, "cloud_name": None, "product_id": None,
                    "online": None, "cloud_session": None}
        from cloud_sim.http.render import display_name

        record = cloud.store.get_device(device.device_id)
        session = cloud.endpoint.session_for_device(device.device_id)
        owner = record.owner if record is not None else None
        return {
            "owner": str(owner) if owner else None,
            "owner_name": owner_name(cloud.store, record) if record is not None else None,
            # the name the cloud's API knows it by (particle call NAME ...)
            "cloud_name": display_name(record) if record is not None else None,
            "product_id": record.product_id if record is not None else None,
            "online": bool(record.online) if record is not None else False,
            "cloud_session": None if session is None else {
                "full_handshakes": session.full_handshakes, "resumes": session.resumes},
        }

    # -- operations ----------------------------------------------------------------------------

    def drop_session(self, key: str) -> dict[str, Any]:
        """The cloud forgets the device's session: its next message on it (a keepalive, a
        publish, a resume after a reconnect) gets a RST and it does a full handshake."""
        device = self.device(key)
        dropped = self.operator.cloud_forget_session(self._cloud_control(), device)
        return {"device": device.name, "dropped": dropped}

    def key_change(self, key: str) -> dict[str, Any]:
        """The cloud sends the device a key change message over its session: the device
        discards the session and reconnects with a full handshake."""
        device = self.device(key)
        sent = self.operator.cloud_key_change(self._cloud_control(), device)
        return {"device": device.name, "sent": sent}

    def power_cycle(self, key: str, off_s: float = 1.0) -> dict[str, Any]:
        if not 0 < off_s <= 3600:
            raise ConfigurationError("off_s must be between 0 and 3600 seconds")
        device = self.device(key)
        self.operator.power_cut(device, off_s)
        self._boots.pop(device.name, None)  # the power cut cancels any boot under way
        self._expect_boot(device.name, self.world.clock.now_us + round(off_s * 1e6),
                          "a power cycle")
        return {"device": device.name, "off_s": off_s}

    def reset(self, key: str) -> dict[str, Any]:
        """Reset the device: ``System.reset()`` (reason ``user``), or - a panicking device runs
        no code - its RESET button (``pin_reset``)."""
        device = self.device(key)
        if device.state is DeviceState.PANIC:
            self.operator.reset(device, "pin_reset")
            return {"device": device.name}
        self._require_running(device)
        self.operator.reset(device)
        return {"device": device.name}

    def listening(self, key: str, active: bool) -> dict[str, Any]:
        device = self.device(key)
        self._require_running(device)
        self.operator.listening(device, active)
        return {"device": device.name, "listening": device.listening.active}

    def network(self, key: str, up: bool) -> dict[str, Any]:
        """Cut the device's network (it leaves its access point) or restore it (it joins
        again and reconnects to the cloud)."""
        device = self.device(key)
        self._require_running(device)
        if up:
            self.operator.network_restore(device)
        else:
            self.operator.network_cut(device)
        return {"device": device.name, "network": device.network.state.value}

    def link(self, key: str, *, loss: float | None = None,
             latency_s: float | None = None) -> dict[str, Any]:
        """Set the loss (0..1) and/or one-way latency of the device's link to its cloud."""
        device = self.device(key)
        if loss is not None and not 0.0 <= loss <= 1.0:
            raise ConfigurationError(f"loss must be between 0 and 1, not {loss!r}")
        if latency_s is not None and not 0.0 <= latency_s <= 60.0:
            raise ConfigurationError(f"latency must be between 0 and 60 s, not {latency_s!r}")
        conditioned = self.testbed.link_conditioners.get(device.name)
        if conditioned is not None:
            self.operator.tracer.emit("operator.link_conditions", device=device.name, loss=loss,
                                      latency_s=latency_s)
            conditioned.set(loss=loss, latency_s=latency_s)
            now_loss, now_latency = conditioned.loss, conditioned.latency_s
        else:
            control = self._cloud_control()
            self.operator.link_conditions(control, device, loss=loss, latency_s=latency_s)
            now_loss, now_latency = control.link_conditions(device.name)
        return {"device": device.name, "loss": now_loss, "latency_ms": round(now_latency * 1000)}

    def publish(self, key: str, name: str, data: str = "", *,
                private: bool = True) -> dict[str, Any]:
        """Publish an event as the device's application would (``Particle.publish``)."""
        device = self.device(key)
        self._require_running(device)
        sent = self.operator.publish(device, name, data, private=private)
        return {"device": device.name, "event": name, "sent": sent}

    def set_claim_code(self, key: str, code: str, done: Callable[[dict[str, Any]], None]
                       ) -> None:
        """Set a claim code as a phone would: a ``SET_CLAIM_CODE`` control request through the
        device's dispatcher; ``done`` gets ``{"device", "result"}`` (0: stored)."""
        device = self.device(key)
        self._require_running(device)
        self.operator.tracer.emit("operator.set_claim_code", device=device.name)

        def completed(result: int) -> None:
            done({"device": device.name, "result": result})

        ControlRequestProvisioning(device, channel="steering").set_claim_code(code, completed)

    # -- helpers -------------------------------------------------------------------------------

    def _require_running(self, device: Device) -> None:
        if device.state is DeviceState.PANIC:
            panic = self._panic_view(device)
            until = f" in {panic['resets_in_s']:g} s" if panic is not None else ""
            raise UsageError(f"device {device.name} is panicking (flashing SOS until it resets "
                             f"itself{until}; reset or power-cycle it to end that sooner)")
        if not device.running:
            pending = self._boots.get(device.name)
            boots_in = self._boots_in_s(device)
            if pending is not None and boots_in is not None:
                raise UsageError(f"device {device.name} is off: {pending[1]} is in progress; "
                                 f"it boots in {boots_in:g} s")
            raise UsageError(f"device {device.name} is off (power-cycle it first)")

    def _cloud_control(self) -> Any:
        cloud = self.testbed.cloud
        if cloud is None or not hasattr(cloud, "forget_session"):
            raise ConfigurationError("this testbed's cloud cannot do that (no Particle cloud)")
        return cloud


def owner_name(store: Any, record: Any) -> str | None:
    """A device record's owner as the REST API names it (``owner_email``: a user's username, a
    customer's e-mail, here with ``(customer)``); the principal itself when the store has no
    such account; None when nobody owns the device."""
    from cloud_sim.http.render import owner_email

    owner = record.owner
    if owner is None:
        return None
    email = owner_email(store, record)
    if email is None:
        return str(owner)
    return email if owner.is_user else f"{email} (customer)"


def device_state(device: Device) -> str:
    """One word for where the device is (:data:`DEVICE_STATES`)."""
    if device.state in (DeviceState.DFU, DeviceState.ENTERING_DFU):
        return "dfu"
    if device.state is DeviceState.PANIC:
        return "panic"
    if not device.running:
        return "off"
    if device.listening.active:
        return "listening"
    cloud = device.cloud.state
    if cloud is CloudState.CONNECTED:
        return "connected"
    if cloud in (CloudState.HANDSHAKING, CloudState.HANDSHAKE_PENDING):
        return "handshake"
    if cloud is CloudState.SOCKET_CONNECTING or device.network.connecting:
        return "connecting"
    return "disconnected"


__all__ = ["DEVICE_STATES", "Steering", "UnknownDevice", "device_state", "owner_name"]
