'use strict';
/*
 * Preload for unmodified Node.js tools (particle-cli, scripts using particle-usb):
 *
 *     FWSIM_USB_BRIDGE=127.0.0.1:PORT node --require /path/to/transports/usb/js/preload.js app.js
 *     NODE_OPTIONS="--require /path/to/preload.js" FWSIM_USB_BRIDGE=127.0.0.1:PORT particle usb list
 *
 * How this works: it wraps Node's module loader; whenever any module loads `usb` (node-usb),
 * that module object's `getDeviceList` is replaced (Object.defineProperty, since node-usb
 * re-exports it as a getter) by one that lists the devices of the fwsim USB bridge. If node-usb
 * itself cannot load (no native build for this machine), a minimal stand-in object with only
 * `getDeviceList` is returned instead - all particle-usb needs. Nothing is printed unless the
 * bridge cannot be reached.
 */

const Module = require('module');
const fwsim = require('./fwsim-usb');

const address = process.env.FWSIM_USB_BRIDGE;

if (!address) {
	process.stderr.write('fwsim: FWSIM_USB_BRIDGE is not set; the USB preload does nothing\n');
} else {
	const patched = new WeakSet();
	const originalLoad = Module._load;
	Module._load = function load(request, parent, isMain) {
		if (request !== 'usb') {
			return originalLoad.apply(this, arguments);
		}
		let exported;
		try {
			exported = originalLoad.apply(this, arguments);
		} catch (err) {
			exported = { getDeviceList: () => [] };
		}
		if (exported && (typeof exported === 'object' || typeof exported === 'function') && !patched.has(exported)) {
			fwsim.install(exported, address);
			patched.add(exported);
		}
		return exported;
	};
}
