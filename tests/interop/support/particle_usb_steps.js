'use strict';
// Drives unmodified particle-usb 4.1.0 against a device behind `fwsim serve --usb-bridge`.
// Usage: node particle_usb_steps.js '<json list of steps>'   (FWSIM_USB_BRIDGE=HOST:PORT)
// Prints one JSON object per step: {"step": name, "ok": true, "value": ...} or {"error": ...}.
// Steps: open (openNativeUsbDevice on fwsim's node-usb stand-in), openById (particle-usb's
// own enumeration, needs the preload), isClaimed, setClaimCode, getDeviceId, systemVersion,
// deviceMode, joinNewWifiNetwork, echo, badType, reset, close, wait.
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const particleUsb = require(path.join(repo, 'tests/interop/node/node_modules/particle-usb'));
const fwsim = require(path.join(repo, 'transports/usb/js/fwsim-usb.js'));

const steps = JSON.parse(process.argv[2] || '[]');
let device = null;

const actions = {
	async open() {
		const [native] = await fwsim.listDevices(process.env.FWSIM_USB_BRIDGE);
		device = await particleUsb.openNativeUsbDevice(native);
		return { type: device.type, id: device.id, firmwareVersion: device.firmwareVersion, platformId: device.platformId };
	},
	async openById(step) {
		device = await particleUsb.openDeviceById(step.id);
		return { type: device.type, id: device.id, firmwareVersion: device.firmwareVersion };
	},
	async listDevices() {
		const devices = await particleUsb.getDevices();
		return devices.map(d => ({ type: d.type, vendorId: d.vendorId, productId: d.productId }));
	},
	isClaimed: () => device.isClaimed(),
	setClaimCode: step => device.setClaimCode(step.code),
	getDeviceId: () => device.getDeviceId(),
	async systemVersion() {
		return (await device.sendProtobufRequest('GetSystemVersionRequest')).version;
	},
	deviceMode: () => device.getDeviceMode(),
	joinNewWifiNetwork: step => device.joinNewWifiNetwork(step.network),
	async echo(step) {
		const data = Buffer.alloc(step.size, 0x5a);
		const reply = await device.sendControlRequest(1, data);
		return { result: reply.result, size: reply.data ? reply.data.length : 0, same: !!reply.data && reply.data.equals(data) };
	},
	async badType() {
		return device.sendControlRequest(0x10000, null);
	},
	async unsupported() {
		return (await device.sendControlRequest(9999, null)).result;
	},
	reset: () => device.reset(),
	close: () => device.close(),
	wait: step => new Promise(resolve => setTimeout(resolve, step.ms))
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
