"""Run with paho-mqtt 2.x on sys.path: connect with the protocol level given, publish a claim at
QoS 1, wait for the PUBACK, print ``OK <rc>``. Arguments: host port token level secret."""

import sys
import threading

import paho.mqtt.client as mqtt

host, port, token, level, secret = sys.argv[1:6]
protocol = mqtt.MQTTv5 if level == "5" else mqtt.MQTTv311
assert mqtt.__file__ and int(__import__("paho.mqtt").mqtt.__version__.split(".")[0]) == 2
connected = threading.Event()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-{level}",
                     protocol=protocol)
client.username_pw_set(token)
client.on_connect = lambda c, u, f, rc, p: connected.set() if rc == 0 else print("RC", rc)
client.connect(host, int(port), keepalive=30)
client.loop_start()
assert connected.wait(10), "no CONNACK"
info = client.publish("v1/devices/me/claim", f'{{"secretKey":"{secret}","durationMs":60000}}',
                      qos=1)
info.wait_for_publish(10)
print("OK", info.rc, info.is_published())
client.disconnect()
client.loop_stop()
