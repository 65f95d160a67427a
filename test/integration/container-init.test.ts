// The helper on its own: what it answers on fd 3 when the plan it is given is not one it can
// carry out. (Good plans are exercised by every container test.)

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExecPlanLayout, helperFrame, InitPlanLayout } from '../../src/container/plan-layout.js';
import { buildPlan } from '../../src/container/plan.js';
import { defaultSpec } from '../../src/container/spec.js';

const HELPER = path.resolve('build/Release/container-init');
const missing = (() => {
  try {
    accessSync(HELPER, constants.X_OK);
    return undefined;
  } catch {
    return `${HELPER} is not built: skipped`;
  }
})();

/** Runs the helper with `input` on fd 3; resolves with its answer lines and exit code. */
function helper(input: string | Buffer): Promise<{ lines: unknown[]; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(HELPER, [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    const channel = child.stdio[3] as Duplex;
    let out = '';
    channel.on('data', (d: Buffer) => { out += d.toString(); });
    channel.on('error', () => {});
    channel.end(input);
    child.on('close', (code) => resolve({ lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l)), code }));
  });
}

describe.skipIf(missing)('container-init given a bad plan', () => {
  const plan = buildPlan(defaultSpec('/nonexistent', ['true']), {
    supervisor: 1, rootfs: '/nonexistent', prepare: [], waitForHost: false,
    cgroups: { version: 'v2', procsFiles: [], views: [], devicesEnforced: true },
  });
  const refused = (message: string, errno = 0) => [{ error: { step: 'plan', message, errno } }];
  const foreign = 'the plan is not one this container-init reads (tsvmm and container-init do not match: run `npm install`)';

  it('answers one error line and exits 125 for what is not a plan frame of its build, before creating anything', async () => {
    const frame = helperFrame(InitPlanLayout, plan);
    const otherBuild = Buffer.from(frame);
    otherBuild.writeUInt32LE((otherBuild.readUInt32LE(4) ^ 1) >>> 0, 4);
    const longer = Buffer.from(frame);
    longer.writeUInt32LE(frame.length, 12);
    for (const input of ['{"version": 1, "cloneFlags": 0, "the old JSON plan": true}\n', otherBuild, longer]) {
      const { lines, code } = await helper(input);
      expect(code).toBe(125);
      expect(lines).toEqual(refused(foreign));
    }
  });

  it('refuses a damaged plan and an exec plan without a command; says when the channel ends first', async () => {
    const frame = helperFrame(InitPlanLayout, plan);
    // A body that ends inside its last field: the header's length agrees with it.
    const cut = Buffer.from(frame.subarray(0, frame.length - 3));
    cut.writeUInt32LE(cut.length - 16, 12);
    expect((await helper(cut)).lines).toEqual(refused('the plan is damaged'));
    const exec = helperFrame(ExecPlanLayout, { cgroupProcs: [], detach: false, process: { ...plan.process, args: [] } });
    expect((await helper(exec)).lines).toEqual(refused('the plan has no command'));
    const eof = await helper('');
    expect(eof.code).toBe(125);
    expect(eof.lines).toEqual(refused('reading the plan: Broken pipe', 32));
  });

  it('says it must be run by tsvmm when fd 3 is not there', async () => {
    const child = spawn(HELPER, [], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(125);
    expect(err).toBe('container-init: run by tsvmm only (fd 3 must be its channel)\n');
  });
});
