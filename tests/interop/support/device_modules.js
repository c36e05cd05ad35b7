'use strict';
// Prints what unmodified particle-usb 4.1.0 reads of a device behind `fwsim serve --usb-bridge`:
// {"modules": getFirmwareModuleInfo(), "assets": getAssetInfo()} as one JSON line.
// Usage: FWSIM_USB_BRIDGE=HOST:PORT node device_modules.js
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const particleUsb = require(path.join(repo, 'tests/interop/node/node_modules/particle-usb'));
const fwsim = require(path.join(repo, 'transports/usb/js/fwsim-usb.js'));

(async () => {
	const [native] = await fwsim.listDevices(process.env.FWSIM_USB_BRIDGE);
	const device = await particleUsb.openNativeUsbDevice(native);
	try {
		const modules = (await device.getFirmwareModuleInfo()).map(m => ({
			type: m.type, index: m.index, version: m.version, size: m.size, hash: m.hash,
			validityErrors: m.validityErrors,
			assetDependencies: (m.assetDependencies || []).map(a => ({ name: a.name, hash: a.hash }))
		}));
		const assets = await device.getAssetInfo();
		process.stdout.write(JSON.stringify({ modules, assets }) + '\n');
	} finally {
		await device.close();
	}
})().catch(error => {
	process.stderr.write(`${error.stack || error}\n`);
	process.exit(1);
});
