import { describe, expect, it } from 'vitest';
import { TsvmmError } from '../../src/errors.js';
import { cliMessage } from '../../src/cli/output.js';
import { bootConfig, ConfigError, parseSize, resolveConfig, DEFAULT_MEMORY } from '../../src/vmm/config.js';

const MiB = 1024 * 1024;

describe('sizes', () => {
  it.each([
    ['256M', 256 * MiB], ['256MiB', 256 * MiB], ['1G', 1024 * MiB], ['1.5g', 1536 * MiB],
    ['512', 512 * MiB], ['4096k', 4 * MiB], [' 64 MB ', 64 * MiB], [MiB * 32, MiB * 32],
  ])('%s is %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  it.each(['', 'abc', '12Q', '-5M', '1e3M', '0'])('refuses %j', (input) => {
    expect(() => parseSize(input)).toThrow(ConfigError);
  });
});

describe('VM configuration', () => {
  it('fills in defaults', () => {
    const c = resolveConfig({ kernel: 'k' });
    expect(c).toMatchObject({ kernel: 'k', memory: DEFAULT_MEMORY, cpus: 1, cmdline: 'console=ttyS0 reboot=k panic=1' });
  });

  it.each([
    { kernel: 'k' },
    { kernel: '/k', initrd: '/i', cmdline: 'x', memory: '64M', cpus: 3, name: 'n', disks: [{ path: '/a' }, { path: '/b', readOnly: true }],
      net: { tap: 't0', mac: '52:54:00:00:00:01' }, rng: true, console: 'virtio' as const, virtioCmdline: false },
  ])('a reboot boots what was resolved: bootConfig(%j) resolves to the same', (config) => {
    const resolved = resolveConfig(config, { hostMemory: 2048 * MiB });
    expect(resolveConfig(bootConfig(resolved), { hostMemory: 2048 * MiB })).toEqual(resolved);
  });

  it.each([
    [{ memory: '8M' }, /at least 16 MiB/],
    [{ memory: '1T' }, /more than this host's 2048 MiB/],
    [{ memory: 16 * MiB + 100 }, /whole number of 4 KiB pages/],
    [{ cpus: 0 }, /^cpus 0: must be a whole number of at least 1$/],
    [{ cpus: 1.5 }, /^cpus 1.5/],
    [{ memory: 'lots' }, /^memory "lots": not a size/],
    [{ cpus: 300 }, /at most 254 vCPUs/],
  ])('refuses %j in one line', (config, message) => {
    expect(() => resolveConfig({ kernel: 'k', ...config }, { hostMemory: 2048 * MiB })).toThrow(message);
  });
});

describe('errors in the library\'s words, and the CLI\'s', () => {
  it('names the option; the CLI names its flag instead', () => {
    let error: unknown;
    try {
      resolveConfig({ kernel: 'k', memory: '8M' });
    } catch (e) {
      error = e;
    }
    expect((error as TsvmmError).message).toBe('memory 8M: at least 16 MiB is needed');
    expect((error as TsvmmError).option).toBe('memory');
    expect(cliMessage(error as TsvmmError)).toBe('--mem 8M: at least 16 MiB is needed');
    expect(cliMessage(new TsvmmError('X', 'cpus 0: no', { option: 'cpus' }))).toBe('--cpus 0: no');
    expect(cliMessage(new TsvmmError('X', 'plain message'))).toBe('plain message');
  });
});
