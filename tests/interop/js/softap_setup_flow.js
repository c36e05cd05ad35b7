// Drives a (simulated) Photon through SoftAP setup with the unmodified @particle/softap-setup.
//
// usage: node softap_setup_flow.js --protocol tcp|http --host H --port P --claim-code CODE
//                                  --ssid SSID --password PASSWORD [--security wpa2_aes]
//
// Steps: deviceInfo, publicKey, scan, a refused set (error path), setClaimCode, configure,
// connect. Prints one JSON line per step ({"step":..., "ok":..., ...}) and exits 0 when every
// step behaved as expected, 1 otherwise. softap-setup calls back twice when a reply has r != 0
// (cb(err) and then cb() again): each step settles on its first callback only.
'use strict';

const path = require('path');
const nodeModules = path.resolve(__dirname, '..', 'node', 'node_modules');
const SoftAPSetup = require(path.join(nodeModules, '@particle', 'softap-setup'));

function parseArgs(argv) {
	const args = { protocol: 'tcp', host: '127.0.0.1', security: 'wpa2_aes' };
	for (let i = 2; i < argv.length; i += 2) {
		args[argv[i].replace(/^--/, '').replace(/-([a-z])/g, (m, c) => c.toUpperCase())] = argv[i + 1];
	}
	for (const required of ['port', 'claimCode', 'ssid', 'password']) {
		if (!args[required]) {
			throw new Error('missing --' + required);
		}
	}
	return args;
}

function call(fn) {
	return new Promise((resolve) => {
		let settled = false;
		try {
			fn((err, value) => {
				if (settled) {
					return; // the library's second callback after an error
				}
				settled = true;
				resolve({ err, value });
			});
		} catch (err) {
			if (!settled) {
				settled = true;
				resolve({ err, value: undefined });
			}
		}
	});
}

function report(step, ok, fields) {
	process.stdout.write(JSON.stringify(Object.assign({ step, ok }, fields)) + '\n');
	return ok;
}

async function main() {
	const args = parseArgs(process.argv);
	const sap = new SoftAPSetup({
		host: args.host, port: Number(args.port), protocol: args.protocol, timeout: 8000,
	});
	let allOk = true;
	const check = (ok) => { allOk = allOk && ok; };

	let r = await call((cb) => sap.deviceInfo(cb));
	check(report('deviceInfo', !r.err && /^[0-9a-f]{24}$/.test(r.value.id), {
		error: r.err && r.err.message, id: r.value && r.value.id, claimed: r.value && r.value.claimed,
	}));

	r = await call((cb) => sap.publicKey(cb));
	check(report('publicKey', !r.err && /BEGIN PUBLIC KEY/.test(r.value || ''), {
		error: r.err && r.err.message, keyBits: sap.__publicKey ? sap.__publicKey.getKeySize() : null,
	}));

	r = await call((cb) => sap.scan(cb));
	const scans = r.value || [];
	check(report('scan', !r.err && scans.some((s) => s.ssid === args.ssid), {
		error: r.err && r.err.message, scans,
		securities: scans.map((s) => sap.securityLookup(s.sec)),
	}));

	r = await call((cb) => sap.set({ k: 'zz', v: 'x' }, cb));
	check(report('setUnknownKey', Boolean(r.err) && /non-zero/.test(r.err.message), {
		error: r.err && r.err.message,
	}));

	r = await call((cb) => sap.setClaimCode(args.claimCode, cb));
	check(report('setClaimCode', !r.err, { error: r.err && r.err.message }));

	r = await call((cb) => sap.configure({
		ssid: args.ssid, security: args.security, password: args.password, channel: 6,
	}, cb));
	check(report('configure', !r.err && r.value && r.value.r === 0, {
		error: r.err && r.err.message, reply: r.value,
	}));

	r = await call((cb) => sap.connect(0, cb));
	check(report('connect', !r.err, { error: r.err && r.err.message }));

	process.exit(allOk ? 0 : 1);
}

main().catch((err) => {
	report('fatal', false, { error: String(err && err.stack || err) });
	process.exit(1);
});
