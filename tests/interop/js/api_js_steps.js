'use strict';
// Drives the emulated cloud with the unmodified particle-api-js 12.0.3, one step at a time.
// Usage: node api_js_steps.js '<json {"baseUrl": ..., "steps": [...]}>'
// Prints one JSON object per step: {"step": name, "ok": true, "value": ...} or
// {"step": name, "ok": false, "statusCode": ..., "body": ...}.
// Steps: login {username, password}; createCustomer {email, password, product, clientId,
// clientSecret}; claimDevice {deviceId, auth}; getClaimCode {product, auth};
// listDevices {product?, auth}.
const path = require('path');
const Particle = require(path.join(__dirname, '..', 'node', 'node_modules', 'particle-api-js'));

const config = JSON.parse(process.argv[2]);
const particle = new Particle({ baseUrl: config.baseUrl });

const actions = {
  async login(step) {
    const reply = await particle.login({ username: step.username, password: step.password });
    return reply.body.access_token;
  },
  async createCustomer(step) {
    const asProduct = new Particle({ baseUrl: config.baseUrl, clientId: step.clientId,
      clientSecret: step.clientSecret });
    const reply = await asProduct.createCustomer({ email: step.email, password: step.password,
      product: step.product });
    return reply.body.access_token;
  },
  async claimDevice(step) {
    const reply = await particle.claimDevice({ deviceId: step.deviceId, auth: step.auth });
    return reply.body;
  },
  async getClaimCode(step) {
    const reply = await particle.getClaimCode({ product: step.product, auth: step.auth });
    return reply.body.claim_code;
  },
  async listDevices(step) {
    const reply = await particle.listDevices({ product: step.product, auth: step.auth });
    return reply.body;
  }
};

(async () => {
  for (const step of config.steps) {
    const out = { step: step.do };
    try {
      out.value = await actions[step.do](step);
      out.ok = true;
    } catch (err) {
      out.ok = false;
      out.statusCode = err.statusCode;
      out.body = err.body;
      out.message = String(err.message || err);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  }
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
