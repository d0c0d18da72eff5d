'use strict';
// Holds every answer of the gateway to its own description, GET /api/openapi.json: the status
// must be one the operation documents, the Content-Type one of the documented media types, and
// a JSON body must match the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 uses, with
// ajv). A path the document does not know must be a 404 (under /api) or a static file; a
// method it does not know on a known path must be a 405. Both with the error body.
//
//   const { checkAnswer } = require('./openapi-check.js');
//   const res = await fetch(url); await checkAnswer(url, init, res);  // throws on a mismatch
//
// The document is read once per gateway (base URL) and compiled schemas are cached.

const DOC_ID = 'https://easyjournal.invalid/openapi.json';
const checkers = new Map(); // base URL -> Promise<Checker>
const compiledDocs = new Map(); // document text -> Checker (its schemas compiled once)

// The JSON Pointer fragment of a path in the document.
function pointer(parts) {
  return '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).map(encodeURIComponent).join('/');
}

function mediaType(ct) {
  return String(ct || '').split(';')[0].trim().toLowerCase();
}

class Checker {
  constructor(doc) {
    const Ajv2020 = require('ajv/dist/2020');
    this.doc = doc;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    this.ajv.addSchema({ ...doc, $id: DOC_ID });
    this.compiled = new Map();
    // Patterns in document order, as the gateway matches its rows in table order.
    this.paths = Object.keys(doc.paths).map((tpl) => ({
      tpl,
      re: new RegExp('^' + tpl.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
    }));
  }

  validator(parts) {
    const ref = DOC_ID + pointer(parts);
    let v = this.compiled.get(ref);
    if (!v) {
      v = this.ajv.compile({ $ref: ref });
      this.compiled.set(ref, v);
    }
    return v;
  }

  // Follows a response object's $ref (#/components/responses/...); returns [object, parts].
  deref(obj, parts) {
    if (obj && obj.$ref) {
      const p = obj.$ref.replace(/^#\//, '').split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      return [p.reduce((o, k) => o[k], this.doc), p];
    }
    return [obj, parts];
  }

  // The operation for `method` and `path`: { op, parts } or { known } (did any path match).
  find(method, path) {
    let known = false;
    const m = method.toLowerCase();
    for (const { tpl, re } of this.paths) {
      if (!re.test(path)) continue;
      known = true;
      const item = this.doc.paths[tpl];
      const name = item[m] ? m : m === 'head' && item.get ? 'get' : null;
      if (name) return { op: item[name], parts: ['paths', tpl, name] };
    }
    return { known };
  }

  errorBody(what, text) {
    const v = this.validator(['components', 'schemas', 'Error']);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`${what}: the body is not JSON: ${text.slice(0, 200)}`);
    }
    if (!v(body)) throw new Error(`${what}: not the error body: ${this.ajv.errorsText(v.errors)}\n${text.slice(0, 500)}`);
  }

  async check(method, url, res) {
    const u = new URL(url);
    const path = u.pathname;
    const what = `${method} ${path}${u.search} -> ${res.status}`;
    const isJson = /^application\/json/.test(mediaType(res.headers.get('content-type')));
    const text = async () => (method === 'HEAD' ? '' : await res.clone().text());
    const found = this.find(method, path);

    if (!found.op) {
      if (found.known) {
        if (res.status !== 405) throw new Error(`${what}: the document has no ${method} here, so 405 was due`);
        return this.errorBody(what, await text());
      }
      if (path === '/api' || path.startsWith('/api/')) {
        if (res.status !== 404) throw new Error(`${what}: ${path} is not in the document, so 404 was due`);
        return this.errorBody(what, await text());
      }
      return; // a static file of the browser app
    }
    const responses = found.op.responses || {};
    let key = String(res.status);
    if (!responses[key]) key = `${String(res.status)[0]}XX`;
    if (!responses[key]) key = 'default';
    if (!responses[key]) {
      const body = isJson ? await text() : '';
      throw new Error(`${what}: status ${res.status} is not documented for ${found.op.operationId} (documented: ${Object.keys(responses).join(', ')}) ${body.slice(0, 300)}`);
    }
    const [resp, parts] = this.deref(responses[key], [...found.parts, 'responses', key]);
    const content = resp.content;
    if (!content || method === 'HEAD' || res.status === 304) return;
    const got = mediaType(res.headers.get('content-type'));
    const types = Object.keys(content);
    const type = types.find((t) => mediaType(t) === got) || types.find((t) => t === '*/*');
    if (!type) throw new Error(`${what}: Content-Type ${got || '(none)'} is not documented (${types.join(', ')})`);
    if (!/^application\/json/.test(mediaType(type))) return;
    const body = await text();
    let value;
    try {
      value = JSON.parse(body);
    } catch {
      throw new Error(`${what}: the body is not JSON: ${body.slice(0, 200)}`);
    }
    const v = this.validator([...parts, 'content', type, 'schema']);
    if (!v(value)) {
      throw new Error(`${what}: the body does not match ${found.op.operationId}'s ${key} schema: ${this.ajv.errorsText(v.errors)}\n${body.slice(0, 800)}`);
    }
  }
}

async function checkerFor(base) {
  let c = checkers.get(base);
  if (!c) {
    c = (async () => {
      const r = await fetch(`${base}/api/openapi.json`);
      if (r.status !== 200) throw new Error(`GET ${base}/api/openapi.json: ${r.status}`);
      const text = await r.text();
      if (!compiledDocs.has(text)) compiledDocs.set(text, new Checker(JSON.parse(text)));
      return compiledDocs.get(text);
    })();
    checkers.set(base, c);
    c.catch(() => checkers.delete(base));
  }
  return c;
}

// Checks the answer `res` to `init.method` (GET) of `url` against the gateway's document;
// throws an Error saying what disagrees. The caller still owns `res` (its body is read from a
// clone, and only when it is JSON).
async function checkAnswer(url, init, res) {
  const method = String((init && init.method) || 'GET').toUpperCase();
  const checker = await checkerFor(new URL(url).origin);
  await checker.check(method, url, res);
}

module.exports = { checkAnswer, Checker };
