// Drives a real JupyterLab page in headless Chromium (playwright-core with
// Debian's chromium): opens a notebook, runs all its cells, saves it, takes a
// screenshot, and prints what the page showed as one JSON object on stdout:
//   {outputs: [text of each output area], frames: [websocket frames received],
//    cells: n, screenshot: path}
// Used by tests/jupyter/test_browser.py and by end-to-end tests of the
// container; it asserts nothing itself.
//
//   node lab_driver.mjs --url http://127.0.0.1:PORT --token T --path dir/nb.ipynb \
//        --screenshot out.png [--timeout 120] \
//        [--terminal-command CMD --terminal-done MARKER --terminal-screenshot term.png]
// With --terminal-command it then opens a terminal, types CMD at the first
// prompt, waits for MARKER in the terminal's output and takes a second
// screenshot; the JSON gains `terminal` (everything the terminal showed).
// HTTPS servers with self-signed certificates are accepted.
// Environment: LEAKGUARD_NODE_MODULES (where playwright-core is installed,
// default target/jupyter/node/node_modules), CHROMIUM (default /usr/bin/chromium).

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.LEAKGUARD_NODE_MODULES || path.join(here, '..', '..', 'target', 'jupyter', 'node', 'node_modules');
const { chromium } = createRequire(path.join(modules, 'noop.js'))('playwright-core');

function args(argv) {
  const out = { timeout: '120' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'token', 'path', 'screenshot']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

const opt = args(process.argv.slice(2));
const timeout = Number(opt.timeout) * 1000;
const profile = mkdtempSync(path.join(tmpdir(), 'leakguard-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  ignoreHTTPSErrors: true, // servers with a self-signed certificate
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
  ],
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeout);
  const frames = [];
  const terminal = []; // what terminals' websockets sent: ["stdout", text] frames
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('latin1');
      frames.push(text);
      if (ws.url().includes('/terminals/websocket/')) {
        try {
          const m = JSON.parse(text);
          if (m[0] === 'stdout') terminal.push(m[1]);
        } catch (e) { /* not JSON: not a terminal message */ }
      }
    });
  });
  const shown = () => terminal.join('');
  const until = async (what, test) => {
    const deadline = Date.now() + timeout;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the terminal showed: ${shown()}`);
      await page.waitForTimeout(100);
    }
  };
  await page.goto(`${opt.url}/lab/tree/${opt.path}?token=${opt.token}&reset`);
  await page.waitForSelector('.jp-Notebook .jp-Cell');
  // The kernel is ready when the toolbar's status says so.
  await page.waitForFunction(() => {
    const app = window.jupyterapp;
    const w = app && app.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k && k.status === 'idle';
  });
  const cells = await page.evaluate(() => window.jupyterapp.shell.currentWidget.content.widgets.filter((c) => c.model.type === 'code').length);
  await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
  // Done when every code cell has an execution count (or the run stopped at an
  // error) and the kernel is idle again.
  await page.waitForFunction(() => {
    const nb = window.jupyterapp.shell.currentWidget;
    const code = nb.content.widgets.filter((c) => c.model.type === 'code');
    const ran = code.filter((c) => c.model.executionCount !== null);
    const failed = code.some((c) => c.model.outputs.toJSON().some((o) => o.output_type === 'error'));
    return nb.sessionContext.session.kernel.status === 'idle' && (ran.length === code.length || failed) && ran.length > 0;
  });
  await page.waitForTimeout(500); // let the last outputs render
  const outputs = await page.$$eval('.jp-OutputArea-output', (els) => els.map((e) => e.innerText));
  await page.evaluate(() => window.jupyterapp.commands.execute('docmanager:save'));
  await page.waitForFunction(() => !window.jupyterapp.shell.currentWidget.context.model.dirty);
  await page.screenshot({ path: opt.screenshot, fullPage: false });
  if (opt['terminal-command']) {
    // A terminal: type the command once its shell prompts, wait for its end marker.
    await page.evaluate(() => window.jupyterapp.commands.execute('terminal:create-new'));
    await page.waitForSelector('.jp-Terminal .xterm');
    await until('the prompt', () => /[$#] $/.test(shown().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')));
    await page.click('.jp-Terminal .xterm');
    await page.keyboard.type(opt['terminal-command']);
    await page.keyboard.press('Enter');
    await until('the command', () => shown().includes(opt['terminal-done']));
    await page.waitForTimeout(500); // let xterm draw
    await page.screenshot({ path: opt['terminal-screenshot'], fullPage: false });
  }
  process.stdout.write(JSON.stringify({ outputs, frames, cells, screenshot: opt.screenshot, terminal: shown() }) + '\n');
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
