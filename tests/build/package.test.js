'use strict';
// make install and make deb, checked the way a system would take them:
//  * `make install DESTDIR=… PREFIX=/usr/local` puts the binary, the man
//    page, the docs, the unit (its paths rewritten) and /etc/herald's
//    config and env template in place, and keeps an edited config;
//  * `make deb` builds a package (dpkg-deb) whose control fields, files
//    and modes are right; unpacked into a temporary root (dpkg -x), its
//    binary runs and reports the package's version, its config passes
//    `herald config check`, and its unit passes `systemd-analyze verify
//    --root` with no message at all;
//  * its postinst, run against stand-ins for adduser, getent,
//    dpkg-statoverride and systemctl, creates the herald system user and
//    gives the config to root:herald 0640.
// systemd-analyze needs the system's own units (sysinit.target, …) and
// /bin/kill inside the root: they are copied in from this machine.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD || 'build');
// The Makefile's BUILD as make test gave it (relative to the tree if inside).
const MAKE_BUILD = BUILD.startsWith(ROOT + path.sep) ? path.relative(ROOT, BUILD) : BUILD;

function make(...args) {
  const r = spawnSync('make', ['--no-print-directory', '-C', ROOT, `BUILD=${MAKE_BUILD}`, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `make ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
function tmpdir(t, tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `herald-${tag}-`));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}
const mode = (p) => (fs.statSync(p).mode & 0o777).toString(8);

// systemd-analyze verify UNIT inside root R: must exit 0 and say nothing.
function verifyUnit(r, unitName) {
  const units = path.join(r, 'usr/lib/systemd/system');
  fs.mkdirSync(units, { recursive: true });
  for (const f of fs.readdirSync('/usr/lib/systemd/system')) {
    const dst = path.join(units, f);
    if (!fs.existsSync(dst)) fs.cpSync(path.join('/usr/lib/systemd/system', f), dst, { recursive: true, verbatimSymlinks: true });
  }
  fs.mkdirSync(path.join(r, 'usr/bin'), { recursive: true });
  if (!fs.existsSync(path.join(r, 'usr/bin/kill'))) fs.copyFileSync('/usr/bin/kill', path.join(r, 'usr/bin/kill'));
  for (const l of ['bin', 'lib']) if (!fs.existsSync(path.join(r, l))) fs.symlinkSync(`usr/${l}`, path.join(r, l));
  // Its Documentation=man:herald(1) is looked up with man(1): in the root.
  const manpath = ['usr/share/man', 'usr/local/share/man'].map((m) => path.join(r, m)).join(':');
  const sa = spawnSync('systemd-analyze', ['verify', `--root=${r}`, unitName],
    { encoding: 'utf8', cwd: r, env: { ...process.env, MANPATH: manpath } });
  assert.ok(!sa.error, `systemd-analyze: ${sa.error} (run make deps: package systemd)`);
  assert.equal(sa.status, 0, `systemd-analyze verify: ${sa.stdout}${sa.stderr}`);
  assert.equal((sa.stdout + sa.stderr).trim(), '', 'systemd-analyze verify says nothing');
}

function unitLines(file) {
  return fs.readFileSync(file, 'utf8').replace(/\\\n\s*/g, ' ').split('\n');
}

test('make install: DESTDIR and PREFIX', (t) => {
  const d = tmpdir(t, 'install');
  make('install', `DESTDIR=${d}`, 'PREFIX=/usr/local');
  const p = (f) => path.join(d, f);
  assert.equal(mode(p('usr/local/bin/herald')), '755');
  assert.match(execFileSync(p('usr/local/bin/herald'), ['version'], { encoding: 'utf8' }), /^herald \d/);
  for (const f of ['usr/local/share/man/man1/herald.1', 'usr/local/share/doc/herald/README.md',
    'usr/local/share/doc/herald/docs/operations.md', 'usr/local/share/doc/herald/docs/wire.md',
    'usr/local/share/doc/herald/protocol/Protocol.jce', 'usr/local/share/doc/herald/examples/herald-alerts.yml',
    'usr/local/share/doc/herald/examples/prometheus.yml']) {
    assert.ok(fs.existsSync(p(f)), `${f} installed`);
  }
  assert.equal(mode(p('etc/herald/herald.env')), '600', 'the env file holds secrets');
  assert.equal(mode(p('etc/herald/herald.conf')), '644', 'staged: no herald group to give it to');
  const unit = unitLines(p('usr/local/lib/systemd/system/herald.service'));
  assert.ok(unit.some((l) => l.startsWith('ExecStart=/usr/local/bin/herald serve --config /etc/herald/herald.conf')), unit.join('\n'));
  assert.ok(unit.includes('Documentation=man:herald(1) file:///usr/local/share/doc/herald/docs/operations.md'));
  // The unit under this prefix passes verify too (systemd reads /usr/local/lib/systemd/system).
  verifyUnit(d, 'herald.service');

  // An edited config survives a second install; the new one goes beside it.
  fs.appendFileSync(p('etc/herald/herald.conf'), 'rate-app = 5\n');
  make('install', `DESTDIR=${d}`, 'PREFIX=/usr/local');
  assert.match(fs.readFileSync(p('etc/herald/herald.conf'), 'utf8'), /rate-app = 5\n$/);
  assert.ok(fs.existsSync(p('etc/herald/herald.conf.dist')));
});

test('make deb: a package that installs and whose unit verifies', (t) => {
  const out = make('deb');
  const m = /deb: (\S+\.deb)/.exec(out);
  assert.ok(m, out);
  const deb = path.resolve(ROOT, m[1]);
  const field = (f) => execFileSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).trim();
  assert.equal(field('Package'), 'herald');
  const version = field('Version');
  assert.match(version, /^\d+\.\d+/);
  assert.match(field('Depends'), /libc6 .*libssl3.*adduser/);
  assert.equal(field('Architecture'), execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim());

  const r = tmpdir(t, 'deb-root');
  execFileSync('dpkg-deb', ['-x', deb, r]);
  const p = (f) => path.join(r, f);
  for (const f of ['usr/bin/herald', 'usr/lib/systemd/system/herald.service', 'usr/share/man/man1/herald.1.gz',
    'usr/share/doc/herald/docs/operations.md', 'usr/share/doc/herald/examples/herald-alerts.yml',
    'etc/herald/herald.conf', 'etc/herald/herald.env']) {
    assert.ok(fs.existsSync(p(f)), `${f} in the package`);
  }
  assert.equal(mode(p('etc/herald/herald.env')), '600');
  assert.equal(execFileSync(p('usr/bin/herald'), ['version'], { encoding: 'utf8' }).trim(), `herald ${version}`);
  const check = spawnSync(p('usr/bin/herald'), ['config', 'check', p('etc/herald/herald.conf')], { encoding: 'utf8' });
  assert.equal(check.status, 0, `the shipped config: ${check.stderr}`);

  const unit = unitLines(p('usr/lib/systemd/system/herald.service'));
  for (const want of ['User=herald', 'UMask=0077', 'Type=notify', 'EnvironmentFile=/etc/herald/herald.env', 'StateDirectory=herald']) {
    assert.ok(unit.includes(want), `unit has ${want}`);
  }
  assert.ok(unit.some((l) => l.startsWith('ExecStart=/usr/bin/herald serve --config /etc/herald/herald.conf')));
  verifyUnit(r, 'herald.service');

  // Control files: conffiles, and the postinst against stand-ins.
  const ctl = tmpdir(t, 'deb-ctl');
  execFileSync('dpkg-deb', ['-e', deb, ctl]);
  assert.deepEqual(fs.readFileSync(path.join(ctl, 'conffiles'), 'utf8').trim().split('\n'),
    ['/etc/herald/herald.conf', '/etc/herald/herald.env']);
  for (const s of ['postinst', 'prerm', 'postrm']) {
    assert.equal(spawnSync('sh', ['-n', path.join(ctl, s)]).status, 0, `${s} parses`);
  }
  const bin = tmpdir(t, 'deb-stubs');
  const log = path.join(bin, 'calls.log');
  const stub = (name, body) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`, { mode: 0o755 });
  stub('getent', 'exit 2');            // no herald user yet
  stub('adduser', 'exit 0');
  stub('dpkg-statoverride', '[ "$1" = --list ] && exit 1; exit 0');
  stub('systemctl', 'exit 0');
  const run = spawnSync('sh', [path.join(ctl, 'postinst'), 'configure', ''],
    { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } });
  assert.equal(run.status, 0, run.stderr);
  const calls = fs.readFileSync(log, 'utf8');
  assert.match(calls, /^adduser --system --group .*--home \/var\/lib\/herald .*herald$/m, calls);
  assert.match(calls, /^dpkg-statoverride --update --add root herald 0640 \/etc\/herald\/herald\.conf$/m, calls);
  // Upgrading, with the user there: no second adduser.
  fs.writeFileSync(log, '');
  stub('getent', 'exit 0');
  spawnSync('sh', [path.join(ctl, 'postinst'), 'configure', '0.0.1'], { env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } });
  assert.doesNotMatch(fs.readFileSync(log, 'utf8'), /^adduser/m);
});
