'use strict';
// The docs against the tree they describe:
//  * every subcommand `herald help` lists has a `## herald NAME` section in
//    docs/cli.md and is named in docs/README.md's row for cli.md;
//  * the man page docs/herald.1 has an entry for each of them too, and
//    groff formats it without a warning;
//  * every relative link in README.md and docs/*.md points at a file of
//    the repository (no links to notes that live outside it), and no page
//    sends the reader to DESIGN.md or tars-wire.md, which are not in it.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD || 'build');
const read = (p) => fs.readFileSync(path.join(ROOT, p), 'utf8');
const pages = () => ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

test('docs: cli.md and docs/README.md cover every subcommand', () => {
  const help = execFileSync(path.join(BUILD, 'herald'), ['help'], { encoding: 'utf8' });
  const cmds = [...help.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((m) => m[1]);
  assert.ok(cmds.includes('serve') && cmds.length >= 8, `herald help lists: ${cmds}`);
  const cli = read('docs/cli.md');
  const row = read('docs/README.md').split('\n').find((l) => l.startsWith('| [cli.md]'));
  assert.ok(row, 'docs/README.md has a row for cli.md');
  for (const c of cmds) {
    assert.match(cli, new RegExp(`^## herald ${c}\\b`, 'm'), `docs/cli.md has no "## herald ${c}" section`);
    assert.ok(row.includes(`\`${c}\``), `docs/README.md's cli.md row does not name \`${c}\`: ${row}`);
  }
});

test('docs: the man page covers every subcommand and formats cleanly', () => {
  const help = execFileSync(path.join(BUILD, 'herald'), ['help'], { encoding: 'utf8' });
  const cmds = [...help.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((m) => m[1]);
  const man = read('docs/herald.1');
  const section = man.split(/^\.SH COMMANDS$/m)[1].split(/^\.SH /m)[0];
  for (const c of cmds) {
    assert.match(section, new RegExp(`^\\.TP\n\\.B ${c}$`, 'm'), `docs/herald.1 has no entry for ${c}`);
  }
  const g = require('node:child_process').spawnSync('groff', ['-man', '-ww', '-z', path.join(ROOT, 'docs/herald.1')],
    { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  assert.ok(!g.error, `groff: ${g.error} (run make deps: groff-base)`);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stderr.trim(), '', 'groff warns about nothing');
});

test('docs: relative links resolve inside the repository', () => {
  for (const p of pages()) {
    const md = read(p);
    for (const m of md.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target) || target.startsWith('#')) continue;
      const file = path.resolve(ROOT, path.dirname(p), target.split('#')[0]);
      assert.ok(file.startsWith(ROOT + path.sep) || file === ROOT, `${p}: ${target} leaves the repository`);
      assert.ok(fs.existsSync(file), `${p}: link ${target} -> ${path.relative(ROOT, file)} does not exist`);
    }
    for (const name of ['DESIGN.md', 'tars-wire']) {
      assert.ok(!md.includes(name), `${p} refers to ${name}, which is not in the repository`);
    }
  }
});
