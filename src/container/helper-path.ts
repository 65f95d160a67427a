// Where `npm install` builds the container helper (binding.gyp's second target); one definition
// for tsvmm's containers and for tsvmm-runc.

import { fileURLToPath } from 'node:url';

export const CONTAINER_INIT = process.env.TSVMM_CONTAINER_INIT
  ?? fileURLToPath(new URL('../../build/Release/container-init', import.meta.url));
