// Reads the properties of the SDK's request types from its shipped
// declaration files, so that the suite follows the pinned SDK version
// instead of a hand-copied list.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const sdkDir = dirname(require.resolve('@letta-ai/letta-client'));

// fields returns the top-level properties of `export interface name` in the
// SDK's resources/<file>, as a Map from name to {optional, nullable}.
// Properties of an interface it extends in the same file are included.
export function fields(file, name) {
  const src = readFileSync(join(sdkDir, 'resources', file), 'utf8');
  const head = new RegExp(`export interface ${name}(?: extends ([\\w.]+))? \\{\\n`);
  const m = head.exec(src);
  if (!m) throw new Error(`no interface ${name} in ${file}`);
  const start = m.index + m[0].length;
  const lines = src.slice(start, src.indexOf('\n}\n', start)).split('\n');
  const out = new Map();
  for (let i = 0; i < lines.length; i++) {
    const p = /^ {4}(\w+)(\??): (.*)$/.exec(lines[i]);
    if (!p) continue;
    // A type spanning lines ends on the next line indented by four spaces
    // that closes it ("    } | null;", "    }>;").
    let last = p[3];
    if (!last.endsWith(';')) {
      while (++i < lines.length && !/^ {4}\S.*;$/.test(lines[i]));
      last = lines[i] ?? '';
    }
    out.set(p[1], { optional: p[2] === '?', nullable: /\| null;$/.test(last) });
  }
  if (m[1] && !m[1].includes('.') && m[1] !== 'ArrayPageParams') {
    for (const [k, v] of fields(file, m[1])) if (!out.has(k)) out.set(k, v);
  }
  if (out.size === 0) throw new Error(`interface ${name} in ${file} has no properties; did the SDK's layout change?`);
  return out;
}
