"""Helpers of the USB / serial interoperability tests (real particle-usb, particle-cli, pty)."""
