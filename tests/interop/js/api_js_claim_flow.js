// Drives the emulated cloud with the unmodified particle-api-js 12.0.3 (tests/interop/node).
// Usage: node api_js_claim_flow.js '<json config>'
// Prints one JSON object per line: {"step": ..., ...}; the Python test answers the
// {"step": "claim_code"} line by setting that code on the simulated device.
'use strict';

const fs = require('fs');
const path = require('path');
const Particle = require('particle-api-js');

// the package's "exports" hide package.json: read it next to the resolved entry point
function packageVersion() {
  let dir = path.dirname(require.resolve('particle-api-js'));
  while (!fs.existsSync(path.join(dir, 'package.json'))
    || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== 'particle-api-js') {
    dir = path.dirname(dir);
  }
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
}
const version = packageVersion();

const config = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function failure(err) {
  return { statusCode: err.statusCode, body: err.body, errorDescription: err.errorDescription };
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(100);
  }
}

async function main() {
  const base = { baseUrl: config.baseUrl };
  const particle = new Particle(base);
  const asProduct = new Particle({ ...base, clientId: config.clientId,
    clientSecret: config.clientSecret });
  say({ step: 'version', version });

  // 1. the product developer logs in (default client particle-api)
  const login = await particle.login({ username: config.developer, password: config.password });
  const devToken = login.body.access_token;
  say({ step: 'login', statusCode: login.statusCode, tokenType: login.body.token_type,
    expiresIn: login.body.expires_in });

  // 2. the app backend creates customer B with the product's OAuth client
  const created = await asProduct.createCustomer({ email: config.customerB,
    password: 'b-password', product: config.product });
  const bToken = created.body.access_token;
  say({ step: 'create_customer', statusCode: created.statusCode, scope: created.body.scope });

  // 3. B gets a product claim code
  const claim = await particle.getClaimCode({ product: config.product, auth: bToken });
  say({ step: 'claim_code_created', statusCode: claim.statusCode,
    length: claim.body.claim_code.length, deviceIds: claim.body.device_ids });

  // 4. B tries claimDevice on customer A's device: refused
  let conflict = null;
  try {
    await particle.claimDevice({ deviceId: config.deviceId, auth: bToken });
  } catch (err) {
    conflict = failure(err);
  }
  say({ step: 'claim_conflict', conflict });

  // 5. the developer watches the product's event stream
  const stream = await particle.getEventStream({ product: config.product, auth: devToken });
  const events = [];
  stream.on('event', (event) => events.push(event));

  // 6. the phone sets the code on the device (done by the Python side), which sends it
  say({ step: 'claim_code', code: claim.body.claim_code });
  const seen = await until(() => events.find((e) => e.name === 'spark/device/claim/code'
    && e.data === claim.body.claim_code), 20000, 'spark/device/claim/code');
  say({ step: 'event', name: seen.name, coreid: seen.coreid, hasPublishedAt: !!seen.published_at });

  // 7. B's device list shows the device once the cloud consumed the code
  const mine = await until(async () => {
    const listed = await particle.listDevices({ auth: bToken });
    return listed.body.some((d) => d.id === config.deviceId) ? listed.body : null;
  }, 20000, "B's device list");
  const product = await particle.listDevices({ product: config.product, auth: devToken });
  const record = product.body.devices.find((d) => d.id === config.deviceId);
  const a = await particle.listDevices({ auth: config.customerAToken });
  say({ step: 'result', mine: mine.map((d) => d.id), productOwner: record && record.owner,
    productId: record && record.product_id, aDevices: a.body.map((d) => d.id),
    eventNames: [...new Set(events.map((e) => e.name))] });
  stream.abort();
}

main().then(() => process.exit(0), (err) => {
  say({ step: 'error', message: String(err && (err.stack || err.message || err)),
    detail: err && err.body });
  process.exit(1);
});
