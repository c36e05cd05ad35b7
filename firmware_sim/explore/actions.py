"""The explorer's vocabulary: what the actors around a device can do, each with a precondition.

An :class:`ActionDef` has a name (``actor.verb``), a one-line summary, parameter menus (the
values the explorer picks from; the first is the simplest, which the shrinker prefers; a
scenario's ``[explore.params]`` may replace a menu), a precondition ``ready(ctx)`` checked when
the action is due (an action that is not ready is skipped, and a replay records the skip), and
``apply(ctx, step)``. Parameters whose menu depends on the world (the networks in range) give a
function instead of a tuple.

Actions are grouped by the cloud they need (``ActionDef.cloud``): these are ``particle``'s;
``thingsboard_actions`` adds ThingsBoard's (button press, customer claim and reclaim, cache
expiry and eviction) to the same registry with ``cloud="thingsboard"``, and the explorer offers
only the actions of the world's cloud (docs/explore.md, "Adding actions").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..kernel.errors import ConfigurationError
from ..system.device import Device
from ..system.events import CloudStatus, NetworkCredentials, SystemEvent
from ..system.radio import radio_environment
from ..testbed import Phone, carrier
from ..testbed.clouds.particle import ParticlePlug
from .context import RunContext
from .model import ACTION_PARAMS, ParamValue, Step

Menu = tuple[ParamValue, ...] | Callable[[RunContext], tuple[ParamValue, ...]]

NEW_OWNER = "new-owner@example.com"
OTHER_OWNER = "someone-else@example.com"
SESSION_END = "spark/device/session/end"


@dataclass(frozen=True)
class ActionDef:
    name: str
    summary: str
    ready: Callable[[RunContext], bool]
    apply: Callable[[RunContext, Step], None]
    params: Mapping[str, Menu] = field(default_factory=dict)
    cloud: str | None = "particle"
    #: parameters a step may give besides those with a menu (a scenario file's step with any
    #: other parameter is an error); ``device``/``button`` (which one, in a world of several)
    #: are always allowed
    extra_params: tuple[str, ...] = ()

    def allowed_params(self) -> list[str]:
        """The parameter names a step of this action may give, sorted."""
        return sorted({*self.params, *self.extra_params, *ALWAYS_ALLOWED_PARAMS})

    def menus(self, ctx: RunContext, overrides: Mapping[str, Sequence[ParamValue]] | None
              ) -> dict[str, tuple[ParamValue, ...]]:
        """The parameter menus in this state (overrides replace the defaults)."""
        out: dict[str, tuple[ParamValue, ...]] = {}
        for name, menu in self.params.items():
            if overrides and name in overrides:
                out[name] = tuple(overrides[name])
            else:
                out[name] = menu(ctx) if callable(menu) else menu
        return out


ACTIONS: dict[str, ActionDef] = {}

#: step parameters every action accepts: which device / claim button it acts on
ALWAYS_ALLOWED_PARAMS = ("button", "device")


def register(action: ActionDef) -> ActionDef:
    """Add an action to the vocabulary (a plug or a user module may add its own)."""
    if action.name in ACTIONS:
        raise ConfigurationError(f"action {action.name!r} is already registered")
    ACTIONS[action.name] = action
    ACTION_PARAMS[action.name] = tuple(action.allowed_params())
    return action


def get_action(name: str) -> ActionDef:
    action = ACTIONS.get(name)
    if action is None:
        raise ConfigurationError(f"unknown action {name!r} (known: {', '.join(sorted(ACTIONS))})")
    return action


def _device(ctx: RunContext, step: Step) -> Device:
    name = step.param("device")
    return ctx.device_named(str(name) if name is not None else None)


def _running(ctx: RunContext) -> bool:
    return ctx.device.running


def _text(step: Step, name: str, default: str) -> str:
    value = step.param(name, default)
    return str(value)


def _flag(step: Step, name: str) -> bool:
    value = step.param(name, False)
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _number(step: Step, name: str, default: float) -> float:
    value = step.param(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{step.action}: {name} must be a number, not {value!r}")
    return float(value)


def _networks(ctx: RunContext) -> tuple[ParamValue, ...]:
    return tuple(ap.ssid for ap in ctx.scenario.world.access_points)


def _password(ctx: RunContext, ssid: str) -> str:
    if ssid not in ctx.passwords:
        raise ConfigurationError(f"network {ssid!r} is not one of the world's access points")
    return ctx.passwords[ssid] or ""


# -- the phone -------------------------------------------------------------------------------------


def _phone(ctx: RunContext, device: Device, step: Step) -> Phone:
    via = _text(step, "via", "control")
    phone = Phone(ctx.world, carrier(via)(device))
    ctx.phones[device.name] = (phone, device.boot_count)
    return phone


def _new_code(ctx: RunContext, step: Step) -> str:
    cloud = ctx.particle
    if cloud is None:
        raise ConfigurationError(f"{step.action} needs the particle cloud")
    code = cloud.create_claim_code(cloud.user(_text(step, "owner", NEW_OWNER)), ttl_s=3600)
    ctx.codes_set.append(code)
    return code


def _phone_ready(ctx: RunContext) -> bool:
    return ctx.device.running and ctx.phone_idle(ctx.device)


def _provision(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    code = _new_code(ctx, step)
    ssid = _text(step, "network", "NewNet")
    ctx.record_step(step, code=code)
    phone = _phone(ctx, device, step)
    phone.set_claim_code(code).join_new_network(ssid, _password(ctx, ssid))
    if device.listening.active:
        phone.stop_listening()
    phone.run()


def _set_claim_code(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    code = _new_code(ctx, step)
    ctx.record_step(step, code=code)
    _phone(ctx, device, step).set_claim_code(code).run()


def _join_network(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    ssid = _text(step, "network", "NewNet")
    ctx.record_step(step)
    _phone(ctx, device, step).join_new_network(ssid, _password(ctx, ssid)).run()


def _phone_listening(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    ctx.record_step(step)
    phone = _phone(ctx, device, step)
    (phone.start_listening() if _flag(step, "active") else phone.stop_listening()).run()


# -- the operator ----------------------------------------------------------------------------------


def _disconnect(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.disconnect(_device(ctx, step), clear_session=_flag(step, "clear_session"))


def _connect(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.connect(_device(ctx, step))


def _reset(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.reset(_device(ctx, step))


def _power_cut(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.power_cut(_device(ctx, step), _number(step, "off_s", 1.0))


def _dct_power_cut(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    ctx.record_step(step)
    ctx.operator.arm_dct_power_cut(device, _text(step, "step", "modify:31"))


def _operator_listening(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.listening(_device(ctx, step), _flag(step, "active"))


def _out_of_range(ctx: RunContext, step: Step) -> None:
    ssid = _text(step, "network", "HomeNet")
    if radio_environment(ctx.world).find(ssid) is None:
        ctx.record_step(step, skipped="not in range")
        return
    ctx.record_step(step)
    ctx.operator.network_out_of_range(ssid)


def _back_in_range(ctx: RunContext, step: Step) -> None:
    ssid = _text(step, "network", "HomeNet")
    if radio_environment(ctx.world).find(ssid) is not None:
        ctx.record_step(step, skipped="already in range")
        return
    ctx.record_step(step)
    ctx.operator.network_back(ssid)


def _out_of_range_menu(ctx: RunContext) -> tuple[ParamValue, ...]:
    return tuple(ctx.in_range())


def _back_menu(ctx: RunContext) -> tuple[ParamValue, ...]:
    present = set(ctx.in_range())
    return tuple(ssid for ssid in ctx.passwords if ssid not in present)


def _clear_credentials(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.clear_credentials(_device(ctx, step))


def _loss_burst(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    cloud = _particle(ctx, step)
    ctx.record_step(step)
    ctx.operator.loss_burst(cloud, device, _number(step, "loss", 1.0))
    ctx.later(_number(step, "seconds", 5.0),
              lambda: ctx.operator.end_loss_burst(cloud, device))


def _latency(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.link_conditions(_particle(ctx, step), _device(ctx, step),
                                 latency_s=_number(step, "latency_s", 0.09))


# -- the cloud -------------------------------------------------------------------------------------


def _particle(ctx: RunContext, step: Step) -> ParticlePlug:
    cloud = ctx.particle
    if cloud is None:
        raise ConfigurationError(f"{step.action} needs the particle cloud")
    return cloud


def _has_particle(ctx: RunContext) -> bool:
    return ctx.particle is not None


def _forget_session(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.cloud_forget_session(_particle(ctx, step), _device(ctx, step))


def _key_change(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.cloud_key_change(_particle(ctx, step), _device(ctx, step))


def _cloud_restart(ctx: RunContext, step: Step) -> None:
    ctx.record_step(step)
    ctx.operator.cloud_restart(_particle(ctx, step))


def _customer_claim(ctx: RunContext, step: Step) -> None:
    cloud = _particle(ctx, step)
    device = _device(ctx, step)
    who = _text(step, "who", NEW_OWNER)
    outcome = cloud.api_claim(cloud.user(who), device.device_id,
                              request_transfer=_flag(step, "request_transfer"))
    ctx.record_step(step, outcome=outcome)


# -- the application -------------------------------------------------------------------------------

#: ``event:param`` names of the system events ``app.publish_on`` can wait for
HOOK_EVENTS: dict[str, tuple[SystemEvent, int]] = {
    "network_credentials:added": (SystemEvent.NETWORK_CREDENTIALS, NetworkCredentials.ADDED),
    "cloud_status:connecting": (SystemEvent.CLOUD_STATUS, CloudStatus.CONNECTING),
    "cloud_status:handshake": (SystemEvent.CLOUD_STATUS, CloudStatus.HANDSHAKE),
    "cloud_status:session_resume": (SystemEvent.CLOUD_STATUS, CloudStatus.SESSION_RESUME),
    "cloud_status:connected": (SystemEvent.CLOUD_STATUS, CloudStatus.CONNECTED),
    "cloud_status:disconnected": (SystemEvent.CLOUD_STATUS, CloudStatus.DISCONNECTED),
}


def _publish(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    ctx.record_step(step)
    device.particle.publish(_text(step, "name", SESSION_END), "", private=True)


def _publish_on(ctx: RunContext, step: Step) -> None:
    device = _device(ctx, step)
    event_name = _text(step, "event", "cloud_status:connected")
    if event_name not in HOOK_EVENTS:
        raise ConfigurationError(f"app.publish_on: unknown event {event_name!r} (known: "
                                 f"{', '.join(HOOK_EVENTS)})")
    event, param = HOOK_EVENTS[event_name]
    name = _text(step, "name", SESSION_END)
    ctx.record_step(step)
    boot = device.boot_count
    unsubscribe: list[Callable[[], None]] = []

    def handler(fired: SystemEvent, value: int) -> None:
        if value != param or not unsubscribe or device.boot_count != boot:
            return
        unsubscribe.pop()()
        sent = device.particle.publish(name, "", private=True)
        ctx.tracer.emit("explore.hook", event=event_name, published=name, sent=sent)

    unsubscribe.append(device.events.subscribe(event, handler))


def _app_ready(ctx: RunContext) -> bool:
    return ctx.device.running and ctx.device.firmware is not None


# -- the vocabulary --------------------------------------------------------------------------------

def _always(ctx: RunContext) -> bool:
    return True


for _action in (
    ActionDef("phone.provision", "the phone sets a new owner's claim code, then joins a network "
              "(and leaves listening mode): the Particle setup flow", _phone_ready, _provision,
              {"via": ("control",), "network": _networks, "owner": (NEW_OWNER,)}),
    ActionDef("phone.set_claim_code", "the phone sets a new owner's claim code only",
              _phone_ready, _set_claim_code, {"via": ("control",), "owner": (NEW_OWNER,)}),
    ActionDef("phone.join_network", "the phone joins the device to a network",
              _phone_ready, _join_network, {"via": ("control",), "network": _networks}),
    ActionDef("phone.listening", "the phone starts or stops listening mode", _phone_ready,
              _phone_listening, {"via": ("control",), "active": (True, False)}),
    ActionDef("operator.disconnect", "Particle.disconnect(), with or without clearSession",
              lambda ctx: ctx.device.running and ctx.device.cloud.want_connected, _disconnect,
              {"clear_session": (False, True)}),
    ActionDef("operator.connect", "Particle.connect()",
              lambda ctx: ctx.device.running and not ctx.device.cloud.want_connected, _connect),
    ActionDef("operator.reset", "software reset (the persisted session survives)", _running,
              _reset),
    ActionDef("operator.power_cut", "power cut: RAM and the session are lost", _running,
              _power_cut, {"off_s": (1.0, 5.0)}),
    ActionDef("operator.dct_power_cut", "power is cut when the next DCT write reaches a step",
              _running, _dct_power_cut,
              {"step": ("modify:31", "begin", "modify:0", "modify:62", "commit", "done")}),
    ActionDef("operator.listening", "the SETUP button: enter or leave listening mode",
              _running, _operator_listening, {"active": (True, False)}),
    ActionDef("operator.network_out_of_range", "an access point goes out of range",
              lambda ctx: bool(ctx.in_range()), _out_of_range,
              {"network": _out_of_range_menu}),
    ActionDef("operator.network_back", "an access point comes back in range",
              lambda ctx: bool(_back_menu(ctx)), _back_in_range, {"network": _back_menu}),
    ActionDef("operator.clear_credentials", "WiFi.clearCredentials()", _running,
              _clear_credentials),
    ActionDef("operator.loss_burst", "the device's link loses datagrams for a while",
              _has_particle, _loss_burst, {"loss": (1.0, 0.5), "seconds": (5.0, 2.0, 20.0)}),
    ActionDef("operator.latency", "the device's link latency changes", _has_particle, _latency,
              {"latency_s": (0.5, 0.02, 2.0)}),
    ActionDef("cloud.forget_session", "the cloud forgets the device's session (next resume "
              "gets a RST)", _has_particle, _forget_session),
    ActionDef("cloud.key_change", "the cloud sends a key change message: the device discards "
              "its session and reconnects with a full handshake", _has_particle, _key_change),
    ActionDef("cloud.restart", "the cloud process restarts (sessions lost, store kept)",
              _has_particle, _cloud_restart),
    ActionDef("customer.claim", "a customer claims the device through the API (POST "
              "/v1/devices rules)", _has_particle, _customer_claim,
              {"who": (NEW_OWNER, OTHER_OWNER), "request_transfer": (False, True)}),
    ActionDef("app.publish", "the application publishes an event now", _app_ready, _publish,
              {"name": (SESSION_END,)}),
    ActionDef("app.publish_on", "the application publishes an event when a system event "
              "next fires", _app_ready, _publish_on,
              {"event": tuple(HOOK_EVENTS), "name": (SESSION_END,)}),
):
    register(_action)


__all__ = ["ACTIONS", "ALWAYS_ALLOWED_PARAMS", "HOOK_EVENTS", "NEW_OWNER", "OTHER_OWNER",
           "ActionDef", "get_action", "register"]
