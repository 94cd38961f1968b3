// Scenario 10: bodies of every kind (JSON, text, FormData with a file, Blob,
// 1 MB of random bytes) queued offline and replayed byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, openBrowser, testConfig, waitFor, entries, FLUSH_ONLY } from './harness.mjs';

const config = testConfig({ triggers: FLUSH_ONLY });

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await openBrowser(server, config);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

test('10: JSON, text, FormData, Blob and 1 MB binary bodies replay byte for byte', async () => {
  await server.call('/control/reset', {});
  await server.down();
  // Everything is built and sent in the page; the page hashes the exact bytes
  // it gave fetch (FormData has no fixed bytes: checked by parsing below).
  const sent = await browser.run(async () => {
    const hex = async (data) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', data))]
      .map((b) => b.toString(16).padStart(2, '0')).join('');
    const results = {};
    const post = async (name, body, headers) => {
      const response = await fetch(`/api/uploads/${name}`, { method: 'POST', body, headers });
      return { status: response.status, id: Number(response.headers.get('outbox-entry')), text: await response.text() };
    };

    const json = JSON.stringify({ name: 'Zoë', tags: ['ä', '✓', '😀'], nested: { n: 1.5, nil: null }, long: 'x'.repeat(3000) });
    results.json = { ...(await post('json', json, { 'content-type': 'application/json' })),
      sha256: await hex(new TextEncoder().encode(json)), length: new TextEncoder().encode(json).length, type: 'application/json' };

    const text = 'plain text, line 1\r\nline 2 — naïve café ✓\n\u0000 after a NUL\n';
    results.text = { ...(await post('text', text, { 'content-type': 'text/plain; charset=utf-8' })),
      sha256: await hex(new TextEncoder().encode(text)), length: new TextEncoder().encode(text).length, type: 'text/plain; charset=utf-8' };

    const blobBytes = new Uint8Array(4096);
    for (let i = 0; i < blobBytes.length; i++) blobBytes[i] = (i * 7 + 3) & 0xff;
    const blob = new Blob([blobBytes, 'tail'], { type: 'image/png' });
    const blobData = new Uint8Array(await blob.arrayBuffer());
    results.blob = { ...(await post('blob', blob)), sha256: await hex(blobData), length: blobData.length, type: 'image/png' };

    const binary = new Uint8Array(1024 * 1024);
    for (let offset = 0; offset < binary.length; offset += 65536) {
      crypto.getRandomValues(binary.subarray(offset, offset + 65536));
    }
    results.binary = { ...(await post('binary', binary, { 'content-type': 'application/octet-stream' })),
      sha256: await hex(binary), length: binary.length, type: 'application/octet-stream' };

    const fileBytes = new Uint8Array(2000);
    crypto.getRandomValues(fileBytes);
    const form = new FormData();
    form.append('title', 'A title with ü and "quotes"');
    form.append('count', '42');
    form.append('file', new File([fileBytes], 'photo näme.bin', { type: 'application/x-test' }));
    results.form = { ...(await post('form', form)),
      fields: { title: 'A title with ü and "quotes"', count: '42' },
      file: { name: 'photo näme.bin', type: 'application/x-test', size: fileBytes.length, sha256: await hex(fileBytes) } };
    return results;
  });

  for (const [name, result] of Object.entries(sent)) {
    assert.equal(result.status, 202, `${name} queued: ${result.text}`);
  }
  const queued = await entries(browser);
  assert.equal(queued.length, 5);
  assert.equal(queued.find((e) => e.id === sent.binary.id).bodyBytes, 1024 * 1024);
  assert.equal((await server.stats()).applied, 0, 'nothing reached the server yet');

  await server.up();
  await browser.run(() => window.outbox.flush());
  await waitFor(async () => (await server.stats()).applied >= 5, { what: '5 uploads applied' });
  const uploads = Object.fromEntries((await server.entities()).uploads.map((u) => [u.id, u]));

  for (const name of ['json', 'text', 'blob', 'binary']) {
    const upload = uploads[name];
    assert.ok(upload, `${name} uploaded`);
    assert.equal(upload.length, sent[name].length, `${name}: length`);
    assert.equal(upload.sha256, sent[name].sha256, `${name}: sha256 of the bytes the server got`);
    assert.equal(upload.contentType, sent[name].type, `${name}: content type`);
    // And the bytes the server stored hash the same here too.
    const stored = Buffer.from(await (await fetch(`${server.app}/api/uploads/${name}`)).arrayBuffer());
    assert.equal(sha256(stored), sent[name].sha256, `${name}: stored bytes`);
  }

  // FormData: the stored bytes parse back to the same fields and file, and
  // the stored content type's boundary is the one in the body.
  const form = uploads.form;
  assert.ok(form, 'form uploaded');
  const boundary = /boundary=("?)([^";]+)\1/.exec(form.contentType || '');
  assert.ok(form.contentType.startsWith('multipart/form-data') && boundary, `multipart content type: ${form.contentType}`);
  const bytes = Buffer.from(await (await fetch(`${server.app}/api/uploads/form`)).arrayBuffer());
  assert.equal(bytes.length, form.length);
  assert.equal(sha256(bytes), form.sha256);
  const text = bytes.toString('latin1');
  assert.ok(text.startsWith(`--${boundary[2]}\r\n`), 'the body starts with the boundary');
  assert.ok(text.endsWith(`--${boundary[2]}--\r\n`), 'the body ends with the closing boundary');
  const parsed = await new Response(bytes, { headers: { 'content-type': form.contentType } }).formData();
  assert.equal(parsed.get('title'), sent.form.fields.title);
  assert.equal(parsed.get('count'), sent.form.fields.count);
  const file = parsed.get('file');
  assert.equal(file.name, sent.form.file.name);
  assert.equal(file.type, sent.form.file.type);
  assert.equal(file.size, sent.form.file.size);
  assert.equal(sha256(Buffer.from(await file.arrayBuffer())), sent.form.file.sha256, 'the file content');
  assert.equal((await entries(browser)).length, 0);
});
