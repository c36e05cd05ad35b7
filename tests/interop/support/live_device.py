"""A served cloud with one live simulated device linked to it over DTLS/UDP, in this process
and in real time (the api-js and particle-cli cloud tests), and a firmware with a cloud function
and variables."""

from __future__ import annotations

from cloud_sim import Cloud
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.system.device import FirmwareFactory
from firmware_sim.testbed.clouds.particle import link_over_dtls


class Lamp(Firmware):
    """Registers ``brightness`` (returns its argument's length, also kept as ``level``) and the
    variables ``level`` (int), ``label`` (string) and ``temp`` (double)."""

    def setup(self, particle: Particle) -> None:
        self.level = 0
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")
        particle.variable("label", "kitchen")
        particle.variable("temp", 21.5)

    def brightness(self, argument: str) -> int:
        self.level = len(argument)
        return self.level


async def serve_with_device(cloud: Cloud, device_id: str,
                            firmware: FirmwareFactory | None = None) -> tuple[CloudServer, Device]:
    """Start ``cloud`` on free ports (speed 5) and power on a P2 ``device_id`` that joins the
    Wi-Fi network HomeNet and connects to it; the caller stops the server."""
    server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, speed=5.0))
    await server.start()
    radio_environment(cloud.world).add(AccessPoint("HomeNet", "home-pass-1"))
    device = Device(cloud.world, "p2", device_id=device_id, firmware=firmware,
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    link_over_dtls(device, server.cloud, "127.0.0.1", server.coap_port, server.driver)
    device.power_on()
    return server, device
