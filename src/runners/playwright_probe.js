// testrelay's Playwright environment probe, run as `node -e <this> <@playwright/test dir> <cli.js>`
// in the project directory. Prints one JSON line: the Node version and, per configured
// project, which browser executable it needs and whether that file exists.
//
// The projects come from Playwright itself: `playwright test --list` loads the config (and
// the test files) without launching a browser or the webServer, and a throwaway reporter
// written to a temp directory records each project's resolved `use` options. So a config
// that sets `launchOptions.executablePath` or a `channel`, even through an environment
// variable, is judged by what it resolves to here.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');

const [pkgDir, cli] = process.argv.slice(1);
const out = { node: process.version, browsers: [], list_error: null, core_error: null };

let core = null;
try {
  core = require(require.resolve('playwright-core', { paths: [pkgDir] }));
} catch (e) {
  out.core_error = String((e && e.message) || e);
}

function listProjects() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'testrelay-probe-'));
  try {
    const result = path.join(tmp, 'projects.json');
    const reporter = path.join(tmp, 'projects-reporter.cjs');
    fs.writeFileSync(
      reporter,
      `const fs = require('fs');
module.exports = class {
  printsToStdio() { return false; }
  onBegin(config) {
    const projects = config.projects.map((p) => {
      const use = p.use || {};
      const launch = use.launchOptions || {};
      return {
        name: p.name,
        browser: use.browserName || use.defaultBrowserType || 'chromium',
        channel: use.channel || launch.channel || null,
        executable_path: launch.executablePath || null,
        headless: use.headless !== false && launch.headless !== false,
      };
    });
    fs.writeFileSync(${JSON.stringify(result)}, JSON.stringify(projects));
  }
};
`,
    );
    const r = cp.spawnSync(process.execPath, [cli, 'test', '--list', '--reporter=' + reporter], {
      encoding: 'utf8',
      timeout: 15000,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    if (fs.existsSync(result)) return JSON.parse(fs.readFileSync(result, 'utf8'));
    const said = `${r.stderr || ''}\n${r.stdout || ''}`
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    out.list_error =
      said.slice(0, 4).join('\n') || (r.error && r.error.message) || `exit status ${r.status}`;
    return null;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// Where Playwright's own build of `browser` lives and whether it is installed.
function bundled(browser, headless) {
  if (!core || !core[browser]) return { path: null, exists: false };
  let exe;
  try {
    exe = core[browser].executablePath();
  } catch (e) {
    return { path: null, exists: false };
  }
  if (browser === 'chromium' && headless) {
    // Headless Chromium runs Playwright's headless shell, installed beside full Chromium.
    const m = exe.match(/^(.*)[\\/]chromium-(\d+)[\\/]/);
    if (m) {
      const dir = path.join(m[1], `chromium_headless_shell-${m[2]}`);
      return { path: dir, exists: fs.existsSync(dir) };
    }
  }
  return { path: exe, exists: fs.existsSync(exe) };
}

const projects = listProjects() || [
  { name: null, browser: 'chromium', channel: null, executable_path: null, headless: true },
];
for (const p of projects) {
  const entry = { project: p.name, browser: p.browser, channel: p.channel };
  if (p.executable_path) {
    Object.assign(entry, { source: 'config', path: p.executable_path, exists: fs.existsSync(p.executable_path) });
  } else if (p.channel && p.channel !== 'chromium') {
    // A branded browser (chrome, msedge, ...) installed on the machine: not checked here.
    Object.assign(entry, { source: 'channel', path: null, exists: null });
  } else {
    Object.assign(entry, { source: 'bundled' }, bundled(p.browser, p.headless && !p.channel));
  }
  out.browsers.push(entry);
}
console.log(JSON.stringify(out));
