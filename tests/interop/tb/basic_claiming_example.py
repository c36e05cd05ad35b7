"""A device-claiming script of the shape of ThingsBoard's documented ``basic_claiming_example.py``
(docs: Other Features > Claiming Devices): it asks for the host, the device access token, a
secret key and a duration on standard input, connects with tb-mqtt-client on the default MQTT
port and sends the claim request. fwsim's interop test pipes the answers in.

The documented script passes the token as ``TBDeviceMqttClient(host=..., token=...)``;
tb-mqtt-client 1.13.14 has no ``token`` parameter (it is ``username``) and swallows the unknown
keyword, so it connects without a username and is refused ("Not authorized") - by a real
ThingsBoard and by fwsim alike. The first argument names the keyword to use (default ``token``,
as documented; ``username`` works).
"""

import sys

from tb_device_mqtt import TBDeviceMqttClient


def ask() -> dict[str, object]:
    print("device claiming example")
    host = input("host (blank: localhost): ") or "localhost"
    token = ""
    while not token:
        token = input("device access token: ")
        if not token:
            print("an access token is required")
    secret_key = input("secret key for the claiming request: ")
    if not secret_key:
        print("no secret: the server needs claimingData in the device's server attributes")
    duration = input("duration in ms (blank: 30000): ")
    return {"host": host, "token": token, "secret_key": secret_key,
            "duration_ms": int(duration) if duration else 30000}


if __name__ == "__main__":
    config = ask()
    keyword = sys.argv[1] if len(sys.argv) > 1 else "token"
    client = TBDeviceMqttClient(host=config["host"], **{keyword: config["token"]})
    client.connect()
    client.claim(secret_key=config["secret_key"], duration=config["duration_ms"]).get()
    print("claiming request was sent; now claim the device as a customer")
    client.disconnect()
