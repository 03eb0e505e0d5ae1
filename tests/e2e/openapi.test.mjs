// docs/openapi.yaml: valid OpenAPI 3.1 (@seriousme/openapi-schema-validator,
// offline), naming every route the router and the built-in files know and
// every route of docs/api.md, and describing what the running server really
// answers: each status seen is documented for its route, with its content
// type, and each JSON body (and the data of the stream's reset and
// token-expired events) validates against the document's schema (ajv, JSON
// Schema 2020-12, the dialect of OpenAPI 3.1).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import {
  ACCOUNTS, REPO, login, openStream, publish, request, startServer, tokenFor, tokenParam,
} from './lib/server.mjs';

const FILE = path.join(REPO, 'docs/openapi.yaml');
const text = fs.readFileSync(FILE, 'utf8');
const doc = YAML.parse(text);

describe('docs/openapi.yaml', () => {
  test('is valid OpenAPI 3.1', async () => {
    const v = new Validator();
    const r = await v.validate(text);
    assert.equal(v.version, '3.1');
    assert.ok(r.valid, JSON.stringify(r.errors, null, 1));
  });

  test('the validator does catch a broken document', async () => {
    const broken = YAML.parse(text);
    delete broken.paths['/login'].post.responses['200'].description; // a response must have one
    const r = await new Validator().validate(broken);
    assert.equal(r.valid, false);
  });

  test('names every route of src/app/router.c and every built-in file, with its method and OPTIONS', () => {
    const router = fs.readFileSync(path.join(REPO, 'src/app/router.c'), 'utf8');
    const routes = [...router.matchAll(/\{HTTP_(GET|POST|PUT|DELETE|PATCH), "([^"]+)", \w+\}/g)].map((m) => [m[1].toLowerCase(), m[2]]);
    assert.ok(routes.length >= 8, `found the route table (${routes.length} rows)`);
    const make = fs.readFileSync(path.join(REPO, 'Makefile'), 'utf8');
    const assets = [...make.matchAll(/(\/[\w./-]+):[\w/;=-]+:web\//g)].map((m) => ['get', m[1]]);
    assert.ok(assets.length >= 3, 'found the built-in files');
    const known = [...routes, ...assets];
    for (const [method, p] of known) {
      assert.ok(doc.paths[p], `${p} is in the document`);
      assert.ok(doc.paths[p][method], `${method.toUpperCase()} ${p} is in the document`);
      assert.ok(doc.paths[p].options, `OPTIONS ${p} (the preflight) is in the document`);
    }
    const methods = ['get', 'post', 'put', 'delete', 'patch', 'head'];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of methods.filter((x) => item[x])) {
        assert.ok(known.some(([km, kp]) => km === m && kp === p), `${m.toUpperCase()} ${p} is a route the server has`);
      }
    }
  });

  test('names every route of docs/api.md, and api.md links to it', () => {
    const api = fs.readFileSync(path.join(REPO, 'docs/api.md'), 'utf8');
    const heads = [...api.matchAll(/^## (.+)$/gm)].flatMap((m) => [...m[1].matchAll(/`(GET|POST) (\/[^`]*)`/g)].map((x) => [x[1].toLowerCase(), x[2]]));
    assert.ok(heads.length >= 10, 'found the routes of api.md');
    for (const [m, p] of heads) assert.ok(doc.paths[p]?.[m], `${m.toUpperCase()} ${p} of api.md is in openapi.yaml`);
    assert.match(api, /\]\(openapi\.yaml\)/, 'api.md links to openapi.yaml');
  });

  test('describes the stream as text/event-stream with its event types, and the three credentials', () => {
    const ok = doc.paths['/events'].get.responses['200'];
    assert.ok(ok.content['text/event-stream']);
    for (const t of ['reset', 'token-expired', 'message', ': ping']) assert.ok(ok.description.includes(t), `the stream's description names ${t}`);
    const s = doc.components.securitySchemes;
    assert.equal(s.bearer.scheme, 'bearer');
    assert.deepEqual([s.tokenQuery.in, s.tokenQuery.name], ['query', 'token']);
    assert.deepEqual([s.tokenCookie.in, s.tokenCookie.name], ['cookie', 'sse_token']);
  });
});

// ---- the running server against the document ----

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'openapi.yaml', ...doc });
const esc = (s) => s.replaceAll('~', '~0').replaceAll('/', '~1');
const at = (pointer) => pointer.slice(2).split('/').map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~')).reduce((o, k) => o?.[k], doc);

/** The JSON pointer of the response documented for route, method and status; fails when there is none. */
function documented(p, method, status) {
  const op = doc.paths[p]?.[method];
  assert.ok(op, `${method.toUpperCase()} ${p} is documented`);
  assert.ok(op.responses[String(status)], `${method.toUpperCase()} ${p}: status ${status} is documented (has ${Object.keys(op.responses)})`);
  let pointer = `#/paths/${esc(p)}/${method}/responses/${status}`;
  const r = at(pointer);
  if (r.$ref) pointer = r.$ref;
  return pointer;
}

/** Checks a live answer: its status documented, its content type among the documented ones, its JSON valid. */
function conforms(p, method, res) {
  const pointer = documented(p, method, res.status);
  const r = at(pointer);
  if (!r.content) return;
  const ctype = (res.headers['content-type'] || '').split(';')[0].trim();
  assert.ok(r.content[ctype], `${method.toUpperCase()} ${p} ${res.status}: content type ${ctype} is documented (${Object.keys(r.content)})`);
  for (const [h, spec] of Object.entries(r.headers || {})) {
    if (!(spec.$ref ? at(spec.$ref) : spec).required) continue;
    assert.ok(res.headers[h.toLowerCase()] !== undefined, `${method.toUpperCase()} ${p} ${res.status}: the ${h} header`);
  }
  if (ctype !== 'application/json') return;
  const validate = ajv.compile({ $ref: `openapi.yaml${pointer}/content/${esc(ctype)}/schema` });
  assert.ok(validate(res.json), `${method.toUpperCase()} ${p} ${res.status}: ${res.body} against the schema: ${ajv.errorsText(validate.errors)}`);
}

/** Checks an answer any route may give against components/responses/<name>. */
function sharedAnswer(name, res) {
  const r = doc.components.responses[name];
  const ctype = (res.headers['content-type'] || '').split(';')[0].trim();
  assert.ok(r.content[ctype], `${name}: content type ${ctype}`);
  const validate = ajv.compile({ $ref: `openapi.yaml#/components/responses/${name}/content/${esc(ctype)}/schema` });
  assert.ok(validate(res.json), `${name}: ${res.body}: ${ajv.errorsText(validate.errors)}`);
}

/** Validates data against a named schema of the document. */
function matchesSchema(name, data) {
  const validate = ajv.compile({ $ref: `openapi.yaml#/components/schemas/${name}` });
  assert.ok(validate(data), `${JSON.stringify(data)} is a ${name}: ${ajv.errorsText(validate.errors)}`);
}

describe('the running server answers as documented', () => {
  let srv;
  let pub;
  let sub;
  before(async () => {
    srv = await startServer({ env: { SSE_HEARTBEAT: 60 } });
    pub = await tokenFor(srv, 'pub');
    sub = await tokenFor(srv, 'sub');
  });
  after(async () => { if (srv && !srv.exitInfo) await srv.stopClean(); });

  const bearer = (t) => ({ Authorization: `Bearer ${t}` });

  test('/login, /token, /broadcast', async () => {
    conforms('/login', 'post', await login(srv, 'sub', 'u1'));
    conforms('/login', 'post', await login(srv, { username: ACCOUNTS.sub.username, password: 'wrong-Pw-1' }));
    conforms('/login', 'post', await request(srv, 'POST', '/login', { body: '{"username": 1}', headers: { 'Content-Type': 'application/json' } }));
    conforms('/login', 'post', await request(srv, 'POST', '/login', { body: 'username=a', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }));
    conforms('/token', 'post', await request(srv, 'POST', '/token', { headers: bearer(pub), body: { user: 'u1', types: ['a'], ttl: 60 } }));
    conforms('/token', 'post', await request(srv, 'POST', '/token', { headers: bearer(pub), body: { user: '' } }));
    conforms('/token', 'post', await request(srv, 'POST', '/token', { body: { user: 'u1' } }));
    conforms('/token', 'post', await request(srv, 'POST', '/token', { headers: bearer(sub), body: { user: 'u1' } }));
    conforms('/broadcast', 'post', await request(srv, 'POST', '/broadcast', { headers: bearer(pub), body: { content: 'x', type: 'a', user: 'u1' } }));
    conforms('/broadcast', 'post', await request(srv, 'POST', '/broadcast', { headers: bearer(pub), body: { content: 5 } }));
    conforms('/broadcast', 'post', await request(srv, 'POST', '/broadcast', { body: { content: 'x' } }));
    conforms('/broadcast', 'post', await request(srv, 'POST', '/broadcast', { headers: bearer(sub), body: { content: 'x' } }));
  });

  test('/notifications and /events (heads, refusals, the reset and token-expired events)', async () => {
    await publish(srv, pub, { content: 'n1', user: 'u2' });
    await publish(srv, pub, { content: 'n2', type: 't' });
    const q = `token=${encodeURIComponent(tokenParam(sub, 'u2'))}`;
    const n = await request(srv, 'GET', `/notifications?${q}&limit=1`);
    assert.equal(n.json.items.length, 1);
    conforms('/notifications', 'get', n);
    conforms('/notifications', 'get', await request(srv, 'GET', `/notifications?${q}&limit=0`));
    conforms('/notifications', 'get', await request(srv, 'GET', '/notifications'));
    const mint = await request(srv, 'POST', '/token', { headers: bearer(pub), body: { user: 'u3', types: ['a'], ttl: 1 } });
    conforms('/notifications', 'get', await request(srv, 'GET', '/notifications?type=b', { headers: bearer(mint.json.token) }));

    conforms('/events', 'get', await request(srv, 'GET', '/events'));
    conforms('/events', 'get', await request(srv, 'GET', `/events?${q}&type=${'x'.repeat(300)}`));
    conforms('/events', 'get', await request(srv, 'GET', '/events?type=b', { headers: bearer(mint.json.token) }));
    const reset = await openStream(srv, { path: `/events?${q}`, headers: { 'Last-Event-ID': '999999' } });
    try {
      assert.ok(doc.paths['/events'].get.responses['200'].content[reset.headInfo.headers['content-type'].split(';')[0]], 'text/event-stream is documented');
      documented('/events', 'get', reset.status);
      const ev = await reset.waitFor((s) => s.events.find((e) => e.event === 'reset'), 3000, 'the reset event').then((s) => s.events.find((e) => e.event === 'reset'));
      matchesSchema('ResetData', JSON.parse(ev.data.join('\n')));
    } finally { reset.close(); }
    const short = await openStream(srv, { bearer: mint.json.token, path: '/events?type=a' });
    try {
      const ev = await short.waitFor((s) => s.events.find((e) => e.event === 'token-expired'), 8000, 'token-expired').then((s) => s.events.find((e) => e.event === 'token-expired'));
      matchesSchema('TokenExpiredData', JSON.parse(ev.data.join('\n')));
    } finally { short.close(); }
  });

  test('operations, built-in files, preflight, 404 and 405, and the stop', async () => {
    conforms('/healthz', 'get', await request(srv, 'GET', '/healthz'));
    conforms('/readyz', 'get', await request(srv, 'GET', '/readyz'));
    for (const p of ['/example', '/client/sse-client.js', '/client/sse-client.mjs']) conforms(p, 'get', await request(srv, 'GET', p));
    for (const p of Object.keys(doc.paths)) {
      const r = await request(srv, 'OPTIONS', p, { headers: { Origin: 'http://x.example', 'Access-Control-Request-Method': 'POST' } });
      conforms(p, 'options', r);
    }
    // another method on a known path, and an unknown path: the shared answers of the document
    for (const [m, p] of [['GET', '/login'], ['POST', '/healthz'], ['POST', '/example']]) {
      const r = await request(srv, m, p, { body: m === 'POST' ? {} : undefined });
      assert.equal(r.status, 405, `${m} ${p}`);
      assert.ok(r.headers.allow, 'Allow');
      sharedAnswer('MethodNotAllowed', r);
    }
    const nf = await request(srv, 'GET', '/no-such-path');
    assert.equal(nf.status, 404);
    sharedAnswer('NotFound', nf);
    conforms('/admin/stop', 'post', await request(srv, 'POST', '/admin/stop', { headers: bearer(pub) }));
    conforms('/admin/stop', 'post', await request(srv, 'POST', '/admin/stop', { headers: bearer(await tokenFor(srv, 'admin')) }));
    const r = await srv.waitExit(5000);
    assert.equal(r.code, 0);
  });
});

describe('with the history off', () => {
  test('/notifications 503 is documented and its body validates', async () => {
    const srv = await startServer({ env: { SSE_DB: 'off' } });
    try {
      const sub = await tokenFor(srv, 'sub');
      conforms('/notifications', 'get', await request(srv, 'GET', '/notifications', { headers: { Authorization: `Bearer ${sub}` } }));
    } finally { await srv.stopClean(); }
  });
});
