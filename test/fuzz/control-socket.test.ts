// The control socket's protocol under generated and mutated request lines, chunked at random: the
// server answers every line that is a JSON object with one response naming its id (or id 0), each
// an `ok` result or a coded error, never crashes, and still answers `status` afterwards. The
// instance behind it is a stand-in that records what it was asked (the VM side is tested in
// test/integration/control.test.ts).

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ControlServer, type ControlledInstance } from '../../src/api/control-server.js';
import type { InstanceStatus } from '../../src/api/protocol.js';
import { runs, timeout } from '../helpers/fuzz.js';

const name = `fuzz-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
const status = (): InstanceStatus => ({ name, kind: 'vm', state: 'running', cpus: 1, memory: 1 << 20, uptimeMs: 1, exits: 0, cpuTimeUs: 0 });
const asked: string[] = [];
const instance: ControlledInstance = {
  status,
  pause: async () => { asked.push('pause'); },
  resume: () => { asked.push('resume'); },
  stop: async () => { asked.push('stop'); },
  snapshot: async (path, options) => { options.onProgress(1, 2); asked.push(`snapshot ${path}`); },
};

let server: ControlServer;
beforeAll(async () => {
  server = await ControlServer.listen({ name, kind: 'vm', pid: process.pid, startedAt: Date.now(), cpus: 1, memory: 1 << 20, image: 'fuzz' }, instance);
});
afterAll(async () => { await server.close(); });

/** Sends `chunks` on one connection, then a status request; resolves with every line answered. */
function exchange(chunks: readonly Uint8Array[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.path);
    const answers: unknown[] = [];
    let buffer = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to the final status; got ${JSON.stringify(answers)}`)); }, 5000);
    socket.on('error', reject);
    socket.on('data', (data) => {
      buffer += data.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const answer = JSON.parse(line) as { id?: unknown };
        answers.push(answer);
        if (answer.id === 424242 && 'ok' in answer) {
          clearTimeout(timer);
          socket.end();
          resolve(answers);
        }
      }
    });
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      // A line break first: whatever the chunks left unfinished ends there.
      socket.write('\n{"id":424242,"op":"status"}\n');
    });
  });
}

const ops = fc.constantFrom('status', 'pause', 'resume', 'snapshot', 'update', 'resize', 'stop', 'nonsense', '', 'STATUS', '__proto__', 'constructor');
const jsonValue = fc.jsonValue({ maxDepth: 2 });
const request = fc.record({
  id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), jsonValue),
  op: fc.oneof({ weight: 5, arbitrary: ops }, { weight: 1, arbitrary: jsonValue }),
  path: fc.oneof(fc.constant(undefined), fc.string(), jsonValue),
  diff: fc.oneof(fc.constant(undefined), fc.boolean(), jsonValue),
  limits: fc.oneof(fc.constant(undefined), jsonValue),
  size: fc.oneof(fc.constant(undefined), fc.record({ rows: fc.integer(), cols: fc.integer() }), jsonValue),
}, { requiredKeys: ['op'] });
/** A line: a generated request, a request cut or mutated, any JSON, or bytes. */
const line = fc.oneof(
  { weight: 4, arbitrary: request.map((r) => JSON.stringify(r)) },
  { weight: 1, arbitrary: fc.tuple(request, fc.nat()).map(([r, cut]) => JSON.stringify(r).slice(0, cut)) },
  { weight: 1, arbitrary: jsonValue.map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }).map((s) => s.replace(/\n/g, ' ')) },
);

describe('control socket protocol', () => {
  it('answers generated and mutated request lines, however they are chunked, and keeps answering', async () => {
    await fc.assert(fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.array(fc.nat({ max: 40 }), { maxLength: 8 }), async (lines, cuts) => {
      // `stop` and `console` change the connection or the instance for good: tested on their own.
      const text = lines.filter((l) => !/"op":"(stop|console)"/.test(l)).join('\n');
      const bytes = Buffer.from(text);
      const chunks: Uint8Array[] = [];
      let at = 0;
      for (const cut of cuts) {
        chunks.push(bytes.subarray(at, at + cut));
        at += cut;
      }
      chunks.push(bytes.subarray(at));
      const answers = await exchange(chunks);
      for (const answer of answers) {
        expect(answer).toEqual(expect.objectContaining({ id: expect.any(Number) }));
        const a = answer as { ok?: boolean; error?: { code: unknown; message: unknown }; progress?: unknown };
        if (a.ok === false) expect(a.error).toEqual({ code: expect.any(String), message: expect.any(String) });
        else if (a.ok === undefined) expect(a.progress).toBeDefined();
      }
    }), runs(300));
  }, timeout(120_000));
});
