"""pyserial URL handler package: ``fwsim://<device name>`` (module ``protocol_fwsim``).

pyserial has no plugin entry point; ``transports.serial.enable_pyserial_urls()`` appends this
package to ``serial.protocol_handler_packages``.
"""

from __future__ import annotations

__all__: list[str] = []
