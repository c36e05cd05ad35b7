'use strict';
/*
 * fwsim USB bridge client for Node.js: simulated Particle devices as node-usb devices.
 *
 * How this works
 * --------------
 * `fwsim serve --usb-bridge PORT` carries raw USB control transfers (setup packet + data stage)
 * over a loopback TCP connection; the framing is documented in docs/usb.md (and in
 * transports/usb/bridge_protocol.py). This module speaks it and presents each simulated device
 * as a duck-typed node-usb `Device` (deviceDescriptor, open, close, interface,
 * getStringDescriptor, controlTransfer), so unmodified particle-usb drives it:
 *
 *     const { openNativeUsbDevice } = require('particle-usb');
 *     const fwsim = require('.../transports/usb/js/fwsim-usb.js');
 *     const [dev] = await fwsim.listDevices('127.0.0.1:PORT');   // BridgedUsbDevice objects
 *     const device = await openNativeUsbDevice(dev);
 *
 * node-usb's `getDeviceList()` is synchronous and Node has no synchronous sockets, so
 * `getDeviceList(address)` asks the bridge through a short-lived child process
 * (`node fwsim-usb.js --list ADDRESS`, spawnSync). Device objects are cached per device and
 * enumeration (epoch), as node-usb caches its own: particle-usb keeps state on them. Everything
 * else is asynchronous: one TCP connection per opened device; `controlTransfer` callbacks get
 * node-usb's errors (`LIBUSB_TRANSFER_STALL`, `..._NO_DEVICE`, `..._TIMED_OUT`, `..._ERROR`).
 *
 * `install(usbModule, address)` replaces `usbModule.getDeviceList` (a getter re-export in
 * node-usb, hence Object.defineProperty); preload.js does that for `node --require`.
 * No npm dependencies.
 */

const net = require('net');
const { spawnSync } = require('child_process');

const KIND = {
	LIST: 0x01,
	OPEN: 0x02,
	CONTROL: 0x03,
	LIST_REPLY: 0x81,
	OPEN_REPLY: 0x82,
	CONTROL_REPLY: 0x83,
	ERROR: 0x7f
};
const MAX_FRAME_SIZE = 0x20000;
// Transfer status codes of the bridge -> [node-usb error message, libusb transfer status]
const TRANSFER_ERRORS = {
	1: ['LIBUSB_TRANSFER_STALL', 4],
	2: ['LIBUSB_TRANSFER_NO_DEVICE', 5],
	3: ['LIBUSB_TRANSFER_TIMED_OUT', 2],
	4: ['LIBUSB_TRANSFER_ERROR', 1]
};
const LIBUSB_ENDPOINT_IN = 0x80;

function parseAddress(text) {
	const value = String(text || '').trim();
	const sep = value.lastIndexOf(':');
	const host = sep > 0 ? value.slice(0, sep) : '127.0.0.1';
	const port = Number(sep >= 0 ? value.slice(sep + 1) : value);
	if (!Number.isInteger(port) || port <= 0 || port > 65535) {
		throw new Error(`fwsim: invalid USB bridge address ${JSON.stringify(text)} (expected HOST:PORT)`);
	}
	return { host, port };
}

function bridgeAddress(address) {
	const value = address || process.env.FWSIM_USB_BRIDGE;
	if (!value) {
		throw new Error('fwsim: no USB bridge address (pass one or set FWSIM_USB_BRIDGE=HOST:PORT)');
	}
	return value;
}

function usbError(code) {
	const [message, errno] = TRANSFER_ERRORS[code] || ['LIBUSB_TRANSFER_ERROR', 1];
	const error = new Error(message);
	error.errno = errno;
	return error;
}

function encodeFrame(kind, body = Buffer.alloc(0)) {
	const frame = Buffer.alloc(5 + body.length);
	frame.writeUInt32LE(1 + body.length, 0);
	frame.writeUInt8(kind, 4);
	body.copy(frame, 5);
	return frame;
}

class FrameReader {
	constructor() {
		this._buffer = Buffer.alloc(0);
	}

	push(chunk) {
		this._buffer = Buffer.concat([this._buffer, chunk]);
		const frames = [];
		while (this._buffer.length >= 4) {
			const length = this._buffer.readUInt32LE(0);
			if (length === 0 || length > MAX_FRAME_SIZE) {
				throw new Error(`fwsim: bad frame length ${length} from the USB bridge`);
			}
			if (this._buffer.length < 4 + length) {
				break;
			}
			frames.push({ kind: this._buffer[4], body: this._buffer.subarray(5, 4 + length) });
			this._buffer = this._buffer.subarray(4 + length);
		}
		return frames;
	}
}

/** One TCP connection to the bridge. */
class BridgeConnection {
	constructor(address) {
		const { host, port } = parseAddress(bridgeAddress(address));
		this._reader = new FrameReader();
		this._replies = []; // FIFO of {resolve, reject, kind} for LIST and OPEN
		this._pending = new Map(); // CONTROL tag -> callback(code, data)
		this._nextTag = 1;
		this._error = null;
		this._socket = net.connect({ host, port });
		this._socket.setNoDelay(true);
		this._socket.on('data', chunk => this._onData(chunk));
		this._socket.on('error', err => this._fail(new Error(`fwsim: USB bridge connection failed: ${err.message}`)));
		this._socket.on('close', () => this._fail(new Error('fwsim: USB bridge connection closed')));
	}

	_onData(chunk) {
		let frames;
		try {
			frames = this._reader.push(chunk);
		} catch (err) {
			this._fail(err);
			this._socket.destroy();
			return;
		}
		for (const frame of frames) {
			if (frame.kind === KIND.CONTROL_REPLY) {
				const tag = frame.body.readUInt32LE(0);
				const callback = this._pending.get(tag);
				this._pending.delete(tag);
				if (callback) {
					callback(frame.body[4], Buffer.from(frame.body.subarray(5)));
				}
			} else if (frame.kind === KIND.ERROR) {
				this._fail(new Error(`fwsim: USB bridge error: ${frame.body.toString('utf8')}`));
			} else {
				const waiter = this._replies.shift();
				if (!waiter) {
					continue;
				}
				if (frame.kind !== waiter.kind) {
					waiter.reject(new Error(`fwsim: unexpected frame 0x${frame.kind.toString(16)} from the USB bridge`));
				} else {
					waiter.resolve(Buffer.from(frame.body));
				}
			}
		}
	}

	_fail(error) {
		if (this._error) {
			return;
		}
		this._error = error;
		for (const waiter of this._replies.splice(0)) {
			waiter.reject(error);
		}
		for (const callback of this._pending.values()) {
			callback(4, Buffer.alloc(0));
		}
		this._pending.clear();
	}

	_request(kind, body, replyKind) {
		if (this._error) {
			return Promise.reject(this._error);
		}
		return new Promise((resolve, reject) => {
			this._replies.push({ resolve, reject, kind: replyKind });
			this._socket.write(encodeFrame(kind, body));
		});
	}

	async list() {
		const body = await this._request(KIND.LIST, Buffer.alloc(0), KIND.LIST_REPLY);
		return JSON.parse(body.toString('utf8')).devices;
	}

	async open(serialNumber, epoch) {
		const serial = Buffer.from(serialNumber, 'utf8');
		const body = Buffer.alloc(4 + serial.length);
		body.writeUInt32LE(epoch >>> 0, 0);
		serial.copy(body, 4);
		const reply = await this._request(KIND.OPEN, body, KIND.OPEN_REPLY);
		if (reply[0] !== 0) {
			throw usbError(2);
		}
		return reply.readUInt32LE(1);
	}

	// callback(code, data): code 0 = completed
	control(bmRequestType, bRequest, wValue, wIndex, wLength, data, timeoutMs, callback) {
		if (this._error) {
			process.nextTick(callback, 4, Buffer.alloc(0));
			return;
		}
		const tag = this._nextTag;
		this._nextTag = (this._nextTag + 1) >>> 0 || 1;
		const body = Buffer.alloc(16 + data.length);
		body.writeUInt32LE(tag, 0);
		body.writeUInt32LE(timeoutMs >>> 0, 4);
		body.writeUInt8(bmRequestType, 8);
		body.writeUInt8(bRequest, 9);
		body.writeUInt16LE(wValue, 10);
		body.writeUInt16LE(wIndex, 12);
		body.writeUInt16LE(wLength, 14);
		data.copy(body, 16);
		this._pending.set(tag, callback);
		this._socket.write(encodeFrame(KIND.CONTROL, body));
	}

	close() {
		this._error = this._error || new Error('fwsim: USB bridge connection closed');
		this._socket.destroy();
	}
}

function parseDeviceDescriptor(hex) {
	const d = Buffer.from(hex, 'hex');
	return {
		bLength: d[0],
		bDescriptorType: d[1],
		bcdUSB: d.readUInt16LE(2),
		bDeviceClass: d[4],
		bDeviceSubClass: d[5],
		bDeviceProtocol: d[6],
		bMaxPacketSize0: d[7],
		idVendor: d.readUInt16LE(8),
		idProduct: d.readUInt16LE(10),
		bcdDevice: d.readUInt16LE(12),
		iManufacturer: d[14],
		iProduct: d[15],
		iSerialNumber: d[16],
		bNumConfigurations: d[17]
	};
}

class BridgedInterface {
	constructor(number, device) {
		this.interfaceNumber = number;
		this.altSetting = 0;
		this.endpoints = [];
		this._device = device;
	}

	claim() {}

	release(closeEndpoints, callback) {
		const cb = typeof closeEndpoints === 'function' ? closeEndpoints : callback;
		if (cb) {
			process.nextTick(cb);
		}
	}

	setAltSetting(altSetting, callback) {
		// A standard SET_INTERFACE request (the DFU bootloader selects a memory with it).
		this._device.controlTransfer(0x01, 11, altSetting, this.interfaceNumber, Buffer.alloc(0), error => {
			if (!error) {
				this.altSetting = altSetting;
			}
			if (callback) {
				callback(error);
			}
		});
	}

	isKernelDriverActive() {
		return false;
	}

	detachKernelDriver() {}

	attachKernelDriver() {}
}

/** A simulated device behind the bridge, shaped like a node-usb `Device`. */
class BridgedUsbDevice {
	constructor(info, address) {
		this._info = info;
		this._address = bridgeAddress(address);
		this.deviceDescriptor = parseDeviceDescriptor(info.deviceDescriptor);
		this.busNumber = info.busNumber;
		this.deviceAddress = info.deviceAddress;
		this.portNumbers = [Number(info.index || 0) + 1];
		this.timeout = 1000; // node-usb's default; particle-usb sets 5000
		this.interfaces = null;
		this._connection = null;
		this._opened = null;
	}

	get serialNumber() {
		return this._info.serialNumber;
	}

	open() {
		if (this._connection) {
			return;
		}
		const connection = new BridgeConnection(this._address);
		this._connection = connection;
		this._opened = connection.open(this._info.serialNumber, this._info.epoch);
		this._opened.catch(() => {}); // reported by the transfers
		this.interfaces = [new BridgedInterface(0, this), new BridgedInterface(1, this)];
	}

	close() {
		if (this._connection) {
			this._connection.close();
		}
		this._connection = null;
		this._opened = null;
		this.interfaces = null;
	}

	interface(number) {
		if (!this.interfaces) {
			throw new Error('Device must be open before searching for interfaces');
		}
		return this.interfaces[number];
	}

	setConfiguration(value, callback) {
		if (callback) {
			process.nextTick(callback);
		}
	}

	reset(callback) {
		if (callback) {
			process.nextTick(callback);
		}
	}

	getStringDescriptor(index, callback) {
		if (index === 0) {
			callback();
			return;
		}
		this.controlTransfer(LIBUSB_ENDPOINT_IN, 6, (3 << 8) | index, 0x0409, 255, (error, buffer) => {
			if (error) {
				callback(error);
				return;
			}
			callback(undefined, Buffer.isBuffer(buffer) ? buffer.toString('utf16le', 2) : undefined);
		});
	}

	controlTransfer(bmRequestType, bRequest, wValue, wIndex, dataOrLength, callback) {
		const isIn = !!(bmRequestType & LIBUSB_ENDPOINT_IN);
		if (isIn && !(Number.isInteger(dataOrLength) && dataOrLength >= 0)) {
			throw new TypeError('Expected size number for IN transfer (based on bmRequestType)');
		}
		if (!isIn && !Buffer.isBuffer(dataOrLength) && !(dataOrLength instanceof Uint8Array)) {
			throw new TypeError('Expected buffer for OUT transfer (based on bmRequestType)');
		}
		const data = isIn ? Buffer.alloc(0) : Buffer.from(dataOrLength);
		const wLength = isIn ? dataOrLength : data.length;
		const done = (error, result) => {
			if (callback) {
				callback.call(this, error, result);
			}
		};
		if (!this._connection) {
			process.nextTick(done, usbError(4));
			return this;
		}
		const connection = this._connection;
		this._opened.then(() => {
			connection.control(bmRequestType, bRequest, wValue, wIndex, wLength, data, this.timeout || 0,
				(code, reply) => {
					if (code !== 0) {
						done(usbError(code));
					} else {
						done(undefined, isIn ? reply : data.length);
					}
				});
		}, () => done(usbError(2)));
		return this;
	}
}

async function listDevices(address) {
	const addr = bridgeAddress(address);
	const connection = new BridgeConnection(addr);
	try {
		return (await connection.list()).map(info => cachedDevice(info, addr));
	} finally {
		connection.close();
	}
}

const deviceCache = new Map();

function cachedDevice(info, address) {
	const key = `${address}/${info.serialNumber}/${info.epoch}`;
	let device = deviceCache.get(key);
	if (!device) {
		device = new BridgedUsbDevice(info, address);
		deviceCache.set(key, device);
	}
	return device;
}

let warned = false;

function listDevicesSync(address) {
	const addr = bridgeAddress(address);
	const env = Object.assign({}, process.env);
	delete env.NODE_OPTIONS; // the helper must not load the preload module again
	const child = spawnSync(process.execPath, [__filename, '--list', addr], { env, encoding: 'utf8', timeout: 10000 });
	if (child.status !== 0) {
		if (!warned) {
			warned = true;
			process.stderr.write(`fwsim: cannot list the devices on the USB bridge ${addr}: ${(child.stderr || child.error || '').toString().trim()}\n`);
		}
		return [];
	}
	return JSON.parse(child.stdout).map(info => cachedDevice(info, addr));
}

function getDeviceList(address) {
	return listDevicesSync(address);
}

function install(usbModule, address) {
	const addr = bridgeAddress(address);
	Object.defineProperty(usbModule, 'getDeviceList', {
		value: () => getDeviceList(addr),
		configurable: true,
		enumerable: true,
		writable: true
	});
	return usbModule;
}

module.exports = {
	BridgeConnection,
	BridgedUsbDevice,
	getDeviceList,
	install,
	listDevices,
	listDevicesSync,
	parseAddress
};

if (require.main === module && process.argv[2] === '--list') {
	const connection = new BridgeConnection(process.argv[3]);
	connection.list().then(devices => {
		process.stdout.write(JSON.stringify(devices));
		connection.close();
	}, err => {
		process.stderr.write(`${err.message}\n`);
		process.exit(1);
	});
}
