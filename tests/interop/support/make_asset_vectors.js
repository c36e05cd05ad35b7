'use strict';
// Writes the asset vectors of tests/unit/hal/vectors with binary-version-reader's own code:
// asset-hello-txt.bin (createAssetModule: the data compressed, a HASH and a NAME extension) and
// p2-user-part-9-asset.bin (createApplicationAndAssetBundle adds the ASSET_DEPENDENCY extension
// to APP_BIN's prefix and moves its start left). APP_BIN is the P2 user part that
// tests/unit/hal/test_asset_modules.py's `small_user_part()` builds.
// Usage: node tests/interop/support/make_asset_vectors.js APP_BIN OUT_DIR
const fs = require('fs');
const path = require('path');
const repo = path.resolve(__dirname, '..', '..', '..');
const reader = require(path.join(repo, 'tests/interop/node/node_modules/binary-version-reader'));

(async () => {
	const [appPath, out] = process.argv.slice(2);
	const data = Buffer.from('hello asset world\n'.repeat(50));
	fs.writeFileSync(path.join(out, 'asset-hello-txt.bin'),
		await reader.createAssetModule(data, 'hello.txt'));
	const bundle = await reader.createApplicationAndAssetBundle(
		{ name: 'app.bin', data: fs.readFileSync(appPath) }, [{ name: 'hello.txt', data }]);
	const { application } = await reader.unpackApplicationAndAssetBundle(bundle);
	fs.writeFileSync(path.join(out, 'p2-user-part-9-asset.bin'), application.data);
})().catch(error => {
	process.stderr.write(`${error.stack || error}\n`);
	process.exit(1);
});
