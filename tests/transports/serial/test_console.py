"""The listening-mode console state machine against a fake device (device-os.md §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel import World
from transports.serial import ListeningConsole, Texts, WlanCipher, WlanSecurity

SAVED_TEXT = (b"Thanks! Wait while I save those credentials...\r\n\r\n"
              b"Awesome. Now we'll connect!\r\n\r\n"
              b"If you see a pulsing cyan light, your device \r\n"
              b"has connected to the Cloud and is ready to go!\r\n\r\n"
              b"If your LED flashes red or you encounter any other problems,\r\n"
              b"visit https://www.particle.io/support to debug.\r\n\r\n"
              b"    Particle <3 you!\r\n\r\n")


@dataclass
class FakeServices:
    info: list[tuple[str, str]] = field(default_factory=lambda: [("ms", "SECRET123456789"),
                                                                 ("sn", "P046AB1234ABC12")])
    claimed: bool = False
    claim_codes: list[bytes] = field(default_factory=list)
    networks: list[tuple[bytes, WlanSecurity]] = field(default_factory=list)
    saved: list[tuple[bytes, bytes, WlanSecurity, WlanCipher]] = field(default_factory=list)
    save_result: int = 0
    exits: int = 0
    safe_mode: int = 0
    has_wifi: bool = True

    def device_id(self) -> str:
        return "e00fce68aabbccddeeff0011"

    def system_info(self) -> list[tuple[str, str]]:
        return self.info

    def mac_address(self) -> bytes:
        return bytes.fromhex("a4c138aabbcc")

    def system_version(self) -> str:
        return "6.2.0"

    def module_info_json(self) -> str:
        return '"p":32,"m":[]'

    def diagnostics_json(self) -> str:
        return '{"sys:uptime":1}'

    def is_claimed(self) -> bool:
        return self.claimed

    def set_claim_code(self, code: bytes) -> int:
        self.claim_codes.append(code)
        return 0

    def exit_listening(self) -> None:
        self.exits += 1

    def enter_safe_mode_listening(self) -> None:
        self.safe_mode += 1

    def scan(self) -> list[tuple[bytes, WlanSecurity]]:
        return self.networks

    def save_wifi_credentials(self, ssid: bytes, password: bytes, security: WlanSecurity,
                              cipher: WlanCipher) -> int:
        self.saved.append((ssid, password, security, cipher))
        return self.save_result


class Rig:
    def __init__(self, services: FakeServices | None = None) -> None:
        self.world = World(0)
        self.services = services or FakeServices()
        self.out = bytearray()
        self.console = ListeningConsole(self.services, self.out.extend, self.world.scheduler,
                                        self.world.trace.bind("dev", "serial"))

    def say(self, data: bytes, settle: float = 1.0) -> bytes:
        """Feed ``data`` as one USB delivery, let pauses run, return what was printed."""
        start = len(self.out)
        self.console.feed(data)
        self.world.run_for(settle)
        return bytes(self.out[start:])


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_identify(rig: Rig) -> None:
    assert rig.say(b"i") == (b"Device ID: e00fce68aabbccddeeff0011\r\n"
                             b"Device Secret: SECRET123456789\r\n"
                             b"Serial Number: P046AB1234ABC12\r\n")
    bare = Rig(FakeServices(info=[]))
    assert bare.say(b"i") == b"Your device id is e00fce68aabbccddeeff0011\r\n"
    renamed = Rig(FakeServices(info=[("imei", "1"), ("iccid", "2"), ("cellfw", "3"),
                                     ("other", "4")]))
    assert renamed.say(b"i") == (b"Device ID: e00fce68aabbccddeeff0011\r\nIMEI: 1\r\n"
                                 b"ICCID: 2\r\nCell Radio Version: 3\r\nother: 4\r\n")


def test_simple_commands(rig: Rig) -> None:
    assert rig.say(b"m") == b"Your device MAC address is\r\na4:c1:38:aa:bb:cc\r\n"
    assert rig.say(b"v") == b"system firmware version: 6.2.0\n\r\n"
    assert rig.say(b"c") == b"Device claimed: no\r\n"
    rig.services.claimed = True
    assert rig.say(b"c") == b"Device claimed: yes\r\n"
    assert rig.say(b"s") == b'{"p":32,"m":[]}\r\n'
    assert rig.say(b"d") == b'{"sys:uptime":1}\r\n'
    assert rig.say(b"x") == b"" and rig.services.exits == 1
    assert rig.say(b"L") == b"" and rig.services.safe_mode == 1


def test_commands_are_case_sensitive_and_others_ignored(rig: Rig) -> None:
    assert rig.say(b"IMVXSDW?\r\n \x00\x03\xff\xe9") == b""
    assert rig.say(b"ic") == (b"Device ID: e00fce68aabbccddeeff0011\r\n"
                              b"Device Secret: SECRET123456789\r\nSerial Number: P046AB1234ABC12"
                              b"\r\nDevice claimed: no\r\n")


def test_ymodem_is_gone_and_input_waits_during_the_pause(rig: Rig) -> None:
    rig.console.feed(b"fc")
    assert bytes(rig.out) == Texts.YMODEM_WAIT  # 'c' waits in the buffer for 100 ms
    rig.world.run_for(0.099)
    assert bytes(rig.out) == Texts.YMODEM_WAIT
    rig.world.run_for(0.002)
    assert bytes(rig.out) == (b"Waiting for the binary file to be sent ... (press 'a' to "
                              b"abort)\r\n\x18\x18\x18\x18Serial/YModem flashing is no longer "
                              b"supported\r\nDevice claimed: no\r\n")


def test_claim_code_of_63_characters(rig: Rig) -> None:
    code = b"".join(bytes([0x41 + i % 26]) for i in range(63))
    out = rig.say(b"C" + code + b"\r\n")
    assert out == (b"Enter 63-digit claim code: " + code + b"\r\nClaim code set to: " + code
                   + b"\r\n")
    assert rig.services.claim_codes == [code]


@pytest.mark.parametrize("length", [0, 1, 62])
def test_claim_code_too_short(rig: Rig, length: int) -> None:
    code = b"x" * length
    assert rig.say(b"C" + code + b"\n") == (
        b"Enter 63-digit claim code: " + code + b"\r\nSorry, claim code is not 63 characters "
        b"long. Claim code unchanged.\r\n")
    assert rig.services.claim_codes == []


def test_claim_code_of_64_characters_is_cut_at_63(rig: Rig) -> None:
    """serialReadLine: the 64th character ends the line (consumed, not echoed); the rest of the
    delivery is discarded, so a 64-character code is taken as its first 63 characters."""
    code = bytes(range(0x30, 0x30 + 64))
    out = rig.say(b"C" + code + b"\r\ni")
    assert out == (b"Enter 63-digit claim code: " + code[:63] + b"\r\nClaim code set to: "
                   + code[:63] + b"\r\n")
    assert rig.services.claim_codes == [code[:63]]


def test_claim_code_typed_one_byte_at_a_time_with_corrections(rig: Rig) -> None:
    rig.say(b"C")
    for byte in b"y" * 61 + b"q\x08yz":
        rig.say(bytes([byte]), settle=0)
    out = rig.say(b"\r")
    assert out == b"\r\nClaim code set to: " + b"y" * 62 + b"z\r\n"
    rig.say(b"\n")  # the LF arrives later: an ignored command byte
    assert rig.say(b"c") == b"Device claimed: no\r\n"


def test_a_full_buffer_ends_the_line_even_with_a_backspace(rig: Rig) -> None:
    rig.say(b"C")
    rig.say(b"y" * 63, settle=0)
    out = rig.say(b"\x08")  # buffer full: this byte ends the line
    assert out == b"\r\nClaim code set to: " + b"y" * 63 + b"\r\n"


def test_claim_code_with_a_nul_counts_as_short(rig: Rig) -> None:
    code = b"a" * 30 + b"\x00" + b"a" * 32
    assert b"Sorry" in rig.say(b"C" + code + b"\n")


def test_ctrl_c_mid_dialog_is_just_a_character(rig: Rig) -> None:
    out = rig.say(b"C" + b"a" * 10 + b"\x03")
    assert out == b"Enter 63-digit claim code: " + b"a" * 10 + b"\x03"
    assert rig.console.busy  # still waiting for the line
    assert rig.say(b"\n").endswith(b"Sorry, claim code is not 63 characters long. Claim code "
                                   b"unchanged.\r\n")
    assert not rig.console.busy


def test_non_ascii_bytes_in_a_claim_code(rig: Rig) -> None:
    code = "é".encode() * 31 + b"z"  # 63 bytes
    assert rig.say(b"C" + code + b"\n").endswith(b"Claim code set to: " + code + b"\r\n")
    assert rig.services.claim_codes == [code]


def test_wifi_dialog_for_a_network_out_of_range(rig: Rig) -> None:
    """The dialog particle-cli 3.43.1 drives: w, SSID, security 3, cipher 1, password."""
    assert rig.say(b"w") == b"SSID: "
    assert rig.say(b"Net1\n") == b"Net1\r\nSecurity 0=unsecured, 1=WEP, 2=WPA, 3=WPA2: "
    assert rig.say(b"3\n") == b"3\r\nSecurity Cipher 1=AES, 2=TKIP, 3=AES+TKIP: "
    assert rig.say(b"1\n") == b"1\r\nPassword: "
    assert rig.say(b"hunter22\n") == b"hunter22\r\n" + SAVED_TEXT
    assert rig.services.saved == [(b"Net1", b"hunter22", WlanSecurity.WPA2, WlanCipher.AES)]


@pytest.mark.parametrize(("found", "prompts"), [
    (WlanSecurity.WPA2, [Texts.PASSWORD]),
    (WlanSecurity.WPA, [Texts.PASSWORD]),
    (WlanSecurity.WPA3, [Texts.PASSWORD]),
    (WlanSecurity.WEP, [Texts.CIPHER, Texts.PASSWORD]),
    (WlanSecurity.UNSEC, [Texts.CIPHER]),  # the cipher is asked even for an open network
])
def test_wifi_dialog_for_a_network_in_range(found: WlanSecurity, prompts: list[bytes]) -> None:
    rig = Rig(FakeServices(networks=[(b"Other", WlanSecurity.WPA2), (b"Home", found)]))
    rig.say(b"w")
    out = rig.say(b"Home\n")
    assert out == b"Home\r\n" + prompts[0]
    answers = {Texts.CIPHER: b"2\n", Texts.PASSWORD: b"secret99\n"}
    for index, prompt in enumerate(prompts):
        out = rig.say(answers[prompt])
        if index + 1 < len(prompts):
            assert out.endswith(prompts[index + 1])
    assert out.endswith(SAVED_TEXT)
    [(ssid, password, security, _)] = rig.services.saved
    assert (ssid, security) == (b"Home", found)
    assert password == (b"" if found is WlanSecurity.UNSEC else b"secret99")


def test_wifi_dialog_repeats_prompts_on_bad_answers(rig: Rig) -> None:
    assert rig.say(b"w") == b"SSID: "
    assert rig.say(b"\n") == b"\r\nSSID: "  # empty SSID
    assert rig.say(b"\x00abc\n") == b"\x00abc\r\nSSID: "  # a C string starting with NUL
    out = rig.say(b"N\n")
    assert out.endswith(Texts.SECURITY)
    for bad in (b"4\n", b"5\n", b"9\n", b"a\n", b"\n", b"/\n"):
        assert rig.say(bad).endswith(Texts.SECURITY)
    assert rig.say(b"6\n").endswith(Texts.CIPHER)  # WPA3 is accepted
    for bad in (b"0\n", b"4\n", b"x\n"):
        assert rig.say(bad).endswith(Texts.CIPHER)
    assert rig.say(b"3\n").endswith(Texts.PASSWORD)
    rig.services.save_result = -270
    assert rig.say(b"pw\n") == (b"pw\r\nThanks! Wait while I save those credentials...\r\n\r\n"
                                b"Derp. Sorry, we couldn't save the credentials.\r\n\r\n")
    assert rig.services.saved[0][2:] == (WlanSecurity.WPA3, WlanCipher.AES_TKIP)


def test_wifi_unsecured_network_needs_no_password(rig: Rig) -> None:
    rig.say(b"w")
    rig.say(b"Open\n")
    assert rig.say(b"0\n").endswith(Texts.CIPHER)
    assert rig.say(b"1\n").endswith(SAVED_TEXT)
    assert rig.services.saved == [(b"Open", b"", WlanSecurity.UNSEC, WlanCipher.AES)]


def test_overlong_ssid_and_password_are_cut(rig: Rig) -> None:
    rig.say(b"w")
    out = rig.say(b"S" * 40 + b"\n")
    assert out == b"S" * 32 + b"\r\n" + Texts.SECURITY  # 33rd byte ends the line, rest flushed
    rig.say(b"2\n")
    rig.say(b"3\n")
    rig.say(b"p" * 70 + b"\n")
    assert rig.services.saved[0][:2] == (b"S" * 32, b"p" * 64)


def test_input_typed_ahead_of_the_scan_is_kept(rig: Rig) -> None:
    rig.console.feed(b"w")
    rig.console.feed(b"Net\n3\n")  # one delivery: "3\n" is flushed after the SSID line
    rig.world.run_for(0.1)
    rig.console.feed(b"2\n")  # arrives during the 0.5 s scan: waits for the next prompt
    rig.world.run_for(1)
    assert bytes(rig.out) == (b"SSID: Net\r\n" + Texts.SECURITY + b"2\r\n" + Texts.CIPHER)


def test_closed_console_prints_nothing(rig: Rig) -> None:
    rig.console.feed(b"f")
    rig.console.close()
    rig.world.run_for(1)
    assert bytes(rig.out) == Texts.YMODEM_WAIT
    rig.console.feed(b"i")
    assert bytes(rig.out) == Texts.YMODEM_WAIT


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_random_input_never_breaks_the_console(chunks: list[bytes]) -> None:
    rig = Rig(FakeServices(networks=[(b"Home", WlanSecurity.WPA2)]))
    for chunk in chunks:
        rig.console.feed(chunk)
        rig.world.run_for(0.3)
    for code in rig.services.claim_codes:
        assert len(code) == 63 and b"\x00" not in code
    for ssid, password, _, _ in rig.services.saved:
        assert 0 < len(ssid) <= 32 and len(password) <= 64
