// Interoperability: the `jose` library and Node's own fetch against a live
// Handoff. Nothing here uses Handoff's code: the token requests are plain
// RFC 8693 / RFC 7662 / RFC 7009 form posts, and `jose` verifies the issued
// tokens against the published JWKS.
//
// HANDOFF_URL (base URL, also the issuer) and HANDOFF_ADMIN_TOKEN (bootstrap
// admin token) name a server running with --dev; .ci/interop.sh starts one.
// Identities get a random suffix, so this suite can share a server.
//
// Run: node --test interop.test.mjs

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, test } from 'node:test';
import * as jose from 'jose';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const TT_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const AUDIENCE = 'https://node.example';

const SCHEMA =
  'entity Doc; ' +
  'action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] }; ' +
  'action read, write appliesTo { principal: [Human, Agent, Service], resource: [Doc] };';
const POLICIES =
  'permit(principal, action == Action::"delegate", resource); ' +
  'permit(principal, action == Action::"read", resource);';

function env(name) {
  const value = (process.env[name] ?? '').trim();
  if (!value) {
    // Not a skip: a run without a server proves nothing and must fail.
    throw new Error(`${name} is not set; run .ci/interop.sh, or start \`handoff serve --dev\` ` +
      'and set HANDOFF_URL and HANDOFF_ADMIN_TOKEN');
  }
  return value;
}

const BASE = env('HANDOFF_URL').replace(/\/+$/, '');
const ADMIN = env('HANDOFF_ADMIN_TOKEN');

async function call(method, url, { headers = {}, json, form } = {}, ...expected) {
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers = { 'content-type': 'application/json', ...headers };
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }
  const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  assert.ok(expected.includes(response.status),
    `${method} ${url} -> ${response.status}: ${text}`);
  return { response, body: text ? JSON.parse(text) : null };
}

const admin = (method, path, json, ...expected) =>
  call(method, BASE + path, { headers: { authorization: `Bearer ${ADMIN}` }, json }, ...expected);

// RFC 6749 §2.3.1: client id and secret are form-urlencoded, then joined
// with ':' and base64-encoded. Handoff's client ids contain ':'.
const formEncode = (s) => new URLSearchParams({ v: s }).toString().slice(2);
const basic = (id, secret) =>
  'Basic ' + Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64');

let metadata;
let ids;
const creds = {};

before(async () => {
  metadata = (await call('GET', `${BASE}/.well-known/oauth-authorization-server`, {}, 200)).body;
  await admin('PUT', '/v1/policies',
    { files: { 'schema.cedarschema': SCHEMA, 'policies.cedar': POLICIES } }, 200, 201);
  const suffix = randomBytes(4).toString('hex');
  ids = {
    alice: `human:alice-node-${suffix}@example.com`,
    bot: `agent:bot-node-${suffix}`,
    search: `service:search-node-${suffix}`,
  };
  await admin('POST', '/v1/identities', { id: ids.alice }, 201);
  for (const who of ['bot', 'search']) {
    await admin('POST', '/v1/identities', { id: ids[who], owner: ids.alice }, 201);
    const { body } = await admin('POST', `/v1/identities/${ids[who]}/credentials`, {}, 201);
    creds[who] = body.secret;
  }
});

async function humanToken() {
  const { body } = await admin('POST', '/v1/dev/human-tokens',
    { human: ids.alice, scope: 'read write' }, 201);
  return body.access_token;
}

// One RFC 8693 exchange; `method` is client_secret_basic or client_secret_post.
async function exchange(who, method, subjectToken, subjectTokenType, extra = {}) {
  const form = {
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: subjectTokenType,
    ...extra,
  };
  const headers = {};
  if (method === 'client_secret_basic') {
    headers.authorization = basic(ids[who], creds[who]);
  } else {
    Object.assign(form, { client_id: ids[who], client_secret: creds[who] });
  }
  const { response, body } = await call('POST', metadata.token_endpoint, { headers, form }, 200);
  assert.match(response.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(body.issued_token_type, TT_ACCESS);
  assert.equal(body.token_type.toLowerCase(), 'bearer');
  return body;
}

async function twoHops() {
  const bot = await exchange('bot', 'client_secret_basic', await humanToken(), TT_JWT,
    { scope: 'read', audience: AUDIENCE });
  const search = await exchange('search', 'client_secret_post', bot.access_token, TT_ACCESS,
    { scope: 'read', audience: AUDIENCE });
  return { bot, search };
}

async function introspect(token) {
  const { body } = await call('POST', metadata.introspection_endpoint, {
    headers: { authorization: basic(ids.search, creds.search) },
    form: { token },
  }, 200);
  return body;
}

test('metadata advertises token exchange and the JWKS', () => {
  assert.equal(metadata.issuer, BASE);
  assert.ok(metadata.grant_types_supported.includes(TOKEN_EXCHANGE));
  for (const m of ['client_secret_basic', 'client_secret_post']) {
    assert.ok(metadata.token_endpoint_auth_methods_supported.includes(m), m);
  }
  for (const e of ['token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint']) {
    assert.ok(metadata[e].startsWith(BASE + '/'), e);
  }
});

test('jose verifies a 2-hop token against the remote JWKS', async () => {
  const { bot, search } = await twoHops();
  const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  const options = {
    issuer: metadata.issuer,
    audience: AUDIENCE,
    algorithms: ['EdDSA'],
    typ: 'at+jwt', // RFC 9068 §2.1
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
  };
  const { payload, protectedHeader } = await jose.jwtVerify(search.access_token, jwks, options);
  const first = (await jose.jwtVerify(bot.access_token, jwks, options)).payload;

  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.sub, ids.alice);
  assert.equal(payload.client_id, ids.search);
  assert.equal(payload.scope, 'read');
  // RFC 8693 §4.1: current actor outermost.
  assert.deepEqual(payload.act, { sub: ids.search, act: { sub: ids.bot } });
  assert.deepEqual(first.act, { sub: ids.bot });
  assert.ok(first.txn);
  assert.equal(payload.txn, first.txn);
  assert.notEqual(payload.jti, first.jti);
  assert.ok(payload.exp <= first.exp);

  // Another audience, or a changed claim, does not verify.
  await assert.rejects(jose.jwtVerify(search.access_token, jwks, { ...options, audience: 'https://elsewhere.example' }),
    { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
  const [head, , signature] = search.access_token.split('.');
  const forged = jose.base64url.encode(JSON.stringify({ ...payload, sub: 'human:mallory@example.com' }));
  await assert.rejects(jose.jwtVerify(`${head}.${forged}.${signature}`, jwks, options),
    { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
});

test('revoking the root-side token turns introspection inactive for both', async () => {
  const { bot, search } = await twoHops();

  const live = await introspect(search.access_token);
  assert.equal(live.active, true);
  assert.deepEqual(live.act, { sub: ids.search, act: { sub: ids.bot } });
  assert.equal(live.sub, ids.alice);
  assert.equal((await introspect(bot.access_token)).active, true);

  // RFC 7009, as agent:bot with client_secret_basic.
  const revoke = () => call('POST', metadata.revocation_endpoint, {
    headers: { authorization: basic(ids.bot, creds.bot) },
    form: { token: bot.access_token, token_type_hint: 'access_token' },
  }, 200);
  await revoke();

  assert.deepEqual(await introspect(bot.access_token), { active: false });
  assert.deepEqual(await introspect(search.access_token), { active: false });
  await revoke(); // RFC 7009 §2.2: an invalid token is still 200.
});
