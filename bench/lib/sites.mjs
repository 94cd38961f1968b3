// The subjects and the site each one is served from: a generated folder
// with the page, the shared driver and the subject's worker.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * Every subject, in table order. `online: false`: the online pass-through is
 * not measured, as it runs the same code as another subject's (the bare
 * worker's durability only matters to its IndexedDB writes). `atDepth:
 * false`: not measured at queue depths (the relaxed limit's reads are the
 * strict one's, and its enqueue shows the cost of durability at depth 0
 * already). `drainOnly`: only the drain is measured.
 */
export const SUBJECTS = [
  { id: 'outbox', label: 'sw-outbox', kind: 'outbox', worker: '/sw.js', online: true },
  { id: 'workbox', label: 'Workbox', kind: 'workbox', worker: '/sw.js', online: true },
  { id: 'strict', label: 'limit (strict)', kind: 'bare', worker: '/sw.js?durability=strict', online: true },
  { id: 'relaxed', label: 'limit (relaxed)', kind: 'bare', worker: '/sw.js?durability=relaxed', online: false, atDepth: false },
  { id: 'none', label: 'no worker', kind: 'none', worker: null, online: true },
  // The drain again, with sw-outbox sending as many at once as the limit's
  // loop does (its default is 6): what the default costs, and what a site
  // that raises `limits.concurrency` gets. Nothing else is measured for it.
  {
    id: 'outbox16', label: 'sw-outbox, concurrency 16', kind: 'outbox', worker: '/sw.js?concurrency=16',
    online: false, drainOnly: true,
  },
];

/** Bundles the Workbox worker the way a site would ship it: one minified classic script. */
export async function bundleWorkbox(benchDirectory, outfile) {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [join(benchDirectory, 'site', 'workbox-sw.src.js')],
    outfile,
    bundle: true,
    format: 'iife',
    minify: true,
    target: 'es2020',
    // Workbox strips its development logging on this.
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  return outfile;
}

/** Writes one site folder per subject under `work`; gives `{id: folder}`. */
export async function prepareSites({ benchDirectory, work }) {
  const sources = join(benchDirectory, 'site');
  const workbox = await bundleWorkbox(benchDirectory, join(work, 'workbox-sw.js'));
  const workers = {
    outbox: join(sources, 'outbox-sw.js'),
    workbox,
    bare: join(sources, 'bare-sw.js'),
  };
  const folders = {};
  for (const subject of SUBJECTS) {
    const folder = join(work, 'sites', subject.id);
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(sources, 'driver.js'), join(folder, 'driver.js'));
    if (workers[subject.kind]) copyFileSync(workers[subject.kind], join(folder, 'sw.js'));
    const start = JSON.stringify({ kind: subject.kind, worker: subject.worker });
    writeFileSync(
      join(folder, 'index.html'),
      `<!doctype html>\n<meta charset="utf-8">\n<title>sw-outbox benchmark: ${subject.label}</title>\n` +
        `<script type="module">import { start } from '/driver.js'; window.benchReady = start(${start});</script>\n`,
    );
    folders[subject.id] = folder;
  }
  return folders;
}

/** Raw and gzip (level 9) bytes of what each subject's worker loads. */
export function workerSizes(folders, dist) {
  const files = {
    outbox: [join(folders.outbox, 'sw.js'), join(dist, 'outbox-sw.js')],
    workbox: [join(folders.workbox, 'sw.js')],
    strict: [join(folders.strict, 'sw.js')],
    relaxed: [join(folders.relaxed, 'sw.js')],
    none: [],
    outbox16: [],
  };
  const sizes = {};
  for (const [id, paths] of Object.entries(files)) {
    let raw = 0;
    let gzip = 0;
    for (const path of paths) {
      const bytes = readFileSync(path);
      raw += bytes.length;
      gzip += gzipSync(bytes, { level: 9 }).length;
    }
    sizes[id] = { raw, gzip, files: paths.length };
  }
  return sizes;
}
