// Starts the Go harness (compat/harness): an engram server and a scripted
// model on loopback. See compat/harness/main.go for what it serves.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import Letta from '@letta-ai/letta-client';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

// The token the harness's engram requires; the SDK sends it as a Bearer token.
export const token = 'compat-secret-token';

// startHarness builds the harness (or uses $ENGRAM_COMPAT_HARNESS, a prebuilt
// binary), runs it and waits for its URLs. stop() closes its stdin, which
// shuts it down, and waits for it to exit.
export async function startHarness() {
  let bin = process.env.ENGRAM_COMPAT_HARNESS;
  let buildDir;
  if (!bin) {
    buildDir = mkdtempSync(join(tmpdir(), 'engram-compat-bin-'));
    bin = join(buildDir, 'harness');
    execFileSync('go', ['build', '-o', bin, './compat/harness'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const args = ['-token', token];
  if (process.env.ENGRAM_COMPAT_VERBOSE) args.push('-v');
  // Over HTTPS (compat/tls.sh): the certificate is made beforehand, and
  // NODE_EXTRA_CA_CERTS names it, so the SDK checks it like any other.
  if (process.env.ENGRAM_COMPAT_TLS_DIR) args.push('-tls-dir', process.env.ENGRAM_COMPAT_TLS_DIR);
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));

  const urls = await new Promise((res, rej) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => rej(new Error('the harness printed no URLs within 120 s')), 120_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        res(JSON.parse(line));
      } catch (e) {
        rej(new Error(`the harness printed ${JSON.stringify(line)}, not JSON: ${e.message}`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`the harness exited (code ${code}, signal ${signal}) before printing its URLs`));
    });
  });

  if (process.env.ENGRAM_COMPAT_TLS_DIR && !urls.engram.startsWith('https://')) {
    child.stdin.end();
    throw new Error(`asked for HTTPS, the harness serves ${urls.engram}`);
  }

  const control = async (method, path, body) => {
    const r = await fetch(urls.control + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`harness ${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  };

  return {
    urls,
    // script appends llmtest steps (Go field names: Content, ToolCalls
    // [{Name, Arguments}], Finish, Status, ...) to the model's script.
    script: (...steps) => control('POST', '/script', steps),
    pending: async () => (await control('GET', '/pending')).pending,
    requests: async () => (await control('GET', '/requests')) ?? [],
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
      if (buildDir) rmSync(buildDir, { recursive: true, force: true });
    },
  };
}

// newClient is the SDK as a user builds it, pointed at the harness's engram.
// Retries are off so that an error engram answers is seen, not retried away.
export function newClient(h, opts = {}) {
  return new Letta({ baseURL: h.urls.engram, apiKey: token, maxRetries: 0, timeout: 60_000, ...opts });
}
