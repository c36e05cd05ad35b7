"""Timing profiles: how long each phase of a device's life takes on virtual time.

How this works
--------------
A :class:`TimingProfile` bundles every duration the device model waits for: the bootloader
before Device OS starts (``boot_delay_s``, not counted in the uptime), the Wi-Fi interface
(:class:`~firmware_sim.system.network.NetworkTiming`: power-on, join, DHCP), the cloud socket
(:class:`~firmware_sim.system.cloud.CloudTiming`: DNS lookup and socket) and the protocol
(:class:`~firmware_sim.communication.protocol.ProtocolOptions`: the device's DTLS crypto time,
the cost of the first send on a resumed session, CoAP and DTLS retransmission, keepalive).
``FirmwareOptions.timing`` names the profile; a testbed sets it from ``DeviceSpec.timing`` /
``TestbedSpec.timing`` (the CLI's ``--timing``). Two profiles exist:

* ``thread`` (the default): calibrated to the real P2 of the Particle community thread
  "Claiming with claimDevice() and getClaimCode()": ``Send spark/device/claim/code`` 15,435 ms
  after power-up on a device that already has Wi-Fi credentials, ``Claim code received by the
  cloud and cleared locally.`` 2,426 ms later, and 183 ms between ``Skipping HELLO message``
  and ``cloud connected from existing session.`` on a resume. The split of the 15.4 s between
  the phases, and where each figure comes from, is in docs/device-model.md ("Timing profiles").
* ``fast``: the short phases fwsim used before (2.5 s Wi-Fi join, no crypto time), for fleets of
  devices and exploration where only the order of events matters.

Only the ``thread`` profile's totals are measured facts; the split is an estimate, and ``fast``
is not a model of any hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..communication.protocol import ProtocolOptions
from ..kernel.errors import ConfigurationError
from .cloud import CloudTiming
from .network import NetworkTiming


@dataclass(frozen=True)
class TimingProfile:
    name: str
    summary: str
    #: power-on or reset until Device OS starts (uptime 0): the bootloader
    boot_delay_s: float
    network: NetworkTiming
    cloud: CloudTiming
    protocol: ProtocolOptions


#: Calibrated to the forum thread's P2 (docs/device-model.md, "Timing profiles").
THREAD = TimingProfile(
    name="thread",
    summary="a P2 calibrated to the forum thread's log (claim code 15.4 s after power-up)",
    boot_delay_s=0.1,
    network=NetworkTiming(power_on_s=2.0, join_delay_s=5.0, dhcp_s=3.0, disconnect_s=0.1,
                          retry_s=5.0),
    cloud=CloudTiming(socket_connect_s=0.41),
    # dtls_crypto_s: what remains of the 15.435 s once the phases above, the DTLS stand-in's two
    # round trips and the HELLO's round trip (``begin`` waits for its ACK) - 6 x 90 ms - are
    # counted
    protocol=ProtocolOptions(dtls_crypto_s=4.485, resume_send_s=0.183),
)

#: fwsim's earlier short phases: for fleets and exploration.
FAST = TimingProfile(
    name="fast",
    summary="short phases (2.5 s Wi-Fi join, no crypto time) for fleets and exploration",
    boot_delay_s=0.05,
    network=NetworkTiming(power_on_s=0.2, join_delay_s=2.5, dhcp_s=0.0, disconnect_s=0.1,
                          retry_s=5.0),
    cloud=CloudTiming(socket_connect_s=0.08),
    protocol=ProtocolOptions(),
)

TIMING_PROFILES: dict[str, TimingProfile] = {p.name: p for p in (THREAD, FAST)}
DEFAULT_TIMING = THREAD.name


def timing_profile(name: str) -> TimingProfile:
    """The profile called ``name`` (``ConfigurationError`` naming the known ones otherwise)."""
    try:
        return TIMING_PROFILES[name]
    except KeyError:
        known = ", ".join(TIMING_PROFILES)
        raise ConfigurationError(f"unknown timing profile {name!r} (known: {known})") from None


__all__ = ["DEFAULT_TIMING", "FAST", "THREAD", "TIMING_PROFILES", "TimingProfile",
           "timing_profile"]
