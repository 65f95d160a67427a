// Parsing of the device options of `tsvmm run`: `--disk FILE[,ro]` and `--net tap=NAME[,mac=MAC]`.

import { TsvmmError } from '../errors.js';
import type { DiskConfig, NetConfig } from '../vmm/virtio-setup.js';

function optionError(option: string, value: string, why: string): TsvmmError {
  return new TsvmmError('BAD_CONFIG', `${option} ${value}: ${why}`);
}

/** "disk.img" or "disk.img,ro" (also "ro=on"/"readonly"). Commas in file names are not supported. */
export function parseDiskOption(value: string): DiskConfig {
  const [file, ...flags] = value.split(',');
  if (!file) throw optionError('--disk', value, 'needs a file name');
  let readOnly = false;
  for (const flag of flags) {
    if (flag === 'ro' || flag === 'readonly' || flag === 'ro=on') readOnly = true;
    else if (flag === 'rw' || flag === 'ro=off') readOnly = false;
    else throw optionError('--disk', value, `unknown flag "${flag}" (try FILE or FILE,ro)`);
  }
  return { path: file, readOnly };
}

/** "tap=NAME" or "tap=NAME,mac=52:54:00:12:34:56". */
export function parseNetOption(value: string): NetConfig {
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw optionError('--net', value, `"${part}" is not key=value (try tap=NAME)`);
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const tap = fields.get('tap');
  if (!tap) throw optionError('--net', value, 'needs tap=NAME');
  for (const key of fields.keys()) {
    if (key !== 'tap' && key !== 'mac') throw optionError('--net', value, `unknown key "${key}" (tap and mac are known)`);
  }
  return { tap, mac: fields.get('mac') };
}
