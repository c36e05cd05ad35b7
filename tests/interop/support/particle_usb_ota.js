'use strict';
// Drives particle-usb 4.1.0's updateFirmware() against a device behind `fwsim serve --usb-bridge`.
// Usage: node particle_usb_ota.js '<json list of steps>'   (FWSIM_USB_BRIDGE=HOST:PORT)
// Prints one JSON object per step: {"step", "ok": true, "value"} or {"ok": false, "error",
// "result"} (the RequestError's result code). Steps: open, updateFirmware (a binary made by
// binary-version-reader's createFirmwareBinary from step.binary; step.corrupt flips one data
// byte), moduleInfo, wait, close.
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const modules = path.join(repo, 'tests/interop/node/node_modules');
const particleUsb = require(path.join(modules, 'particle-usb'));
const { createFirmwareBinary } = require(path.join(modules,
	'binary-version-reader/lib/firmwareTestHelper'));
const fwsim = require(path.join(repo, 'transports/usb/js/fwsim-usb.js'));

const steps = JSON.parse(process.argv[2] || '[]');
let device = null;

const actions = {
	async open() {
		const [native] = await fwsim.listDevices(process.env.FWSIM_USB_BRIDGE);
		device = await particleUsb.openNativeUsbDevice(native);
		return { type: device.type, id: device.id };
	},
	async updateFirmware(step) {
		const binary = createFirmwareBinary(step.binary);
		if (step.corrupt) {
			binary[100] ^= 0xff;
		}
		const events = [];
		await device.updateFirmware(binary, { progress: e => events.push(e.event) });
		return { size: binary.length, sha: binary.slice(-38, -6).toString('hex'),
			chunks: events.filter(e => e === 'downloaded').length, events: [...new Set(events)] };
	},
	async moduleInfo() {
		const list = await device.getFirmwareModuleInfo();
		return list.map(m => ({ type: m.type, index: m.index, version: m.version, size: m.size,
			hash: m.hash, validityErrors: m.validityErrors }));
	},
	wait: step => new Promise(resolve => setTimeout(resolve, step.ms)),
	close: () => device.close()
};

(async () => {
	for (const step of steps) {
		const out = { step: step.do };
		try {
			const value = await actions[step.do](step);
			out.ok = true;
			out.value = value === undefined ? null : value;
		} catch (err) {
			out.ok = false;
			out.error = `${err.name}: ${err.message}`;
			out.result = err.result === undefined ? null : err.result;
		}
		process.stdout.write(JSON.stringify(out) + '\n');
	}
	if (device && device.isOpen) {
		await device.close();
	}
})().catch(err => {
	process.stderr.write(`${err.stack}\n`);
	process.exit(1);
});
