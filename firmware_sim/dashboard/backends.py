"""What the dashboard reads and does, per cloud: the Particle cloud with its simulated devices
(through :class:`~firmware_sim.testbed.steering.Steering`, the operations of ``fwsim ctl``) and
the ThingsBoard service with its claim buttons.

How this works
--------------
A backend answers the pages' questions - the device rows, one device's panels (session state,
DCT claim-code bytes or the button's secret and QR code, the "why" reasons, the live log, the
event stream, the last flow's diagram) - and performs the buttons' actions. It owns a
:class:`~.feed.Feed` with its own router, so it knows which trace records concern which device.

* :class:`ParticleBackend`: the testbed's devices by name, plus - for ``cloud serve``, whose
  devices run in other processes - every device the cloud's store knows, by id (cloud-side view
  only; the one action is dropping the session). Actions are :class:`Steering`'s; a claim code is
  set as a phone would (a ``SET_CLAIM_CODE`` control request) and awaited; the cloud's event bus
  feeds the event stream.
* :class:`ThingsBoardBackend`: the demo tenant's devices; claim buttons can be pressed (a new
  secret, shown with its QR code), any device claimed as a demo customer or reclaimed, and the
  service's claim history is the "why".

**Transitions.** A second action on a device while a power cycle or reset is under way (until
the device boots) or while its claim code is being set is refused with 409 and says which
action is in progress - a double click cannot stack operations. Every expected failure is an
:class:`ActionError` (status + one-line message); the app turns it into a JSON error.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..communication.wire import MAX_FUNCTION_ARG_LENGTH, MAX_FUNCTION_KEY_LENGTH
from ..diagram import Diagram
from ..kernel.errors import FwSimError, UsageError
from ..kernel.trace import TraceRecord
from ..testbed.steering import Steering, UnknownDevice
from . import views
from .feed import MAX_DEVICES, Feed, per_device_for
from .flow import button_diagram, device_diagram
from .views import DeviceRow, EventRow, Reason

if TYPE_CHECKING:
    from cloud_sim.events import CloudEvent

    from ..kernel.runtime import Runtime
    from ..testbed import Testbed
    from ..testbed.clouds.particle import ParticlePlug
    from ..testbed.clouds.thingsboard import ThingsBoardPlug

#: wall seconds a control request may take before the action answers 504
CONTROL_TIMEOUT_S = 10.0
#: wall seconds a power cycle or reset may take (until the boot) before it stops blocking
TRANSITION_TIMEOUT_S = 60.0
#: rows in the device list at most
MAX_ROWS = 200
#: a claim code as the admin route and ``fwsim ctl`` take it: ``SetClaimCodeRequest.code`` is
#: nanopb max_length 64 (over USB too); the HAL keeps 63 of them
MAX_CLAIM_CODE = 64
#: how long a power cycle may keep the power off (the admin route's range)
MIN_OFF_S, MAX_OFF_S = 0.001, 3600.0
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,63}")
#: a device's own records worth keeping (the log, the flow, the why)
_DEVICE_KINDS = frozenset({
    "log", "device.boot", "device.panic", "device.reset", "device.power_off", "publish.lost",
    "cloud.state", "handshake.full", "handshake.resumed", "control.request", "control.done"})
#: the cloud's records about a device worth keeping
_CLOUD_KINDS = frozenset({
    "dtls.client_hello", "handshake.full", "session.resumed", "event", "session.unknown",
    "event.to_device", "session.dropped", "claim.redeem", "claim.api", "device.offline",
    "key_change.to_device"})
_DEVICE_PATH = re.compile(r"^/v1/(?:products/[^/]+/)?devices/([0-9a-fA-F]{24})(?:/|$)")


class ActionError(Exception):
    """An action or a look-up that cannot be done: an HTTP status and one line for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refused(exc: FwSimError) -> ActionError:
    if isinstance(exc, UnknownDevice):
        return ActionError(404, str(exc))
    if isinstance(exc, UsageError):
        return ActionError(409, str(exc))
    return ActionError(400, str(exc))


class Backend(Protocol):
    cloud: str
    feed: Feed

    def rows(self) -> list[DeviceRow]: ...
    def row(self, name: str) -> DeviceRow: ...
    def panels(self, name: str) -> dict[str, Any]: ...
    def reasons(self, name: str) -> list[Reason]: ...
    def log(self, name: str, after: int = 0) -> list[dict[str, Any]]: ...
    def events(self, name: str, after: int = 0) -> list[EventRow]: ...
    def diagram(self, name: str) -> Diagram: ...
    def secret(self, name: str) -> str | None: ...
    async def act(self, name: str, action: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _flag(params: dict[str, Any], key: str, default: bool | None = None) -> bool:
    """A JSON boolean: ``true`` or ``false`` only (``"yes"`` or 1 are a 400); ``default``
    when the key is absent (None: it is required)."""
    if key not in params and default is not None:
        return default
    value = params.get(key)
    if not isinstance(value, bool):
        raise ActionError(400, f"{key} must be true or false")
    return value


def _seconds(params: dict[str, Any], key: str, *, default: float, minimum: float,
             maximum: float) -> float:
    """A JSON number of seconds in ``minimum..maximum`` (the admin route's range), or
    ``default`` when the key is absent."""
    if key not in params:
        return default
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not minimum <= value <= maximum:
        raise ActionError(400, f"{key} must be a number of seconds between {minimum:g} and "
                          f"{maximum:g}")
    return float(value)


def _text(params: dict[str, Any], key: str, *, max_length: int, required: bool = True,
          printable: bool = False) -> str:
    """A text field: a JSON string of Unicode text (no lone surrogate, which no UTF-8 can
    carry), stripped, at most ``max_length`` characters; ``printable``: no control or other
    non-printable characters either (an e-mail address, a customer letter)."""
    value = params.get(key, "")
    if not isinstance(value, str):
        raise ActionError(400, f"{key} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ActionError(400, f"{key} must be Unicode text (no lone surrogates)") from None
    value = value.strip()
    if printable and not value.isprintable():
        raise ActionError(400, f"{key} must be printable text (no control characters)")
    if required and not value:
        raise ActionError(400, f"{key} is required")
    if len(value) > max_length:
        raise ActionError(400, f"{key} is too long (at most {max_length} characters)")
    return value


class _Transitions:
    """Actions under way per device (see the module header)."""

    def __init__(self) -> None:
        self._busy: dict[str, tuple[str, float]] = {}

    def check(self, name: str) -> None:
        busy = self._busy.get(name)
        if busy is None:
            return
        what, deadline = busy
        if time.monotonic() > deadline:
            del self._busy[name]
            return
        raise ActionError(409, f"{name}: {what} in progress; wait for it to finish")

    def start(self, name: str, what: str, timeout_s: float = TRANSITION_TIMEOUT_S) -> None:
        self._busy[name] = (what, time.monotonic() + timeout_s)

    def end(self, name: str, what: str | None = None) -> None:
        busy = self._busy.get(name)
        if busy is not None and (what is None or busy[0] == what):
            del self._busy[name]

    def current(self, name: str) -> str | None:
        busy = self._busy.get(name)
        return busy[0] if busy is not None and time.monotonic() <= busy[1] else None


# -- Particle ------------------------------------------------------------------------------------


class ParticleBackend:
    """The Particle cloud of a testbed and its devices (module header)."""

    cloud = "particle"

    def __init__(self, testbed: Testbed, plug: ParticlePlug, runtime: Runtime, *,
                 steering: Steering | None = None) -> None:
        self.testbed = testbed
        self.plug = plug
        self.runtime = runtime
        self._own_steering = steering is None
        self.steering = steering if steering is not None else Steering(testbed)
        self.devices = dict(testbed.devices)
        self.names_by_id = {device.device_id: name for name, device in self.devices.items()}
        self.cloud_node = plug.cloud.name
        self._sessions: dict[Any, str] = {}  # cloud session id -> device id
        self.transitions = _Transitions()
        # a cloud serving devices of other processes: as many as MAX_DEVICES may show up
        self.feed = Feed(testbed.world.trace, self._route, per_device=per_device_for(
            len(self.devices) or MAX_DEVICES))
        self.feed.on_device_record(self._seen)
        self._backfill_events()
        self._unsubscribe_events = plug.subscribe_events(self._cloud_event)

    def close(self) -> None:
        self._unsubscribe_events()
        self.feed.close()
        if self._own_steering:
            self.steering.close()

    # -- routing -------------------------------------------------------------------------------

    def _name_of_id(self, device_id: Any) -> str | None:
        if not isinstance(device_id, str):
            return None
        return self.names_by_id.get(device_id, device_id)

    def _route(self, record: TraceRecord) -> tuple[str, bool] | None:
        node = record.node
        if node in self.devices:
            return node, record.kind in _DEVICE_KINDS
        if record.layer == "operator":
            device = record.fields.get("device")
            return (device, True) if isinstance(device, str) and device in self.devices else None
        if node != self.cloud_node:
            return None
        fields = record.fields
        kind = record.kind
        if kind == "session.created":
            self._sessions[fields.get("session_id")] = str(fields.get("device_id"))
            if len(self._sessions) > 10_000:
                self._sessions.pop(next(iter(self._sessions)))
        elif kind == "session.unknown":
            name = self._name_of_id(self._sessions.get(fields.get("session_id")))
            return (name, True) if name is not None else None
        elif kind == "http.request":
            match = _DEVICE_PATH.match(str(fields.get("path", "")))
            name = self._name_of_id(match.group(1).lower()) if match else None
            return (name, True) if name is not None else None
        name = self._name_of_id(fields.get("device_id"))
        if name is None:
            return None
        return name, kind in _CLOUD_KINDS

    def _seen(self, name: str, record: TraceRecord) -> None:
        if record.kind == "device.boot":
            self.transitions.end(name)

    def _backfill_events(self) -> None:
        """The events the trace still holds from before the dashboard came (their data is not
        in the trace: the cloud's event bus carries it, from now on)."""
        for name, records in self.feed.records.items():
            for record in records:
                if record.node == self.cloud_node and record.kind in ("event",
                                                                       "event.to_device"):
                    self.feed.add_extra(name, EventRow(
                        0, record.t_us / 1e6, "up" if record.kind == "event" else "down",
                        str(record.fields.get("name")), "(before the dashboard started)"))

    def _cloud_event(self, event: CloudEvent) -> None:
        name = self._name_of_id(event.device_id)
        if name is None:
            return
        self.feed.add_extra(name, EventRow(
            0, self.testbed.world.clock.now_us / 1e6,
            "down" if event.direction == "device" else "up", event.name,
            views.event_data(event.name, event.data)))

    # -- reading -------------------------------------------------------------------------------

    def _label(self, principal: str | None) -> str | None:
        """``user:<id>`` / ``customer:<id>`` as the account's e-mail address."""
        if not principal:
            return None
        kind, _, ident = principal.partition(":")
        store = self.plug.cloud.store
        if kind == "user":
            user = store.get_user(ident)
            return user.username if user is not None else principal
        if kind == "customer":
            customer = store.get_customer(ident)
            return f"{customer.email} (customer)" if customer is not None else principal
        return principal

    def _product(self, product_id: Any) -> str | None:
        if product_id is None:
            return None
        product = self.plug.cloud.store.get_product(int(product_id))
        return f"{product_id} ({product.slug})" if product is not None else str(product_id)

    def _state(self, name: str) -> dict[str, Any]:
        try:
            return self.steering.state(name)
        except FwSimError as exc:
            raise refused(exc) from None

    def row(self, name: str) -> DeviceRow:
        if name in self.devices:
            state = self._state(name)
            return views.particle_row(state, owner=self._label(state.get("owner")),
                                      product=self._product(state.get("product_id")))
        return self._remote_row(name)

    def _remote_row(self, device_id: str) -> DeviceRow:
        cloud = self.plug.cloud
        record = cloud.store.get_device(device_id) if len(device_id) == 24 else None
        if record is None:
            known = ", ".join(self.devices) or "none here"
            raise ActionError(404, f"unknown device {device_id!r} (devices: {known})")
        session = cloud.endpoint.session_for_device(device_id)
        last = next((r.kind for r in reversed(self.feed.device_records(device_id))
                     if r.kind in ("handshake.full", "session.resumed")), None)
        return DeviceRow(
            name=device_id, device_id=device_id, profile=f"platform {record.platform_id}"
            if record.platform_id is not None else "\u2014",
            firmware="(another process)",
            state="connected" if record.online and session is not None else "offline",
            last_session=None if last is None else (
                "full" if last == "handshake.full" else "resumed"),
            full=session.full_handshakes if session is not None else 0,
            resumed=session.resumes if session is not None else 0, claim_pending=None,
            claim_length=0, claimed=None,
            owner=self._label(str(record.owner) if record.owner else None),
            product=self._product(record.product_id), kind="remote")

    def rows(self) -> list[DeviceRow]:
        rows = [self.row(name) for name in list(self.devices)[:MAX_ROWS]]
        if len(rows) < MAX_ROWS:
            for record in self.plug.cloud.store.list_devices():
                if record.id not in self.names_by_id:
                    rows.append(self._remote_row(record.id))
                    if len(rows) >= MAX_ROWS:
                        break
        return rows

    def panels(self, name: str) -> dict[str, Any]:
        row = self.row(name)
        if name not in self.devices:
            cloud = self.plug.cloud
            session = cloud.endpoint.session_for_device(name)
            record = cloud.store.get_device(name)
            return {"session": [
                ("Cloud session", "none" if session is None else
                 f"{session.full_handshakes} full handshakes, {session.resumes} resumes"),
                ("Online", views.yes_no(record.online if record else None)),
            ], "dct": None, "busy": None, "interface": self.plug.interface_of(name)}
        state = self._state(name)
        device = self.devices[name]
        cloud_session = state.get("cloud_session")
        items = [
            ("Cloud connection", state["cloud"]["state"]),
            ("Network", state["network"]["state"] + (
                f" ({state['network']['ssid']})" if state["network"]["ssid"] else "")),
            ("Listening mode", views.yes_no(state["listening"])),
            ("Last session", row.session),
            ("Session in retained RAM", views.yes_no(state["cloud"]["session_persisted"])),
            ("Cloud's session", "none" if not cloud_session else
             f"{cloud_session['full_handshakes']} full handshakes, "
             f"{cloud_session['resumes']} resumes"),
            ("Online (cloud)", views.yes_no(state.get("online"))),
            ("Uptime", views.uptime_text(state)),
            ("Boots", f"{state.get('boot_count', 0)} (last reset reason "
             f"{state.get('last_reset_reason') or 'unknown'})"),
        ]
        panic = state.get("panic")
        if isinstance(panic, dict):
            items.insert(0, ("Panic", f"{panic['name']} (code {panic['code']}), SOS for "
                             f"{panic['sos_s']:g} s; resets in {panic['resets_in_s']:g} s"))
        raw = device.claim.stored_code()
        claimed = device.dct.read(views.CLAIMED_FIELD.offset, 1)[0]
        return {"session": items, "busy": self.transitions.current(name), "dct": {
            "code": views.dct_dump(raw, views.CLAIM_CODE_FIELD.offset),
            "claimed_offset": f"0x{views.CLAIMED_FIELD.offset:04x}",
            "claimed": views.claimed_byte_text(claimed)},
            "interface": self.plug.interface_of(device.device_id)}

    def reasons(self, name: str) -> list[Reason]:
        row = self.row(name)
        owners: dict[str, str] = {}
        for record in self.feed.device_records(name):
            for key in ("previous_owner", "new_owner", "caller"):
                value = record.fields.get(key)
                if isinstance(value, str) and value not in owners:
                    owners[value] = self._label(value) or value
        return views.particle_reasons(self.feed.device_records(name), name=name,
                                      device_id=row.device_id, owners=owners)

    def log(self, name: str, after: int = 0) -> list[dict[str, Any]]:
        """The device's Device OS log, a separator line at every boot."""
        return [views.log_entry(r) if r.kind == "log" else views.boot_entry(r)
                for r in self.feed.device_records(name)
                if r.kind in ("log", "device.boot") and r.seq > after and r.node == name]

    def events(self, name: str, after: int = 0) -> list[EventRow]:
        return [EventRow(seq, item.t, item.direction, item.name, item.data)
                for seq, item in self.feed.device_extras(name) if seq > after]

    def diagram(self, name: str) -> Diagram:
        self.row(name)
        return device_diagram(self.feed.device_records(name), name)

    def secret(self, name: str) -> str | None:
        if name not in self.devices:
            self.row(name)
            return None
        return self._state(name).get("claim_code")

    # -- acting --------------------------------------------------------------------------------

    def _run(self, operation: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return operation()
        except FwSimError as exc:
            raise refused(exc) from None

    async def act(self, name: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action in ("call", "get"):  # the cloud's: a device of this process or another
            self.row(name)  # 404 for an unknown device
            device = self.devices.get(name)
            return await self._cloud_call(name, device.device_id if device else name, action,
                                          params)
        if name not in self.devices:
            self.row(name)  # 404 for an unknown device
            if action == "key-change":
                return self._key_change_remote(name)
            if action != "drop-session":
                raise ActionError(409, f"{name} runs in another process: only drop-session, "
                                  "key-change, call and get work from here")
            return self._drop_remote(name)
        self.transitions.check(name)
        steering = self.steering
        if action == "power-cycle":
            off_s = _seconds(params, "off_s", default=1.0, minimum=MIN_OFF_S,
                             maximum=MAX_OFF_S)
            result = self._run(lambda: steering.power_cycle(name, off_s))
            self.transitions.start(name, "power-cycle", TRANSITION_TIMEOUT_S + off_s)
        elif action == "reset":
            result = self._run(lambda: steering.reset(name))
            self.transitions.start(name, "reset")
        elif action == "listening":
            active = _flag(params, "active")
            result = self._run(lambda: steering.listening(name, active))
        elif action == "network":
            up = _flag(params, "up")
            result = self._run(lambda: steering.network(name, up))
        elif action == "drop-session":
            reconnect = _flag(params, "reconnect", default=False)
            result = self._run(lambda: steering.drop_session(name))
            if reconnect:
                self._run(lambda: steering.network(name, False))
                self._run(lambda: steering.network(name, True))
            result["reconnect"] = reconnect
        elif action == "key-change":
            result = self._run(lambda: steering.key_change(name))
        elif action == "claim-code":
            result = await self._set_claim_code(name, _text(params, "code",
                                                            max_length=MAX_CLAIM_CODE))
        elif action == "new-claim-code":
            result = self._new_claim_code(name, _text(params, "owner", max_length=254,
                                                      printable=True))
        else:
            raise ActionError(404, f"no action {action!r} for a Particle device")
        self.runtime.wake()
        return result

    async def _cloud_call(self, name: str, device_id: str, action: str,
                          params: dict[str, Any]) -> dict[str, Any]:
        """Call a function (``call``, ``{"name", "arg"}``) or read a variable (``get``,
        ``{"name"}``) of the device through the cloud, as ``fwsim ctl call`` / ``get`` do."""
        target = _text(params, "name", max_length=MAX_FUNCTION_KEY_LENGTH)
        argument = params.get("arg", "") if action == "call" else ""
        if not isinstance(argument, str):
            raise ActionError(400, "arg must be text")
        try:
            argument_size = len(argument.encode("utf-8"))
        except UnicodeEncodeError:
            raise ActionError(400, "arg must be Unicode text (no lone surrogates)") from None
        if argument_size > MAX_FUNCTION_ARG_LENGTH:
            raise ActionError(400, f"arg is too long (at most {MAX_FUNCTION_ARG_LENGTH} bytes)")
        what = "function" if action == "call" else "variable"
        if action == "call":
            result = await self.plug.call_function(device_id, target, argument, self.runtime)
        else:
            result = await self.plug.get_variable(device_id, target, self.runtime)
        if result.outcome == "ok":
            key = "return_value" if action == "call" else "result"
            return {"device": name, "name": target, key: result.value}
        if result.outcome == "not_found":
            raise ActionError(404, f"{name} has no {what} {target!r} (its firmware did not "
                              "register it)")
        if result.outcome == "offline":
            raise ActionError(409, f"{name} is not connected to the cloud")
        raise ActionError(504, f"{name} did not answer {what} {target} (timed out)")

    def _drop_remote(self, device_id: str) -> dict[str, Any]:
        self.steering.operator.tracer.emit("operator.cloud_forget_session", device=device_id)
        dropped = self.plug.forget_session(device_id)
        self.runtime.wake()
        return {"device": device_id, "dropped": dropped}

    def _key_change_remote(self, device_id: str) -> dict[str, Any]:
        self.steering.operator.tracer.emit("operator.cloud_key_change", device=device_id)
        sent = self.plug.send_key_change(device_id)
        self.runtime.wake()
        return {"device": device_id, "sent": sent}

    async def _set_claim_code(self, name: str, code: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, Any]] = loop.create_future()

        def done(result: dict[str, Any]) -> None:
            if not answer.done():
                answer.set_result(result)

        self.transitions.start(name, "setting the claim code", CONTROL_TIMEOUT_S)
        try:
            try:
                self.steering.set_claim_code(name, code, done)
            except FwSimError as exc:
                raise refused(exc) from None
            self.runtime.wake()
            try:
                result = await asyncio.wait_for(answer, CONTROL_TIMEOUT_S)
            except TimeoutError:
                raise ActionError(504, f"{name} did not answer the control request in "
                                  f"{CONTROL_TIMEOUT_S:g} s") from None
        finally:
            self.transitions.end(name, "setting the claim code")
        if result["result"] != 0:
            raise ActionError(409, f"{name} refused SET_CLAIM_CODE: result {result['result']} "
                              f"({views.result_name(result['result'])})")
        return {**result, "stored": True}

    def _new_claim_code(self, name: str, owner: str) -> dict[str, Any]:
        """A claim code for ``owner`` (an e-mail address): a product customer when the device
        is in a product (created if new), a user otherwise (created if new)."""
        import secrets

        from cloud_sim.model import Principal

        if not EMAIL.fullmatch(owner):
            raise ActionError(400, f"owner must be an e-mail address, not {owner!r}")
        cloud = self.plug.cloud
        store = cloud.store
        product_id = self._state(name).get("product_id")
        with store.transaction():
            if product_id is not None:
                customer = store.find_customer(int(product_id), owner) or cloud.create_customer(
                    int(product_id), owner, secrets.token_urlsafe(16))
                principal = Principal.customer(customer.id)
            else:
                user = store.find_user(owner) or cloud.create_user(owner,
                                                                   secrets.token_urlsafe(16))
                principal = Principal.user(user.id)
        code = self.plug.create_claim_code(principal, product_id=product_id)
        return {"device": name, "code": code, "owner": owner, "product_id": product_id}


# -- ThingsBoard ---------------------------------------------------------------------------------


class ThingsBoardBackend:
    """The emulated ThingsBoard and its claim buttons (module header)."""

    cloud = "thingsboard"

    def __init__(self, testbed: Testbed, plug: ThingsBoardPlug, runtime: Runtime) -> None:
        from ..claim_button.device import node_name

        self.testbed = testbed
        self.plug = plug
        self.service = plug.service
        self.runtime = runtime
        self.tenant = plug.demo.tenant.id if plug.demo is not None else None
        self.nodes = {node_name(name): name for name in plug.buttons}
        self.transitions = _Transitions()
        self.feed = Feed(testbed.world.trace, self._route,
                         per_device=per_device_for(max(len(plug.buttons), 10)))

    def close(self) -> None:
        self.feed.close()

    def _route(self, record: TraceRecord) -> tuple[str, bool] | None:
        name = self.nodes.get(record.node)
        if name is not None:
            return name, True
        if record.node == self.service.name and record.kind.startswith(
                ("tb.claim.", "tb.button.")):
            device = record.fields.get("device")
            return (device, True) if isinstance(device, str) else None
        return None

    # -- reading -------------------------------------------------------------------------------

    def _device(self, name: str) -> Any:
        device = self.service.store.find_device(self.tenant, name) if self.tenant else None
        if device is None:
            known = ", ".join(d.name for d in self._devices()[:20]) or "none"
            raise ActionError(404, f"unknown device {name!r} (devices: {known})")
        return device

    def _devices(self) -> list[Any]:
        if self.tenant is None:
            return []
        return list(self.service.store.list_devices(self.tenant))

    def _state(self, name: str) -> str:
        button = self.plug.buttons.get(name)
        if button is None:
            return "remote"
        if not button.powered:
            return "off"
        client = getattr(button.uplink, "client", None)
        state = getattr(client, "state", None)
        return str(state.value) if state is not None else "idle"

    def row(self, name: str) -> DeviceRow:
        return self._row(self._device(name))

    def _row(self, device: Any) -> DeviceRow:
        why = self.service.why(device)
        cached = why.get("cached_claim_data")
        button = self.plug.buttons.get(device.name)
        pending = cached is not None and not cached.get("expired")
        return DeviceRow(
            name=device.name, device_id=device.id,
            profile="esp32-claim-button" if button is not None else device.type,
            firmware=f"claim button ({button.uplink.name})" if button is not None
            else "(another process)", state=self._state(device.name), last_session=None,
            full=0, resumed=0, claim_pending=pending,
            claim_length=len(button.secret or "") if button is not None else 0,
            claimed=why.get("assigned_to") is not None, owner=why.get("assigned_to"),
            product=None, cloud="thingsboard", kind="button")

    def rows(self) -> list[DeviceRow]:
        return [self._row(device) for device in self._devices()[:MAX_ROWS]]

    def panels(self, name: str) -> dict[str, Any]:
        device = self._device(name)
        why = self.service.why(device)
        button = self.plug.buttons.get(name)
        cached = why.get("cached_claim_data")
        session: list[tuple[str, str]] = [
            ("Assigned to", why.get("assigned_to") or "nobody"),
            ("Claiming allowed", {None: "not set (the default applies)", True: "yes",
                                  False: "no"}.get(why["attributes"].get("claimingAllowed"),
                                                   str(why["attributes"].get("claimingAllowed")))),
            ("Claim data (cloud)", "none" if cached is None else
             f"secret {cached['secret']}, " + ("expired" if cached["expired"] else
                                               f"expires at {cached['expiration_time']} ms")),
        ]
        qr = None
        if button is not None:
            session[:0] = [("Powered", views.yes_no(button.powered)),
                           ("Uplink", f"{button.uplink.name} ({self._state(name)})"),
                           ("Claim messages", f"{button.sent} sent, {button.acked} acknowledged,"
                            f" {button.failed} failed"),
                           ("Secret valid for", f"{button.config.duration_ms / 1000:g} s")]
            if button.secret is not None:
                qr = _qr_svg(name, button.secret)
        return {"session": session, "dct": None, "qr": qr, "busy": None,
                "button": button is not None,
                "secret_length": len(button.secret) if button and button.secret else 0}

    def reasons(self, name: str) -> list[Reason]:
        return views.thingsboard_reasons(self.service.why(self._device(name))["history"],
                                         self.service.epoch_ms)

    def log(self, name: str, after: int = 0) -> list[dict[str, Any]]:
        return [views.button_log_entry(r) for r in self.feed.device_records(name)
                if r.seq > after and r.node in self.nodes]

    def events(self, name: str, after: int = 0) -> list[EventRow]:
        rows = []
        for record in self.feed.device_records(name):
            if record.seq <= after:
                continue
            f, kind = record.fields, record.kind
            if kind == "claim.sent":
                rows.append(EventRow(record.seq, record.t_us / 1e6, "up", "v1/devices/me/claim",
                                     f"{f.get('size')} bytes over {f.get('uplink')}"))
            elif kind in ("claim.acked", "claim.failed"):
                rows.append(EventRow(record.seq, record.t_us / 1e6, "down", kind,
                                     str(f.get("detail"))))
            elif kind == "tb.claim.register":
                rows.append(EventRow(record.seq, record.t_us / 1e6, "up", "claim info",
                                     f"{f.get('outcome')} ({f.get('reason')})"))
            elif kind == "tb.claim.customer":
                rows.append(EventRow(record.seq, record.t_us / 1e6, "up", "customer claim",
                                     f"{f.get('user')}: {f.get('response')} "
                                     f"({f.get('reason')})"))
        return rows

    def diagram(self, name: str) -> Diagram:
        from ..claim_button.device import node_name

        self._device(name)
        return button_diagram(self.feed.device_records(name), name, node_name(name),
                              self.service.name)

    def secret(self, name: str) -> str | None:
        self._device(name)
        button = self.plug.buttons.get(name)
        return button.secret if button is not None else None

    # -- acting --------------------------------------------------------------------------------

    async def act(self, name: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        from cloud_sim.thingsboard.errors import TbError

        self._device(name)
        self.transitions.check(name)
        try:
            if action == "press":
                if name not in self.plug.buttons:
                    raise ActionError(409, f"{name} has no simulated claim button")
                self.service.press(name)
                result: dict[str, Any] = {"device": name, "pressed": True}
            elif action == "claim":
                letter = _text(params, "customer", max_length=1, printable=True).upper()
                secret = _text(params, "secret", max_length=255, required=False)
                try:
                    user = self.plug.customer_user(letter)
                except UsageError as exc:
                    raise ActionError(400, str(exc)) from None
                outcome = self.service.claim_device(user, name, secret)
                result = {"device": name, "customer": f"Customer {letter}",
                          "response": outcome.response.value, "reason": outcome.reason.value,
                          "message": outcome.message}
            elif action == "reclaim":
                from cloud_sim.thingsboard.demo import TENANT_ADMIN

                reclaim = self.service.reclaim_device(self.plug.user(TENANT_ADMIN[0]), name)
                result = {"device": name, "reason": reclaim.reason.value}
            else:
                raise ActionError(404, f"no action {action!r} for a ThingsBoard device")
        except TbError as exc:
            raise ActionError(exc.status if 400 <= exc.status < 500 else 409,
                              exc.message) from None
        except FwSimError as exc:
            raise refused(exc) from None
        self.runtime.wake()
        return result


def _qr_svg(name: str, secret: str) -> str:
    """The QR code the button shows (what the claim widget takes), as inline SVG."""
    import segno

    from ..claim_button.device import qr_payload

    code = segno.make(qr_payload(name, secret), error="m")
    svg: str = code.svg_inline(scale=4, border=2, title=f"QR code of {name}'s claim secret")
    return svg


__all__ = ["CONTROL_TIMEOUT_S", "ActionError", "Backend", "ParticleBackend",
           "ThingsBoardBackend", "refused"]
