// Asks a SoftAP that should be gone (the device has left listening mode) for deviceInfo and
// scan with the unmodified @particle/softap-setup, and reports what each callback got.
//
// usage: node softap_setup_gone.js --protocol tcp|http --host H --port P
//
// Prints one JSON line per call ({"step":..., "error":..., "code":..., "value":...}) and exits
// 0 when every call called back with an error. A connection the server accepts and then closes
// cleanly without a byte makes softap-setup 4.1.2 call back with neither an error nor JSON, and
// deviceInfo/scan then throw a TypeError outside any callback: the process dies (exit 1 with a
// stack trace), which is the failure this script exists to catch.
'use strict';

const path = require('path');
const nodeModules = path.resolve(__dirname, '..', 'node', 'node_modules');
const SoftAPSetup = require(path.join(nodeModules, '@particle', 'softap-setup'));

function parseArgs(argv) {
	const args = { protocol: 'tcp', host: '127.0.0.1' };
	for (let i = 2; i < argv.length; i += 2) {
		args[argv[i].replace(/^--/, '')] = argv[i + 1];
	}
	if (!args.port) {
		throw new Error('missing --port');
	}
	return args;
}

function call(fn) {
	return new Promise((resolve) => {
		let settled = false;
		fn((err, value) => {
			if (!settled) {
				settled = true;
				resolve({ err, value });
			}
		});
	});
}

async function main() {
	const args = parseArgs(process.argv);
	const sap = new SoftAPSetup({
		host: args.host, port: Number(args.port), protocol: args.protocol, timeout: 4000,
	});
	let allErrors = true;
	for (const [step, fn] of [['deviceInfo', (cb) => sap.deviceInfo(cb)],
		['scan', (cb) => sap.scan(cb)]]) {
		const r = await call(fn);
		allErrors = allErrors && Boolean(r.err);
		process.stdout.write(JSON.stringify({
			step, error: r.err ? r.err.message : null, code: r.err ? r.err.code || null : null,
			value: r.value === undefined ? null : r.value,
		}) + '\n');
	}
	process.exit(allErrors ? 0 : 1);
}

main().catch((err) => {
	process.stdout.write(JSON.stringify({ step: 'fatal', error: String(err && err.stack || err) }) + '\n');
	process.exit(1);
});
