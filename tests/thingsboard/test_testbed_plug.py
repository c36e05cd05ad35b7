"""The ThingsBoard cloud in a testbed: built from a CloudSpec, buttons linked in process, served
on sockets (REST, MQTT over transports.tcp, CoAP) with the demo accounts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import mqtt5
import pytest

from firmware_sim.communication.mqtt import FrameReader
from firmware_sim.kernel.errors import ConfigurationError, UsageError
from firmware_sim.testbed import CloudSpec, ServeOptions, Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.thingsboard import (
    ButtonConfig,
    MqttLimits,
    SecretMode,
    ServiceUplink,
    TbCloudSettings,
    ThingsBoardPlug,
    ThingsBoardSettings,
)

QUIET = ButtonConfig(qr_text=False, duration_ms=60_000)


def bed(seed: int = 1, **settings: object) -> tuple[Testbed, ThingsBoardPlug]:
    testbed = Testbed(TestbedSpec(seed=seed, access_points=(), cloud=CloudSpec(
        "thingsboard", settings=TbCloudSettings(**settings))))  # type: ignore[arg-type]
    plug = testbed.cloud
    assert isinstance(plug, ThingsBoardPlug)
    return testbed, plug


def test_demo_buttons_register_over_in_process_mqtt_and_are_claimed() -> None:
    testbed, plug = bed(buttons=2, button=QUIET)
    assert list(plug.buttons) == ["Claim Button 1", "Claim Button 2"]
    plug.power_on()
    testbed.run_for(1)
    for button in plug.buttons.values():
        assert button.acked == 1
        outcome = plug.service.claim_device(plug.customer_user("A"), button.name,
                                            button.secret or "")
        assert outcome.response.value == "SUCCESS"
    plug.service.press("Claim Button 1")  # the admin API's press
    testbed.run_for(1)
    assert plug.buttons["Claim Button 1"].sent == 2
    testbed.close()


def test_settings_forms_and_refusals() -> None:
    _, plug = bed()
    assert plug.demo is not None and plug.buttons == {}
    bare = Testbed(TestbedSpec(access_points=(), cloud=CloudSpec(
        "thingsboard", settings=ThingsBoardSettings(allow_claiming_by_default=False))))
    assert isinstance(bare.cloud, ThingsBoardPlug)
    assert bare.cloud.service.settings.allow_claiming_by_default is False
    with pytest.raises(ConfigurationError, match="TbCloudSettings"):
        Testbed(TestbedSpec(access_points=(), cloud=CloudSpec("thingsboard", settings=42)))
    with pytest.raises(ConfigurationError):
        TbCloudSettings(buttons=-1)
    with pytest.raises(ConfigurationError):
        TbCloudSettings(buttons=1, demo=False)
    with pytest.raises(ConfigurationError, match="Particle device"):
        Testbed(TestbedSpec(access_points=(), cloud=CloudSpec("thingsboard"),
                            devices=provisioned("p2")))
    with pytest.raises(UsageError):
        plug.add_button("X", QUIET) and plug.add_button("X", QUIET)
    with pytest.raises(UsageError):
        plug.customer_user("Z")


def test_http_and_coap_uplinks_in_process() -> None:
    testbed, plug = bed()
    http = plug.add_button("Plug H", QUIET, transport="http")
    coap = plug.add_button("Plug C", QUIET, transport="coap")
    lost = plug.add_button("Lost", ButtonConfig(secret=SecretMode.EMPTY, qr_text=False))
    lost.uplink = ServiceUplink(plug.service, "bad", "coap")
    plug.power_on()
    testbed.run_for(1)
    assert (http.acked, coap.acked, lost.failed) == (1, 1, 1)
    failed = testbed.world.trace.first("claim.failed", node="Lost")
    assert failed is not None and failed.get("detail") == "4.01"
    with pytest.raises(ConfigurationError):
        ServiceUplink(plug.service, "t", "smoke-signals")


def test_a_database_keeps_the_demo_devices_and_tokens(tmp_path: Path) -> None:
    db = str(tmp_path / "tb.db")
    first, plug = bed(db=db, buttons=1, button=QUIET)
    token = plug.token_of("Claim Button 1")
    first.close()
    second, again = bed(seed=2, db=db, buttons=1, button=QUIET)
    assert again.token_of("Claim Button 1") == token
    second.close()


def test_served_on_sockets_rest_mqtt_and_coap() -> None:
    testbed, plug = bed(buttons=1, button=QUIET,
                        service=ThingsBoardSettings(mqtt=MqttLimits(max_connections=1)))
    token = plug.token_of("Claim Button 1")

    async def main() -> None:
        served = await testbed.serve_cloud(ServeOptions(extra={"coap_port": 0}))
        runner = asyncio.ensure_future(testbed.driver().run())
        try:
            assert [label for label, _ in served.lines] == ["REST API", "device HTTP", "MQTT",
                                                            "CoAP"]
            host, port = served.device_url.removeprefix("mqtt://").rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(mqtt5.ConnectPacket("c1", username=token).write())
            writer.write(mqtt5.PublishPacket("v1/devices/me/claim", b'{"secretKey":"k"}',
                                             qos=mqtt5.QoS.AT_LEAST_ONCE,
                                             packet_id=7).write())
            frames = FrameReader(1 << 16)
            packets: list[mqtt5.Packet] = []
            while len(packets) < 2:
                packets += [mqtt5.read(memoryview(raw))[0]
                            for raw in frames.feed(await asyncio.wait_for(reader.read(512), 5))]
            assert isinstance(packets[0], mqtt5.ConnAckPacket)
            assert isinstance(packets[1], mqtt5.PubAckPacket) and packets[1].packet_id == 7
            _, second = await asyncio.open_connection(host, int(port))  # above the limit
            async with httpx.AsyncClient(base_url=served.http_url) as http:
                response = await http.post("/api/auth/login", json={
                    "username": "customerA@thingsboard.org", "password": "customer"})
                assert response.status_code == 200 and response.json()["token"].count(".") == 2
                claim = await http.post("/api/customer/device/Claim Button 1/claim",
                                        json={"secretKey": "k"}, headers={
                                            "X-Authorization":
                                                f"Bearer {response.json()['token']}"})
                assert claim.json()["response"] == "SUCCESS"
            writer.close()
            second.close()
        finally:
            await served.stop()
            testbed.driver().stop()
            await runner

    asyncio.run(main())
    assert testbed.world.trace.first("tb.mqtt.refused") is not None
    testbed.close()


def test_unknown_serve_options_are_refused() -> None:
    testbed, _ = bed()

    async def main() -> None:
        await testbed.serve_cloud(ServeOptions(extra={"mqtt_qos": 2}))

    with pytest.raises(ConfigurationError, match="mqtt_qos"):
        asyncio.run(main())
    testbed.close()
