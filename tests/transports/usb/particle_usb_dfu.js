'use strict';
// Unmodified particle-usb 4.1.0 sets the claim code by DFU through fwsim's USB bridge:
// the control request DFU_MODE (50), then readOverDfu / writeOverDfu on alt setting 1 (the DCT)
// at offset 1762 with `leave`, as `dfu-util -a 1 -s 1762:leave -D code.bin` would.
// Usage: FWSIM_USB_BRIDGE=HOST:PORT node particle_usb_dfu.js CODE  -> one JSON line.
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const particleUsb = require(path.join(repo, 'tests/interop/node/node_modules/particle-usb'));
const fwsim = require(path.join(repo, 'transports/usb/js/fwsim-usb.js'));

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

(async () => {
	const address = process.env.FWSIM_USB_BRIDGE;
	const code = Buffer.from(process.argv[2], 'latin1');
	const out = {};
	let [native] = await fwsim.listDevices(address);
	let device = await particleUsb.openNativeUsbDevice(native);
	out.cdcProductId = device.productId;
	const reply = await device.sendControlRequest(50, null); // DFU_MODE
	out.dfuModeResult = reply.result;
	await device.close();
	for (let i = 0; i < 500; i++) {
		const listed = await fwsim.listDevices(address);
		if (listed.length && listed[0].deviceDescriptor.idProduct !== out.cdcProductId) {
			native = listed[0];
			break;
		}
		await sleep(20);
	}
	device = await particleUsb.openNativeUsbDevice(native);
	out.inDfuMode = device.isInDfuMode;
	out.dfuProductId = device.productId;
	out.before = (await device.readOverDfu({ altSetting: 1, startAddr: 1762, size: 64 })).toString('hex');
	// The DCT segment ('1*016Ke') is readable and writable, not erasable: write without erasing.
	await device.writeOverDfu(code, { altSetting: 1, startAddr: 1762, noErase: true, leave: true });
	await device.close();
	process.stdout.write(JSON.stringify(out) + '\n');
})().catch(error => {
	process.stderr.write(`${error.stack || error}\n`);
	process.exit(1);
});
