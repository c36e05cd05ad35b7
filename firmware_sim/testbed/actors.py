"""Actors: the people and machines around a device, as typed objects on the world clock.

* :class:`Phone` - a setup app provisioning a device step by step (set a claim code, join a
  network, enter/leave listening mode) through a *carrier*: ``control`` (encoded control
  requests handed to the device's dispatcher, the bytes USB/BLE carry without their framing),
  ``usb`` (an in-process USB host, as particle-usb talks), ``ble`` (a BLE central with the
  EC-JPAKE handshake, as the Particle app talks), ``serial`` (the listening-mode console's
  ``C`` and ``w`` dialogs, as a terminal or particle-cli talks), ``softap`` / ``softap-http``
  (a Photon's SoftAP commands over TCP or HTTP, as @particle/softap-setup talks;
  ``softap_carrier.py``), or ``direct`` (calls the system layer; for tests of the layers
  below). :data:`CARRIERS` lists them; :func:`carrier` loads
  one lazily.
* :class:`Customer` - an app server or a customer's app calling the cloud's REST API.
* :class:`Operator` - the person at the bench (and the weather): power cuts (also at a chosen
  step of a DCT write), resets, listening mode, Wi-Fi going out of range or forgotten, cloud
  disconnects, and - through a :class:`CloudControl` (the testbed's cloud plug) - the cloud
  forgetting a session, the cloud restarting, loss bursts and latency changes on a device's link.

Each actor writes its steps to the trace under its own node name, so a timeline shows who did
what and when.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from control_requests.dispatcher import RequestHandle
from control_requests.requests import Call
from control_requests.steps import Done, ProvisioningSteps

from ..hal.dct import Dct
from ..kernel.errors import ConfigurationError, PowerCut, ResultCode
from ..kernel.world import World
from ..system.device import Device
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint, radio_environment


class ApiClient(Protocol):
    """A client of a cloud's REST API: ``(status, parsed JSON body)`` per request."""

    def request(self, method: str, path: str, *, token: str | None = None,
                json: Any = None, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]: ...

    def close(self) -> None: ...


class Provisioning(Protocol):
    """What a phone can ask of a device, whatever carries it."""

    def set_claim_code(self, code: str, done: Done) -> None: ...
    def join_new_network(self, ssid: str, password: str, done: Done) -> None: ...
    def start_listening(self, done: Done) -> None: ...
    def stop_listening(self, done: Done) -> None: ...


ProvisioningFactory = Callable[[Device], Provisioning]


class DirectProvisioning:
    """Calls the system layer directly (no control-request encoding)."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def set_claim_code(self, code: str, done: Done) -> None:
        done(self.device.claim.set_claim_code(code.encode()))

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        self.device.network.join_new_network(WifiCredentials(ssid, password), done)

    def start_listening(self, done: Done) -> None:
        self.device.listening.enter()
        done(0)

    def stop_listening(self, done: Done) -> None:
        self.device.listening.exit()
        done(0)


class ControlRequestProvisioning(ProvisioningSteps):
    """Each step is an encoded control request handed to the device's dispatcher; its result
    is the request's ``system_error_t``."""

    def __init__(self, device: Device, channel: str = "direct") -> None:
        self.device = device
        self.channel = channel

    def call(self, call: Call[None], done: Done) -> None:
        request = call.request
        holder: list[RequestHandle] = []

        def completed(result: int, reply: bytes) -> None:
            done(result)
            if holder:
                holder[0].reply_delivered()

        holder.append(self.device.control.submit(self.channel, request.type, request.payload,
                                                 completed))


#: carrier name -> "module:factory" (a factory takes the device, returns a Provisioning)
CARRIERS: dict[str, str] = {
    "control": "firmware_sim.testbed.actors:ControlRequestProvisioning",
    "direct": "firmware_sim.testbed.actors:DirectProvisioning",
    "usb": "transports.usb.provisioning:UsbProvisioning",
    "ble": "firmware_sim.testbed.actors:_ble_carrier",
    "serial": "firmware_sim.testbed.actors:SerialConsoleProvisioning",
    "softap": "firmware_sim.testbed.softap_carrier:SoftApProvisioning",
    "softap-http": "firmware_sim.testbed.softap_carrier:softap_http_provisioning",
}


def _ble_carrier(device: Device) -> Provisioning:
    from transports.ble.provisioning import ble_provisioning

    from .adapters import surface_for

    phone: Provisioning = ble_provisioning()(surface_for(device))
    return phone


class SerialConsoleProvisioning:
    """Provisioning through the listening-mode serial console, as a person at a terminal (or
    particle-cli's ``serial wifi``) would: ``C`` and the 63-character code for a claim code,
    the ``w`` dialog (SSID, security, cipher, password) for Wi-Fi, ``x`` to leave listening
    mode. Each step answers the console's prompts as they appear; its result is 0 when the
    console confirmed, ``INVALID_STATE`` when the device is not in listening mode (nobody reads
    the console then), ``NOT_SUPPORTED`` for entering listening mode (the console cannot)."""

    def __init__(self, device: Device) -> None:
        from transports.serial.device_port import attach_console

        self.device = device
        self.port = attach_console(device)

    def _dialog(self, first: bytes, answers: list[tuple[bytes, bytes]],
                outcomes: dict[bytes, int], done: Done) -> None:
        if not self.device.running or not self.device.listening.active:
            done(int(ResultCode.INVALID_STATE))
            return
        seen = bytearray()
        pending = list(answers)
        finished: list[bool] = []

        def output(data: bytes) -> None:
            if finished:
                return
            seen.extend(data)
            while pending and pending[0][0] in seen:
                prompt, reply = pending.pop(0)
                del seen[:seen.index(prompt) + len(prompt)]
                self.port.write(reply)
            for marker, result in outcomes.items():
                if not pending and marker in seen:
                    finished.append(True)
                    unsubscribe()
                    done(result)
                    return

        unsubscribe = self.port.subscribe(output)
        self.port.write(first)

    def set_claim_code(self, code: str, done: Done) -> None:
        self._dialog(b"C", [(b"Enter 63-digit claim code: ", code.encode() + b"\r")],
                     {b"Claim code set to: ": 0,
                      b"claim code is not 63 characters long": int(ResultCode.INVALID_ARGUMENT)},
                     done)

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        self._dialog(b"w", [(b"SSID: ", ssid.encode() + b"\r")],
                     {b"Particle <3 you!": 0, b"couldn't save": int(ResultCode.INTERNAL)},
                     lambda result: done(result))
        # the security, cipher and password prompts depend on the scan: answered as they come
        self._answer_while_open({b"Security 0=unsecured": b"3\r",
                                 b"Security Cipher": b"1\r",
                                 b"Password: ": password.encode() + b"\r"})

    def _answer_while_open(self, prompts: dict[bytes, bytes]) -> None:
        seen = bytearray()

        def output(data: bytes) -> None:
            seen.extend(data)
            for prompt, reply in prompts.items():
                if prompt in seen:
                    del seen[:seen.index(prompt) + len(prompt)]
                    self.port.write(reply)
            if b"Particle <3 you!" in seen or b"couldn't save" in seen:
                unsubscribe()

        unsubscribe = self.port.subscribe(output)

    def start_listening(self, done: Done) -> None:
        done(int(ResultCode.NOT_SUPPORTED))

    def stop_listening(self, done: Done) -> None:
        if not self.device.running or not self.device.listening.active:
            done(int(ResultCode.INVALID_STATE))
            return
        self.port.write(b"x")
        self.device.world.call_soon(lambda: done(0), label="serial-stop-listening")


def carrier(name: str) -> ProvisioningFactory:
    """The provisioning factory of carrier ``name`` (see :data:`CARRIERS`)."""
    target = CARRIERS.get(name)
    if target is None:
        raise ConfigurationError(f"unknown provisioning carrier {name!r} "
                                 f"(known: {', '.join(CARRIERS)})")
    module_name, _, attr = target.partition(":")
    factory: ProvisioningFactory = getattr(importlib.import_module(module_name), attr)
    return factory


@dataclass
class Step:
    label: str
    action: Callable[[Done], None]


class Phone:
    """Runs provisioning steps one after the other, each after a short "user think time", and
    records each result in the trace (node ``phone``, layer ``app``)."""

    def __init__(self, world: World, backend: Provisioning, name: str = "phone",
                 think_time_s: float = 1.5) -> None:
        self.world = world
        self.backend = backend
        self.tracer = world.trace.bind(name, "app")
        self.think_time_s = think_time_s
        self.results: list[tuple[str, int]] = []
        self._steps: list[Step] = []
        self.finished = False

    def set_claim_code(self, code: str) -> Phone:
        self._steps.append(Step("set_claim_code",
                                lambda done: self.backend.set_claim_code(code, done)))
        return self

    def join_new_network(self, ssid: str, password: str) -> Phone:
        self._steps.append(Step(f"join_new_network {ssid}",
                                lambda done: self.backend.join_new_network(ssid, password, done)))
        return self

    def start_listening(self) -> Phone:
        self._steps.append(Step("start_listening", self.backend.start_listening))
        return self

    def stop_listening(self) -> Phone:
        self._steps.append(Step("stop_listening", self.backend.stop_listening))
        return self

    def run(self, start_in_s: float = 0.0) -> None:
        self.world.scheduler.call_later(start_in_s, self._next, label="phone")

    @property
    def all_ok(self) -> bool:
        return self.finished and all(result == 0 for _, result in self.results)

    def _next(self) -> None:
        if not self._steps:
            self.finished = True
            self.tracer.emit("phone.done", results=self.results)
            return
        step = self._steps.pop(0)
        self.tracer.emit("phone.step", step=step.label)

        def done(result: int) -> None:
            self.results.append((step.label, result))
            self.tracer.emit("phone.result", step=step.label, result=result)
            self.world.scheduler.call_later(self.think_time_s, self._next, label="phone")

        step.action(done)


class Customer:
    """Someone calling the cloud's REST API (an app server, a customer's app), with a token.

    ``api`` is any client with the ``request(method, path, token=..., json=..., form=...)`` shape
    (in process: the plug's ``api()``; across processes: an HTTP client)."""

    def __init__(self, world: World, api: ApiClient, name: str = "customer",
                 token: str | None = None) -> None:
        self.world = world
        self.api = api
        self.name = name
        self.token = token
        self.tracer = world.trace.bind(name, "app")

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("token", self.token)
        status, body = self.api.request(method, path, **kwargs)
        self.tracer.emit("api.call", method=method, path=path, status=status)
        return status, body

    def claim(self, device_id: str, *, request_transfer: bool = False) -> tuple[int, Any]:
        return self.request("POST", "/v1/devices",
                            json={"id": device_id, "request_transfer": request_transfer})

    def new_claim_code(self, product: str | int | None = None) -> tuple[int, Any]:
        path = (f"/v1/products/{product}/device_claims" if product is not None
                else "/v1/device_claims")
        return self.request("POST", path, json={})

    def devices(self) -> tuple[int, Any]:
        return self.request("GET", "/v1/devices")


class CloudControl(Protocol):
    """What the operator can do to a cloud (the Particle plug implements it)."""

    def forget_session(self, device_id: str) -> bool: ...

    def send_key_change(self, device_id: str) -> bool: ...

    def restart(self) -> int: ...

    def set_link_conditions(self, device_name: str, *, loss: float | None = None,
                            latency_s: float | None = None) -> None: ...

    def link_conditions(self, device_name: str) -> tuple[float, float]: ...


#: The steps of a DCT write a power cut can hit (``hal/dct.py``; ``modify:N`` for byte N).
DCT_WRITE_STEPS = ("begin", "modify:N", "commit", "done")


class Operator:
    """The person at the bench (and the weather): things that happen *to* devices."""

    def __init__(self, world: World, name: str = "operator") -> None:
        self.world = world
        self.tracer = world.trace.bind(name, "operator")
        self._out_of_range: dict[str, AccessPoint] = {}
        self._link_restore: dict[str, tuple[float, float]] = {}
        self._armed_cuts: dict[str, Callable[[str], None]] = {}
        #: names of devices whose power was cut inside a DCT write, not yet restored
        self.power_cuts: list[str] = []

    def power_cut(self, device: Device, off_s: float = 1.0) -> None:
        """Cut the power (retained RAM and the session are lost) and restore it ``off_s``
        later."""
        self.tracer.emit("operator.power_cut", device=device.name, off_s=off_s)
        device.power_cycle(off_s)

    def reset(self, device: Device, reason: str = "user") -> None:
        """``reason`` ``user``: as ``System.reset()``; ``pin_reset``: the RESET button."""
        if reason == "user":
            self.tracer.emit("operator.reset", device=device.name)
        else:
            self.tracer.emit("operator.reset", device=device.name, reason=reason)
        device.reset(reason)

    def listening(self, device: Device, active: bool) -> None:
        self.tracer.emit("operator.listening", device=device.name, active=active)
        if active:
            device.listening.enter()
        else:
            device.listening.exit()

    def network_out_of_range(self, ssid: str) -> None:
        """The access point disappears from the radio environment."""
        radio = radio_environment(self.world)
        access_point = radio.find(ssid)
        if access_point is None:
            raise ConfigurationError(f"no access point {ssid!r} in range")
        self._out_of_range[ssid] = access_point
        self.tracer.emit("operator.network_lost", ssid=ssid)
        radio.remove(ssid)

    def network_back(self, ssid: str) -> None:
        access_point = self._out_of_range.pop(ssid, None)
        if access_point is None:
            raise ConfigurationError(f"access point {ssid!r} was not taken out of range")
        self.tracer.emit("operator.network_back", ssid=ssid)
        radio_environment(self.world).add(access_point)

    def disconnect(self, device: Device, *, clear_session: bool = False) -> None:
        self.tracer.emit("operator.cloud_disconnect", device=device.name,
                         clear_session=clear_session)
        device.cloud_disconnect(clear_session=clear_session)

    def connect(self, device: Device) -> None:
        self.tracer.emit("operator.cloud_connect", device=device.name)
        device.cloud_connect()

    def network_cut(self, device: Device) -> None:
        """The device loses its network (it leaves its access point and stays off it until
        :meth:`network_restore`); the cloud connection drops with it."""
        self.tracer.emit("operator.network_cut", device=device.name)
        device.network.disconnect()

    def network_restore(self, device: Device) -> None:
        """The device's network is back: it joins again and reconnects to the cloud."""
        self.tracer.emit("operator.network_restore", device=device.name)
        device.network.connect()
        device.cloud_connect()

    def publish(self, device: Device, name: str, data: str = "", *,
                private: bool = True) -> bool:
        """The device's application publishes an event (``Particle.publish``); False when it
        was not sent (not connected, a handshake in progress, a bad name)."""
        self.tracer.emit("operator.publish", device=device.name, event=name, private=private)
        return device.app_publish(name, data, private=private, ttl=60)

    def clear_credentials(self, device: Device) -> None:
        """Forget every Wi-Fi network the device knows (``WiFi.clearCredentials()``)."""
        self.tracer.emit("operator.clear_credentials", device=device.name)
        device.network.clear_credentials()

    # -- power cut inside a DCT write ----------------------------------------------------------

    def arm_dct_power_cut(self, device: Device, step: str) -> None:
        """Cut the power when the device's next DCT write reaches ``step`` (``begin``,
        ``modify:N``, ``commit``, ``done``; see ``hal/dct.py``). The cut raises
        :class:`~firmware_sim.kernel.errors.PowerCut` out of the running world; whoever runs the
        world catches it and calls :meth:`power_lost`."""
        self.tracer.emit("operator.dct_power_cut_armed", device=device.name, step=step)
        dct = device.dct
        previous = self._armed_cuts.pop(device.name, None) or dct.fault_hook
        self._armed_cuts[device.name] = previous

        def hook(reached: str) -> None:
            previous(reached)
            if reached == step:
                dct.fault_hook = previous
                self._armed_cuts.pop(device.name, None)
                self.cut_in_dct_write(device, step)

        dct.fault_hook = hook

    def cut_in_dct_write(self, device: Device, step: str, fault: str | None = None) -> None:
        """Cut the power now, inside a DCT write at ``step``: raises
        :class:`~firmware_sim.kernel.errors.PowerCut` (call :meth:`power_lost` after it)."""
        self.power_cuts.append(device.name)
        self.tracer.emit("operator.dct_power_cut", device=device.name, step=step,
                         **({"fault": fault} if fault else {}))
        raise PowerCut(f"power cut at DCT write step {step}")

    def disarm_dct_power_cut(self, device: Device) -> bool:
        """Forget an armed DCT power cut that has not happened; True if one was armed."""
        previous = self._armed_cuts.pop(device.name, None)
        if previous is None:
            return False
        device.dct.fault_hook = previous
        return True

    def power_lost(self, device: Device, off_s: float = 1.0) -> None:
        """After a :class:`PowerCut` escaped a DCT write: the flash is re-read from its backend
        (as the device would at boot), RAM and retained RAM are lost, power returns ``off_s``
        later."""
        if device.name in self.power_cuts:
            self.power_cuts.remove(device.name)
        old = device.dct
        dct = Dct(old.backend, fault_hook=old.fault_hook)
        device.dct = dct
        # Every part of the device that holds the DCT re-reads it (the HALs, the server
        # settings): the device model has no "reopen flash" call yet, so look for the old one.
        for part in list(vars(device).values()):
            for attr in ("dct", "_dct"):
                if getattr(part, attr, None) is old:
                    setattr(part, attr, dct)
        self.tracer.emit("operator.power_lost", device=device.name, off_s=off_s)
        device.power_cycle(off_s)

    # -- the cloud and the link ----------------------------------------------------------------

    def cloud_forget_session(self, cloud: CloudControl, device: Device) -> bool:
        self.tracer.emit("operator.cloud_forget_session", device=device.name)
        return cloud.forget_session(device.device_id)

    def cloud_key_change(self, cloud: CloudControl, device: Device) -> bool:
        """The cloud sends the device a key change: it discards its session and reconnects
        with a full handshake (``DeviceEndpoint.send_key_change``)."""
        self.tracer.emit("operator.cloud_key_change", device=device.name)
        return cloud.send_key_change(device.device_id)

    def cloud_restart(self, cloud: CloudControl) -> int:
        self.tracer.emit("operator.cloud_restart")
        return cloud.restart()

    def link_conditions(self, cloud: CloudControl, device: Device, *,
                        loss: float | None = None, latency_s: float | None = None) -> None:
        """Set the loss and/or latency of the device's link to its cloud from now on."""
        self.tracer.emit("operator.link_conditions", device=device.name, loss=loss,
                         latency_s=latency_s)
        cloud.set_link_conditions(device.name, loss=loss, latency_s=latency_s)

    def loss_burst(self, cloud: CloudControl, device: Device, loss: float) -> None:
        """Start a loss burst (:meth:`end_loss_burst` ends it, restoring the loss before)."""
        if device.name not in self._link_restore:
            self._link_restore[device.name] = cloud.link_conditions(device.name)
        self.tracer.emit("operator.loss_burst", device=device.name, loss=loss)
        cloud.set_link_conditions(device.name, loss=loss)

    def end_loss_burst(self, cloud: CloudControl, device: Device) -> None:
        restore = self._link_restore.pop(device.name, None)
        if restore is None:
            return
        self.tracer.emit("operator.loss_burst_end", device=device.name, loss=restore[0])
        cloud.set_link_conditions(device.name, loss=restore[0])


__all__ = ["CARRIERS", "DCT_WRITE_STEPS", "ApiClient", "CloudControl",
           "ControlRequestProvisioning", "Customer", "DirectProvisioning", "Operator", "Phone",
           "Provisioning", "ProvisioningFactory", "SerialConsoleProvisioning", "Step",
           "carrier"]
