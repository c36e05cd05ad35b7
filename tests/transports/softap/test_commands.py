"""Every SoftAP command and every bad input of issue 5, over the sans-IO TCP session."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from firmware_sim.system.radio import WifiSecurity
from transports.softap import (
    SoftApOptions,
    encrypt_password,
    encrypt_private_key,
    generate_rsa_key,
    load_public_key,
)
from transports.softap.keys import ERR_RSA_INVALID_PADDING, ERR_RSA_PRIVATE_FAILED_BAD_INPUT

from .conftest import DEVICE_ID, Photon

WPA2_AES = 0x00400004
CODE = "A" * 40 + "b+/" + "c" * 20  # 63 base64 characters


def public_key(photon: Photon) -> rsa.RSAPublicKey:
    reply = photon.reply("public-key")
    key = load_public_key(bytes.fromhex(reply["b"]))
    assert key is not None
    return key


def configure(photon: Photon, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {"idx": 0, "ssid": "HomeNet", "sec": WPA2_AES, "ch": 6}
    body.update(fields)
    if "password" in body:
        body["pwd"] = encrypt_password(public_key(photon), str(body.pop("password")))
    return photon.reply("configure-ap", body)  # type: ignore[no-any-return]


# -- replies, byte for byte --------------------------------------------------------------------


def test_softap_is_up_in_listening_mode_with_the_dct_ssid(photon: Photon) -> None:
    assert photon.device.listening.active and photon.softap.active
    code = photon.device.config.device_code()
    assert code is not None and len(code) == 6
    assert all(c in "23456789ABCDEFGHJKLMNPQRSTUVWXYZ" for c in code)
    assert photon.softap.ssid == f"Photon-{code}"
    assert photon.device.config.ssid_prefix() == "Photon"  # written on first start
    start = photon.world.trace.first("softap.start")
    assert start is not None and start.fields == {"ssid": f"Photon-{code}", "ip": "192.168.0.1",
                                                  "channel": 11}


def test_ssid_prefix_from_the_dct(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(boot=False)
    photon.device.config.set_ssid_prefix("Acme")
    photon.device.power_on()
    photon.world.run_for(1)
    assert photon.softap.ssid == f"Acme-{photon.device.config.device_code()}"


def test_version(photon: Photon) -> None:
    probe = photon.command("version")
    assert bytes(probe.output) == b'\n\n{"v":2}' and probe.closed


def test_device_id_and_claimed_flag(photon: Photon) -> None:
    assert bytes(photon.command("device-id").output) == (
        b'\n\n{"id":"' + DEVICE_ID.upper().encode() + b'","c":"0"}')
    photon.device.claim.set_claim_code(None)  # what the cloud's confirmation does
    assert photon.reply("device-id") == {"id": DEVICE_ID.upper(), "c": "1"}


def test_scan_lists_visible_aps_with_wiced_security(photon: Photon) -> None:
    probe = photon.command("scan-ap", run_s=0.5)
    assert probe.output == b"\n\n" and not probe.closed  # the scan takes scan_time_s
    photon.world.run_for(1.0)
    assert bytes(probe.output) == (
        b'\n\n{"scans":[{"ssid":"HomeNet","rssi":-45,"sec":4194308,"ch":6,"mdr":54000},'
        b'{"ssid":"OpenCafe","rssi":-70,"sec":0,"ch":1,"mdr":54000},'
        b'{"ssid":"OldWep","rssi":-80,"sec":1,"ch":11,"mdr":54000}]}')
    assert probe.closed


@pytest.mark.parametrize(("security", "wiced"), [
    (WifiSecurity.WPA_PSK, 0x00200004), (WifiSecurity.WPA_WPA2_PSK, 0x00400006),
    (WifiSecurity.WPA3_PSK, -1), (WifiSecurity.WPA2_WPA3_PSK, 0x00400004),
])
def test_scan_security_mapping(photon_factory: Callable[..., Photon], security: WifiSecurity,
                               wiced: int) -> None:
    from firmware_sim.system.radio import AccessPoint

    photon = photon_factory(aps=(AccessPoint("Net", "password-1", security=security),))
    assert photon.reply("scan-ap")["scans"][0]["sec"] == wiced


def test_public_key(photon: Photon) -> None:
    reply = photon.reply("public-key")
    assert list(reply) == ["b", "r"] and reply["r"] == 0
    assert len(reply["b"]) == 588 and reply["b"] == reply["b"].upper()
    key = load_public_key(bytes.fromhex(reply["b"]))
    assert key is not None and key.key_size == 1024
    assert photon.softap.key is not None
    assert key.public_numbers() == photon.softap.key.public_key().public_numbers()


# -- set -----------------------------------------------------------------------------------------


def test_set_claim_code(photon: Photon) -> None:
    assert photon.reply("set", {"k": "cc", "v": CODE}) == {"r": 0}
    assert photon.device.claim.pending_code() == CODE
    assert photon.device.claim.stored_code() == CODE.encode().ljust(63, b"\x00")
    assert not photon.device.claim.is_device_claimed()


@pytest.mark.parametrize("body", [
    {"k": "zz", "v": "x"},   # unknown key
    {"k": "", "v": "x"},     # empty key
    {"k": "cc", "v": ""},    # empty value
    {"k": "cc"},             # no value
    {"v": "x"},              # no key
    {},
])
def test_set_refused(photon: Photon, body: dict[str, str]) -> None:
    assert photon.reply("set", body) == {"r": -1}
    assert photon.device.claim.pending_code() is None


def test_set_lengths_are_cut_like_the_device(photon: Photon) -> None:
    # key buffer 3 -> 2 characters kept; value buffer 64 -> 63 characters kept
    assert photon.reply("set", {"k": "ccX", "v": "V" * 64}) == {"r": 0}
    assert photon.device.claim.pending_code() == "V" * 63
    assert photon.reply("set", {"k": "cc", "v": "W" * 200}) == {"r": 0}
    assert photon.device.claim.pending_code() == "W" * 63


def test_set_strict_lengths(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(options=SoftApOptions(strict_set_lengths=True))
    assert photon.reply("set", {"k": "cc", "v": "V" * 65}) == {"r": -1}
    assert photon.reply("set", {"k": "cccc", "v": "V"}) == {"r": -1}
    assert photon.device.claim.pending_code() is None
    assert photon.reply("set", {"k": "cc", "v": "V" * 64}) == {"r": 0}
    assert photon.device.claim.pending_code() == "V" * 63


@pytest.mark.parametrize("body", [b"{bad json", b'{"k":"cc","v":"x","extra":"1"}',
                                  b'{"k":1,"v":"x"}', b"", b"[]"])
def test_bad_json_gets_no_body(photon: Photon, body: bytes) -> None:
    probe = photon.command("set", body)
    assert bytes(probe.output) == b"\n\n" and probe.closed
    assert photon.device.claim.pending_code() is None


# -- configure-ap ----------------------------------------------------------------------------


def test_configure_stores_decrypted_credentials(photon: Photon) -> None:
    assert configure(photon, password="home-pass-1", idx=2) == {"r": 0}
    creds = photon.device.credentials.get("HomeNet")
    assert creds is not None and creds.password == "home-pass-1"
    assert creds.security is WifiSecurity.WPA2_PSK
    assert photon.softap.slots == {2: "HomeNet"}
    stored = photon.world.trace.first("softap.credentials_stored")
    assert stored is not None and stored.fields["password_length"] == 11
    assert "home-pass-1" not in json.dumps([r.fields for r in photon.world.trace.records])


def test_configure_open_network_without_password(photon: Photon) -> None:
    assert configure(photon, ssid="OpenCafe", sec=0) == {"r": 0}
    creds = photon.device.credentials.get("OpenCafe")
    assert creds is not None and creds.password is None
    assert creds.security is WifiSecurity.NO_SECURITY


def test_configure_security_comes_from_the_scan(photon: Photon) -> None:
    # sec says WPA-TKIP; the device sniffs the AP and stores what it advertises (WPA2)
    assert configure(photon, password="home-pass-1", sec=0x00200002) == {"r": 0}
    creds = photon.device.credentials.get("HomeNet")
    assert creds is not None and creds.security is WifiSecurity.WPA2_PSK


def test_configure_wep(photon: Photon) -> None:
    assert configure(photon, ssid="OldWep", sec=1, password="wep-key-12") == {"r": 0}
    assert configure(photon, ssid="OldWep", sec=1, password="abc") == {"r": -4}


def test_pwd_not_hex(photon: Photon) -> None:
    result = configure(photon, pwd="this is not hex!")["r"]
    assert result in (ERR_RSA_INVALID_PADDING, ERR_RSA_PRIVATE_FAILED_BAD_INPUT)
    assert configure(photon, pwd="zz" * 128) == {"r": ERR_RSA_INVALID_PADDING}
    assert photon.device.credentials.get("HomeNet") is None


def test_pwd_encrypted_with_another_key(photon: Photon) -> None:
    other = generate_rsa_key(random.Random("not the device key")).public_key()
    result = configure(photon, pwd=other.encrypt(b"home-pass-1", padding.PKCS1v15()).hex())
    assert result["r"] in (ERR_RSA_INVALID_PADDING, ERR_RSA_PRIVATE_FAILED_BAD_INPUT)
    assert photon.device.credentials.get("HomeNet") is None


def test_pwd_too_short_to_decrypt_is_taken_as_is(photon: Photon) -> None:
    # len(pwd) / 2 == 0: the device skips decryption; a 1-character WPA2 key is then too short
    assert configure(photon, pwd="x") == {"r": -4}


@pytest.mark.parametrize(("fields", "result"), [
    ({"ssid": ""}, -3),
    ({"ssid": "S" * 33}, -3),
    ({"ssid": "NotInRange", "password": "whatever-1"}, -2),
    ({"ssid": "Hidden", "password": "hidden-pass"}, -2),
    ({"password": "short"}, -4),
    ({"password": "p" * 65}, -4),
    ({}, -4),  # WPA2 without a password
])
def test_configure_refused(photon: Photon, fields: dict[str, object], result: int) -> None:
    assert configure(photon, **fields) == {"r": result}
    assert len(photon.device.credentials) == 0


def test_configure_without_ssid(photon: Photon) -> None:
    assert photon.reply("configure-ap", {"idx": 0}) == {"r": -3}


def test_configure_bad_json_and_unknown_key(photon: Photon) -> None:
    assert bytes(photon.command("configure-ap", b'{"ssid":"HomeNet",').output) == b"\n\n"
    assert bytes(photon.command("configure-ap", b'{"ssid":"HomeNet","x":1}').output) == b"\n\n"
    assert bytes(photon.command("configure-ap", b'{"idx":"0","ssid":"H"}').output) == b"\n\n"


PEM_KEY = ("-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEA\n"
           "-----END PRIVATE KEY-----")
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAV2gAwIBAgIJAOmHbaw\n-----END CERTIFICATE-----"


def test_eap_tls_key_is_aes_decrypted_with_the_rsa_wrapped_key(photon: Photon) -> None:
    key = public_key(photon)
    kiv = bytes(range(32))
    ek, encrypted = encrypt_private_key(key, PEM_KEY + "\r\n", kiv)
    reply = photon.reply("configure-ap", {
        "idx": 0, "ssid": "HomeNet", "sec": 0x02400004, "ch": 6, "eap": 13,
        "crt": PEM_CERT + "\r\n", "key": encrypted, "ek": ek, "oi": "anonymous"})
    assert reply == {"r": 0}
    enterprise = photon.softap.enterprise
    assert enterprise is not None and enterprise.eap_type == 13
    assert enterprise.private_key.startswith((PEM_KEY + "\r\n").encode())  # padding kept
    assert enterprise.client_certificate == PEM_CERT + "\r\n"
    assert enterprise.outer_identity == "anonymous"


def test_eap_tls_with_an_undecryptable_ek(photon: Photon) -> None:
    key = public_key(photon)
    _, encrypted = encrypt_private_key(key, PEM_KEY, bytes(32))
    reply = photon.reply("configure-ap", {
        "idx": 0, "ssid": "HomeNet", "sec": 0x02400004, "eap": 13, "crt": PEM_CERT,
        "key": encrypted, "ek": "00" * 128})
    assert reply == {"r": ERR_RSA_INVALID_PADDING}
    assert photon.softap.enterprise is None


def test_eap_configuration_must_be_complete(photon: Photon) -> None:
    key = public_key(photon)
    # PEAP needs an inner identity
    reply = photon.reply("configure-ap", {"idx": 0, "ssid": "HomeNet", "sec": 0x02400004,
                                          "eap": 25, "pwd": encrypt_password(key, "pw")})
    assert reply == {"r": 1}
    reply = photon.reply("configure-ap", {"idx": 0, "ssid": "HomeNet", "sec": 0x02400004,
                                          "eap": 25, "ii": "me",
                                          "pwd": encrypt_password(key, "pw")})
    assert reply == {"r": 0}
    assert photon.softap.enterprise is not None and photon.softap.enterprise.password == b"pw"


# -- connect-ap ------------------------------------------------------------------------------


def test_connect_leaves_softap_and_joins(photon: Photon) -> None:
    assert configure(photon, password="home-pass-1") == {"r": 0}
    probe = photon.command("connect-ap", {"idx": 0}, run_s=0.05)
    assert bytes(probe.output) == b'\n\n{"r":0}' and probe.closed
    assert photon.softap.active  # the reply goes out first
    photon.world.run_for(0.1)
    assert not photon.softap.active and not photon.device.listening.active
    assert photon.softap.open_tcp(lambda data: None, lambda: None) is None  # AP gone
    assert photon.world.run_until(lambda: photon.device.network.ready, 10)
    assert photon.world.run_until(lambda: photon.device.cloud_connected, 10)


def test_connect_ignores_its_body_like_the_device(photon: Photon) -> None:
    assert configure(photon, password="home-pass-1") == {"r": 0}
    assert photon.reply("connect-ap", b"not json") == {"r": 0}
    assert photon.world.run_until(lambda: photon.device.network.ready, 10)


def test_connect_with_an_index_that_has_no_credentials(photon: Photon) -> None:
    # the device answers 0 whatever the index, leaves SoftAP and, knowing no network at all,
    # goes straight back to listening mode: SoftAP comes back up
    assert photon.reply("connect-ap", {"idx": 3}) == {"r": 0}
    photon.world.run_for(1)
    assert photon.device.listening.active and photon.softap.active
    assert photon.world.trace.count("softap.stop") == 1
    assert photon.world.trace.count("softap.start") == 2
    assert photon.world.trace.first("listening.no_credentials") is not None
    assert photon.reply("version") == {"v": 2}


def test_connect_strict_index(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(options=SoftApOptions(connect_requires_configured_index=True))
    assert photon.reply("connect-ap", {"idx": 3}) == {"r": -1}
    photon.world.run_for(1)
    assert photon.softap.active and photon.world.trace.count("softap.stop") == 0
    assert configure(photon, password="home-pass-1", idx=3) == {"r": 0}
    assert photon.reply("connect-ap", {"idx": 3}) == {"r": 0}
    assert photon.world.run_until(lambda: photon.device.network.ready, 10)


def test_softap_down_outside_listening_mode(photon_factory: Callable[..., Photon]) -> None:
    from firmware_sim.system.network import WifiCredentials

    photon = photon_factory(wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    assert not photon.device.listening.active and not photon.softap.active
    assert photon.softap.open_tcp(lambda data: None, lambda: None) is None
    assert photon.softap.open_http(lambda data: None, lambda: None) is None
    photon.device.listening.enter()
    assert photon.softap.active and photon.reply("version") == {"v": 2}


def test_reset_closes_sessions_and_restarts_softap(photon: Photon) -> None:
    probe = photon.tcp(b"vers", run_s=0.1)
    assert not probe.closed
    photon.device.reset("user")
    photon.world.run_for(1)
    assert probe.closed and probe.output == b""
    assert photon.softap.active and photon.reply("version") == {"v": 2}


def test_non_photon_profiles_have_no_softap() -> None:
    from firmware_sim.kernel.errors import ConfigurationError
    from firmware_sim.kernel.world import World
    from firmware_sim.system.device import Device
    from firmware_sim.testbed.adapters import surface_for
    from transports.softap import softap_for

    world = World(0)
    with pytest.raises(ConfigurationError, match="no SoftAP"):
        softap_for(surface_for(Device(world, "p2", profile="p2")))
