// --net veth: two containers on the tsvmm0 bridge exchange data, through the real kernel's
// veth pairs and bridge, configured with iproute2.

import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Container } from '../../src/container/container.js';
import { hostInterfaceName } from '../../src/container/network.js';
import { runtimeDirKey } from '../../src/api/runtime-dir.js';
import { containerMissingReason, ROOTFS } from '../helpers/container-rootfs.js';

const ipMissing = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no iproute2 (ip): network tests skipped';
  }
})();

describe.skipIf(containerMissingReason ?? ipMissing)('containers on the bridge', () => {
  const started: Container[] = [];
  afterAll(async () => { await Promise.all(started.map((c) => c.stop(0))); });

  it('two containers exchange data over their veth pairs', async () => {
    const server = Container.run({ rootfs: ROOTFS, name: 'net-server', net: 'veth', command: ['sh', '-c', 'ip -o -4 addr show eth0; echo listening; nc -l -p 7000; echo "server done"'] });
    started.push(server);
    await server.waitForOutput('listening', 20_000);
    expect(server.address).toMatch(/^10\.88\.\d+\.\d+$/);
    expect(server.output).toContain(`inet ${server.address}/16`);
    // The host end is named after the container (and its runtime directory) and sits on the bridge.
    const host = hostInterfaceName('net-server', server.id);
    expect(host).toMatch(/^tv-net-se-[0-9a-f]{5}$/);
    expect(existsSync(`/sys/class/net/${host}/brport`)).toBe(true);
    expect(readdirSync('/sys/class/net/tsvmm0/brif')).toContain(host);

    const client = Container.run({
      rootfs: ROOTFS, name: 'net-client', net: 'veth',
      command: ['sh', '-c', `ping -c 1 -W 5 ${server.address} >/dev/null && echo "ping ok"; echo "hello over the bridge" | nc ${server.address} 7000 && echo sent`],
    });
    started.push(client);
    expect(await client.wait()).toMatchObject({ kind: 'exited', code: 0 });
    expect(client.address).not.toBe(server.address);
    expect(client.output).toBe('ping ok\nsent\n');
    expect(await server.wait()).toMatchObject({ kind: 'exited', code: 0 });
    expect(server.output).toContain('hello over the bridge\nserver done\n');
    // The pair went with the namespace.
    await expect.poll(() => existsSync(`/sys/class/net/${host}`)).toBe(false);
  });

  it('names the host end within IFNAMSIZ, after the start of the name and a hash of NAME-KEY', () => {
    expect(hostInterfaceName('web', 'web-0123abcd')).toMatch(/^tv-web-[0-9a-f]{8}$/);
    expect(hostInterfaceName('a-very-long-container-name', 'a-very-long-container-name-0123abcd')).toMatch(/^tv-a-very-[0-9a-f]{5}$/);
    expect(hostInterfaceName('a-very-long-container-name', 'a-very-long-container-name-0123abcd'))
      .not.toBe(hostInterfaceName('a-very-long-container-name2', 'a-very-long-container-name2-0123abcd'));
    expect(hostInterfaceName('web', 'web-0123abcd')).not.toBe(hostInterfaceName('web', 'web-4567cdef'));
  });

  it('containers of one name from two runtime directories run on the bridge at once, each with its address in ps when run --detach returns', () => {
    const dirs = [0, 1].map(() => mkdtempSync(path.join(tmpdir(), 'tsvmm-net-dir-')));
    const cli = (dir: string, args: string[]) => spawnSync(process.execPath, ['bin/tsvmm.js', ...args],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TSVMM_RUNTIME_DIR: dir } });
    try {
      const hosts = dirs.map((dir) => hostInterfaceName('same', `same-${runtimeDirKey(dir)}`));
      expect(hosts[0]).not.toBe(hosts[1]);
      const addresses: (string | undefined)[] = [];
      for (const [i, dir] of dirs.entries()) {
        const r = cli(dir, ['container', 'run', '--rootfs', ROOTFS, '--name', 'same', '--net', 'veth', '--detach', '--', 'sleep', '60']);
        expect(r.status, r.stderr).toBe(0);
        // --detach returns once the container runs with its network up: the pair is on the
        // bridge and ps shows the address at once, with no wait.
        expect(readdirSync('/sys/class/net/tsvmm0/brif')).toContain(hosts[i]);
        addresses.push((JSON.parse(cli(dir, ['ps', '--json']).stdout) as { address?: string }[])[0]?.address);
        expect(addresses[i]).toMatch(/^10\.88\./);
      }
      expect(addresses[0]).not.toBe(addresses[1]);
    } finally {
      for (const dir of dirs) cli(dir, ['stop', 'same', '--timeout', '0']);
    }
  });
});
