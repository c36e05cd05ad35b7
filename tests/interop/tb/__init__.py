"""Helpers of the ThingsBoard interoperability tests (a served emulator, isolated paho-mqtt)."""
