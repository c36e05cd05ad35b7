"""The explorer's vocabulary for a ThingsBoard world: claim buttons, customers, the claim cache.

Every action here has ``cloud="thingsboard"``, so the explorer offers it only in a world with
that cloud (and the Particle actions only in a Particle world). They act the way the scenarios
of ``firmware_sim/scenarios/thingsboard.py`` do: on the claim-button devices
(``firmware_sim.claim_button``, linked to the service over MQTT, HTTP or CoAP) and on the
service's own entry points (a customer's claim and reclaim are the rules of ``POST`` and
``DELETE /api/customer/device/{name}/claim``; the tenant's attributes are SERVER_SCOPE
attributes). Each leaves an ``explore.step`` record *before* it acts, with what a property needs
to judge it (``given``: the fingerprint of the secret a customer typed; never the secret).

Secrets a customer may type (``secret``): ``display`` - the one the button shows now (its QR
code), ``wrong`` - a typo, ``empty`` - none (claiming by name), ``box`` - the key printed on the
box (:data:`BOX_KEY`, what ``tb.claiming_data`` sets as the server-side key).

``tb.cache_expiry`` lets time pass: during a search the explorer takes its next decision only
after the claim window (``durationMs``) or the claim cache's time-to-live is over
(:meth:`RunContext.hold`); in a replay file that is simply the time of the next step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..kernel.errors import ConfigurationError
from .actions import ActionDef, register
from .context import RunContext
from .model import ParamValue, Step
from .thingsboard_world import CUSTOMER_LETTERS, TENANT_ADMIN_EMAIL, button_named, customer_of

if TYPE_CHECKING:
    from ..testbed.clouds.thingsboard import ClaimButtonDevice, TbDevice, ThingsBoardPlug

#: the key printed on the box: what ``tb.claiming_data`` sets as ``claimingData.secretKey``
BOX_KEY = "BOX-4711"
#: what a customer types by mistake
WRONG_KEY = "wrong-key"
#: the secret of a press with ``secret = "fixed"`` (when the button has no fixed secret)
FIXED_SECRET = "button-secret-1"
#: the customer whose failed attempt ``tb.cache_evict`` makes
EVICTING_CUSTOMER = "C"


def _plug(ctx: RunContext, step: Step | None = None) -> ThingsBoardPlug:
    plug = ctx.thingsboard
    if plug is None:
        what = step.action if step is not None else "this action"
        raise ConfigurationError(f"{what} needs the thingsboard cloud")
    return plug


def _has_tb(ctx: RunContext) -> bool:
    return ctx.thingsboard is not None and bool(_plug(ctx).buttons)


def _button(ctx: RunContext, step: Step) -> ClaimButtonDevice:
    plug = _plug(ctx, step)
    name = step.param("button")
    if name is None:
        if not plug.buttons:
            raise ConfigurationError(f"{step.action}: this world has no claim button")
        return next(iter(plug.buttons.values()))
    return button_named(plug, str(name))


def _text(step: Step, name: str, default: str) -> str:
    return str(step.param(name, default))


def _buttons(ctx: RunContext) -> tuple[ParamValue, ...]:
    plug = ctx.thingsboard
    return tuple(plug.buttons) if plug is not None else ()


def _powered(ctx: RunContext) -> tuple[ParamValue, ...]:
    plug = ctx.thingsboard
    return tuple(n for n, b in plug.buttons.items() if b.powered) if plug is not None else ()


def _mqtt_open(ctx: RunContext) -> tuple[ParamValue, ...]:
    plug = ctx.thingsboard
    if plug is None:
        return ()
    from ..claim_button import ClientState, MqttUplink

    return tuple(name for name, button in plug.buttons.items()
                 if isinstance(button.uplink, MqttUplink)
                 and button.uplink.client.state in (ClientState.CONNECTING,
                                                    ClientState.CONNECTED))


def _fingerprint(secret: str) -> str:
    from ..testbed.clouds.thingsboard import fingerprint

    return fingerprint(secret)


# -- the claim button ------------------------------------------------------------------------------


def _press(ctx: RunContext, step: Step) -> None:
    from ..testbed.clouds.thingsboard import SecretMode

    button = _button(ctx, step)
    mode = _text(step, "secret", button.config.secret.value)
    try:
        secret_mode = SecretMode(mode)
    except ValueError:
        raise ConfigurationError(f"{step.action}: secret must be random, fixed or empty, not "
                                 f"{mode!r}") from None
    duration = step.param("duration_ms", button.config.duration_ms)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise ConfigurationError(f"{step.action}: duration_ms must be an integer, not "
                                 f"{duration!r}")
    fixed = button.config.fixed_secret or FIXED_SECRET
    button.config = replace(button.config, secret=secret_mode, fixed_secret=fixed,
                            duration_ms=duration)
    ctx.record_step(step)
    button.press_button()


def _reconnect(ctx: RunContext, step: Step) -> None:
    from ..claim_button import MqttUplink

    button = _button(ctx, step)
    if not isinstance(button.uplink, MqttUplink):
        ctx.record_step(step, skipped="not an MQTT button")
        return
    ctx.record_step(step)
    button.uplink.client.close("connection dropped")


# -- customers and the tenant ----------------------------------------------------------------------


def _typed_secret(button: ClaimButtonDevice, choice: str, action: str) -> str:
    if choice == "display":
        return button.secret or ""
    if choice == "wrong":
        return WRONG_KEY
    if choice == "empty":
        return ""
    if choice == "box":
        return BOX_KEY
    raise ConfigurationError(f"{action}: secret must be display, wrong, empty or box, not "
                             f"{choice!r}")


def _claim(ctx: RunContext, step: Step, customer: str, choice: str) -> None:
    plug = _plug(ctx, step)
    button = _button(ctx, step)
    secret = _typed_secret(button, choice, step.action)
    user = plug.customer_user(customer)
    ctx.record_step(step, given=_fingerprint(secret))
    plug.service.claim_device(user, button.name, secret)


def _customer_claim(ctx: RunContext, step: Step) -> None:
    _claim(ctx, step, _text(step, "customer", "A"), _text(step, "secret", "display"))


def _cache_evict(ctx: RunContext, step: Step) -> None:
    _claim(ctx, step, EVICTING_CUSTOMER, "wrong")


def _reclaim(ctx: RunContext, step: Step) -> None:
    plug = _plug(ctx, step)
    button = _button(ctx, step)
    who = _text(step, "who", "owner")
    owner = customer_of(plug, button.name)
    owner_letter = owner[-1] if owner else None
    if who == "admin":
        user = plug.user(TENANT_ADMIN_EMAIL)
    elif who == "owner":
        if owner_letter is None:
            ctx.record_step(step, skipped="not assigned")
            return
        user = plug.customer_user(owner_letter)
    elif who == "other":
        user = plug.customer_user("B" if owner_letter == "A" else "A")
    elif who in CUSTOMER_LETTERS:
        user = plug.customer_user(who)
    else:
        raise ConfigurationError(f"{step.action}: who must be owner, other, admin or a customer "
                                 f"letter, not {who!r}")
    ctx.record_step(step, user=user.email)
    plug.service.reclaim_device(user, button.name)


def _demo_device(ctx: RunContext, step: Step) -> tuple[ThingsBoardPlug, TbDevice]:
    """The world's ThingsBoard plug and the step's button as a device of the demo tenant."""
    plug = _plug(ctx, step)
    button = _button(ctx, step)
    demo = plug.demo
    if demo is None:
        raise ConfigurationError(f"{step.action} needs ThingsBoard's demo tenant")
    return plug, plug.service.device_named(demo.tenant.id, button.name)


def _claiming_data(ctx: RunContext, step: Step) -> None:
    from ..testbed.clouds.thingsboard import CLAIM_DATA_ATTRIBUTE_NAME, SERVER_SCOPE

    plug, device = _demo_device(ctx, step)
    if step.param("set", True) in (True, "true"):
        valid_s = step.param("valid_s", 3600)
        if isinstance(valid_s, bool) or not isinstance(valid_s, int | float):
            raise ConfigurationError(f"{step.action}: valid_s must be a number of seconds")
        expires = plug.service.now_ms() + round(valid_s * 1000)
        ctx.record_step(step, key=_fingerprint(BOX_KEY), expiration_time_ms=expires)
        plug.service.save_attributes(device, SERVER_SCOPE, {CLAIM_DATA_ATTRIBUTE_NAME: {
            "secretKey": BOX_KEY, "expirationTime": expires}})
    else:
        ctx.record_step(step)
        plug.service.delete_attributes(device, SERVER_SCOPE, [CLAIM_DATA_ATTRIBUTE_NAME])


def _allow_claiming(ctx: RunContext, step: Step) -> None:
    from ..testbed.clouds.thingsboard import CLAIM_ATTRIBUTE_NAME, SERVER_SCOPE

    plug, device = _demo_device(ctx, step)
    ctx.record_step(step)
    plug.service.save_attributes(device, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: True})


def _claiming_not_by_default(ctx: RunContext) -> bool:
    plug = ctx.thingsboard
    return (plug is not None and bool(plug.buttons)
            and not plug.service.settings.allow_claiming_by_default)


# -- time ------------------------------------------------------------------------------------------


def _expiry_menu(ctx: RunContext) -> tuple[ParamValue, ...]:
    """``window`` always; ``ttl`` when the cache's time-to-live ends before the explorer
    stops acting."""
    plug = ctx.thingsboard
    if plug is None:
        return ()
    ttl_s = plug.service.settings.cache_ttl_minutes * 60
    until_s = ctx.scenario.explore.until_s if ctx.scenario.explore is not None else 0.0
    fits = ttl_s > 0 and ctx.world.clock.now_us / 1e6 + ttl_s + 1 <= until_s
    return ("window", "ttl") if fits else ("window",)


def _cache_expiry(ctx: RunContext, step: Step) -> None:
    plug = _plug(ctx, step)
    button = _button(ctx, step)
    past = _text(step, "past", "window")
    if past == "window":
        duration_ms = button.config.duration_ms
        window_ms = duration_ms if duration_ms > 0 else plug.service.settings.claim_duration_ms
        hold_s = window_ms / 1000 + 1
    elif past == "ttl":
        hold_s = plug.service.settings.cache_ttl_minutes * 60 + 1
    else:
        raise ConfigurationError(f"{step.action}: past must be window or ttl, not {past!r}")
    ctx.record_step(step, hold_s=hold_s)
    ctx.hold(hold_s)


# -- the vocabulary --------------------------------------------------------------------------------


def _any_powered(ctx: RunContext) -> bool:
    return bool(_powered(ctx))


def _any_mqtt_open(ctx: RunContext) -> bool:
    return bool(_mqtt_open(ctx))


TB_ACTIONS: tuple[ActionDef, ...] = (
    ActionDef("button.press", "the claim button is pressed: the device shows a new secret and "
              "sends claim info {secretKey, durationMs} over its transport (MQTT, HTTP or CoAP)",
              _any_powered, _press,
              {"button": _powered, "secret": ("random", "fixed", "empty"),
               "duration_ms": (60_000, 30_000, 1_000)}, cloud="thingsboard"),
    ActionDef("button.reconnect", "the button's MQTT connection (or connection attempt) drops; "
              "it connects again with its next claim message", _any_mqtt_open, _reconnect,
              {"button": _mqtt_open}, cloud="thingsboard"),
    ActionDef("tb.customer_claim", "a customer user claims the device by name with a secret "
              "(POST /api/customer/device/{name}/claim)", _has_tb, _customer_claim,
              {"button": _buttons, "customer": ("A", "B"),
               "secret": ("display", "wrong", "box")}, cloud="thingsboard"),
    ActionDef("tb.reclaim", "a user of the owning customer, of another customer, or the tenant "
              "admin reclaims (unassigns) the device (DELETE /api/customer/device/{name}/claim)",
              _has_tb, _reclaim,
              {"button": _buttons, "who": ("owner", "other", "admin")}, cloud="thingsboard"),
    ActionDef("tb.cache_expiry", "time passes beyond the claim window (durationMs) or the "
              "claimDevices cache's time-to-live before the next action", _has_tb,
              _cache_expiry, {"button": _buttons, "past": _expiry_menu}, cloud="thingsboard"),
    ActionDef("tb.cache_evict", "someone else (customer C) tries a wrong key: the failed attempt "
              "evicts the cached claim data", _has_tb, _cache_evict, {"button": _buttons},
              cloud="thingsboard"),
    ActionDef("tb.claiming_data", "the tenant sets (with the box key, valid valid_s) or clears "
              "the device's SERVER attribute claimingData", _has_tb, _claiming_data,
              {"button": _buttons, "set": (True, False), "valid_s": (3600, 5)},
              cloud="thingsboard"),
    ActionDef("tb.allow_claiming", "the tenant sets the device's SERVER attribute "
              "claimingAllowed = true (needed when allowClaimingByDefault is false)",
              _claiming_not_by_default, _allow_claiming, {"button": _buttons},
              cloud="thingsboard"),
)

for _action in TB_ACTIONS:
    register(_action)


__all__ = ["BOX_KEY", "EVICTING_CUSTOMER", "FIXED_SECRET", "TB_ACTIONS", "WRONG_KEY"]
