'use strict';
// Writes the module binaries of tests/unit/hal/vectors with binary-version-reader's own test
// helper (createFirmwareBinary: the prefix, the suffix with product data, the SHA-256 and the
// big-endian CRC-32). Run once: node tests/interop/support/make_module_vectors.js OUT_DIR
// The data half of each binary is random, so a rerun writes different bytes (and new hashes).
const fs = require('fs');
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const reader = require(path.join(repo, 'tests/interop/node/node_modules/binary-version-reader'));
const { createFirmwareBinary } = require(path.join(repo,
	'tests/interop/node/node_modules/binary-version-reader/lib/firmwareTestHelper'));
const { FunctionType } = reader.ModuleInfo;

const out = process.argv[2];
const vectors = {
	// P2 bootloader (module_bootloader: 0x08004000..0x08014000)
	'p2-bootloader-2301.bin': { platformId: 32, moduleFunction: FunctionType.BOOTLOADER,
		moduleIndex: 0, moduleVersion: 2301, moduleStartAddress: 0x08004000, dataSize: 96 },
	// P2 user part (module_user: fixed end 0x08600000), depending on system part 1 v6200
	'p2-user-part-7.bin': { platformId: 32, moduleFunction: FunctionType.USER_PART,
		moduleIndex: 1, moduleVersion: 7, moduleStartAddress: 0x085fe000, dataSize: 160,
		productId: 32, productVersion: 7,
		deps: [{ func: FunctionType.SYSTEM_PART, index: 1, version: 6200 }] },
};
for (const [name, options] of Object.entries(vectors)) {
	fs.writeFileSync(path.join(out, name), createFirmwareBinary(options));
}
