// --net veth: two containers on the tsvmm0 bridge exchange data, through the real kernel's
// veth pairs and bridge, configured with iproute2.

import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Container } from '../../src/container/container.js';
import { hostInterfaceName } from '../../src/container/network.js';
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
    // The host end is named after the container and sits on the bridge.
    const host = hostInterfaceName('net-server');
    expect(host).toBe('tv-net-server');
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

  it('gives the interface name a hash when the container name is too long for one', () => {
    expect(hostInterfaceName('a-very-long-container-name')).toMatch(/^tv-a-very--[0-9a-f]{4}$/);
    expect(hostInterfaceName('a-very-long-container-name')).not.toBe(hostInterfaceName('a-very-long-container-name2'));
    expect(hostInterfaceName('a-very-long-container-name').length).toBeLessThanOrEqual(15);
  });
});
