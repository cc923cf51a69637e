'use strict';
// The dashboard's embedded assets (Makefile, tools/embed_assets.sh), built
// in a scratch copy of the build rules so that web/node_modules can come
// and go without touching the real tree:
//  * `make deps ASSET` in one invocation, with web/node_modules installed
//    by that deps step (what the first `make run` of a fresh clone does),
//    embeds uPlot;
//  * an upgrade of uPlot re-embeds it even though npm gives the files it
//    unpacks old mtimes, and so does its removal;
//  * a build with nothing changed does not regenerate the file.
// The scratch deps step copies the real web/node_modules/uplot (installed
// by make deps) keeping its mtimes, as npm ci would.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const UPLOT = path.join(ROOT, 'web', 'node_modules', 'uplot');

function scratch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-assets-'));
  fs.copyFileSync(path.join(ROOT, 'Makefile'), path.join(dir, 'Makefile'));
  for (const d of ['tools', 'src/ops/dashboard', 'mk']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'tools', 'embed_assets.sh'), path.join(dir, 'tools', 'embed_assets.sh'));
  for (const f of fs.readdirSync(path.join(ROOT, 'src/ops/dashboard'))) {
    fs.copyFileSync(path.join(ROOT, 'src/ops/dashboard', f), path.join(dir, 'src/ops/dashboard', f));
  }
  // deps: "npm ci" of web/, i.e. uPlot appears with the package's own mtimes.
  fs.writeFileSync(path.join(dir, 'mk', 'deps.sh'),
    `mkdir -p web/node_modules && cp -a '${UPLOT}' web/node_modules/\n`);
  return dir;
}

const ASSET = 'b/gen-assets/ops_assets.c';
function make(dir, ...goals) {
  return execFileSync('make', ['--no-print-directory', '-C', dir, 'BUILD=b', ...goals],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
// The ops_assets[] table: name -> size.
function table(dir) {
  const c = fs.readFileSync(path.join(dir, ASSET), 'utf8');
  const out = {};
  for (const m of c.matchAll(/\{"([^"]+)", "[^"]+", asset_\d+, (\d+)\}/g)) out[m[1]] = Number(m[2]);
  return out;
}

test('assets: the first build, with deps in the same make, embeds uPlot; changes re-embed', (t) => {
  assert.ok(fs.existsSync(path.join(UPLOT, 'dist', 'uPlot.iife.min.js')), 'web/node_modules/uplot missing: run make deps');
  const dir = scratch();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const js = path.join(dir, 'web/node_modules/uplot/dist/uPlot.iife.min.js');

  assert.ok(!fs.existsSync(path.join(dir, 'web')), 'no node_modules before the first make');
  make(dir, 'deps', ASSET);
  let tab = table(dir);
  for (const f of ['index.html', 'dashboard.js', 'dashboard.css', 'uPlot.iife.min.js', 'uPlot.min.css']) {
    assert.ok(f in tab, `${f} embedded by the first build: ${JSON.stringify(tab)}`);
  }
  assert.equal(tab['uPlot.iife.min.js'], fs.statSync(js).size);

  // Nothing changed: the generated file is left alone.
  const before = fs.statSync(path.join(dir, ASSET)).mtimeMs;
  make(dir, ASSET);
  assert.equal(fs.statSync(path.join(dir, ASSET)).mtimeMs, before, 'an unchanged tree does not re-embed');

  // An upgrade: new content, and the old mtime npm gives unpacked files.
  const old = fs.statSync(js).mtime;
  fs.appendFileSync(js, '\n/* upgraded */\n');
  fs.utimesSync(js, old, old);
  make(dir, ASSET);
  tab = table(dir);
  assert.equal(tab['uPlot.iife.min.js'], fs.statSync(js).size, 'the upgraded uPlot is embedded');

  // Removed: the page is embedded without it (and says so itself).
  fs.rmSync(path.join(dir, 'web'), { recursive: true });
  make(dir, ASSET);
  tab = table(dir);
  assert.ok(!('uPlot.iife.min.js' in tab) && 'index.html' in tab, JSON.stringify(tab));
});

test('assets: a fresh build folder of the real tree embeds uPlot', (t) => {
  const b = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-assets-b-'));
  t.after(() => fs.rmSync(b, { recursive: true, force: true }));
  execFileSync('make', ['--no-print-directory', '-C', ROOT, `BUILD=${b}`, `${b}/gen-assets/ops_assets.c`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const c = fs.readFileSync(`${b}/gen-assets/ops_assets.c`, 'utf8');
  assert.match(c, /\{"uPlot\.iife\.min\.js", "text\/javascript; charset=utf-8", asset_\d+, \d+\}/);
  assert.match(c, /\{"uPlot\.min\.css", /);
});
