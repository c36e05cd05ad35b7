"""A ``thingsboard`` world for the explorer: its claim buttons, and what actions may read of it.

How this works
--------------
A scenario file with ``cloud = "thingsboard"`` describes the service's settings
(``[world.thingsboard]``: ``ThingsBoardSettings`` fields) and claim buttons (``[[world.buttons]]``:
name, transport, secret mode, claim duration). The testbed builds the service with ThingsBoard's
demo accounts (tenant, customers A-C); :func:`add_buttons` then adds each button as a device of
the demo tenant linked in process (``ThingsBoardPlug.add_button``), and :func:`power_on_buttons`
boots them when the run starts (after any Particle device; a button with ``press_on_boot`` sends
its first claim info at once).

Everything here only *reads* the service through calls without side effects (the store, a
device's claim history, button counters): the explorer calls :func:`abstract_state` at its
decision points during a search but not during a replay, so a read that changed the service (the
claim cache expires entries lazily when it is read) would make a replay differ from its search.
The ThingsBoard plug is imported only when a world has that cloud (the cloud registry's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..kernel.errors import ConfigurationError
from ..testbed import Testbed
from .scenario_file import ButtonDesc

if TYPE_CHECKING:
    from ..testbed.clouds.thingsboard import ClaimButtonDevice, ThingsBoardPlug

#: the demo customers a customer action may act as (ThingsBoard's demo accounts)
CUSTOMER_LETTERS = ("A", "B", "C")
#: the demo tenant administrator
TENANT_ADMIN_EMAIL = "tenant@thingsboard.org"


def tb_plug(testbed: Testbed) -> ThingsBoardPlug | None:
    """The testbed's ThingsBoard cloud, or None when its cloud is another."""
    cloud = testbed.cloud
    if cloud is None or cloud.kind != "thingsboard":
        return None
    from ..testbed.clouds.thingsboard import ThingsBoardPlug

    return cloud if isinstance(cloud, ThingsBoardPlug) else None


def add_buttons(testbed: Testbed, buttons: Sequence[ButtonDesc]) -> None:
    """Add the scenario's claim buttons to the testbed's ThingsBoard (not powered on)."""
    if not buttons:
        return
    plug = tb_plug(testbed)
    if plug is None:
        raise ConfigurationError("claim buttons need the thingsboard cloud")
    from ..testbed.clouds.thingsboard import ButtonConfig, SecretMode

    for desc in buttons:
        config = ButtonConfig(secret=SecretMode(desc.secret), fixed_secret=desc.fixed_secret,
                              duration_ms=desc.duration_ms, press_on_boot=desc.press_on_boot,
                              qr_text=False)
        plug.add_button(desc.name, config, transport=desc.transport)


def power_on_buttons(testbed: Testbed, buttons: Sequence[ButtonDesc]) -> None:
    plug = tb_plug(testbed)
    if plug is None:
        return
    for desc in buttons:
        if desc.power_on:
            plug.buttons[desc.name].power_on()


def button_named(plug: ThingsBoardPlug, name: str) -> ClaimButtonDevice:
    button = plug.buttons.get(name)
    if button is None:
        raise ConfigurationError(f"no claim button named {name!r} in this world (known: "
                                 f"{', '.join(plug.buttons) or 'none'})")
    return button


def customer_of(plug: ThingsBoardPlug, device_name: str) -> str | None:
    """The title of the customer ``device_name`` is assigned to (None: unassigned)."""
    demo = plug.demo
    if demo is None:
        return None
    device = plug.service.store.find_device(demo.tenant.id, device_name)
    if device is None or device.customer_id is None:
        return None
    customer = plug.service.store.get_customer(device.customer_id)
    return customer.title if customer is not None else device.customer_id


def attribute(plug: ThingsBoardPlug, device_name: str, key: str) -> object:
    """A SERVER_SCOPE attribute of ``device_name`` (None: absent)."""
    from ..testbed.clouds.thingsboard import SERVER_SCOPE

    demo = plug.demo
    device = plug.service.store.find_device(demo.tenant.id, device_name) if demo else None
    if device is None:
        return None
    found = plug.service.store.get_attribute(device.id, SERVER_SCOPE, key)
    return None if found is None else found.value


def abstract_state(plug: ThingsBoardPlug) -> tuple[object, ...]:
    """A small summary of the ThingsBoard world for coverage (reads without side effects)."""
    from ..testbed.clouds.thingsboard import CLAIM_ATTRIBUTE_NAME, CLAIM_DATA_ATTRIBUTE_NAME

    parts: list[object] = []
    demo = plug.demo
    for name, button in plug.buttons.items():
        device = plug.service.store.find_device(demo.tenant.id, name) if demo else None
        history = plug.service.history(device) if device is not None else []
        last = history[-1] if history else None
        parts.extend((button.powered, button.config.secret.value,
                      customer_of(plug, name) is not None,
                      (last.action, last.reason) if last is not None else None,
                      attribute(plug, name, CLAIM_DATA_ATTRIBUTE_NAME) is not None,
                      attribute(plug, name, CLAIM_ATTRIBUTE_NAME) is True))
    return tuple(parts)


__all__ = ["CUSTOMER_LETTERS", "TENANT_ADMIN_EMAIL", "abstract_state", "add_buttons",
           "attribute", "button_named", "customer_of", "power_on_buttons", "tb_plug"]
