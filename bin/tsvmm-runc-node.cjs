// tsvmm-runc's Node half: bin/tsvmm-runc's C front end (native/container-init.c, runc_node) runs
// it as `node tsvmm-runc-node.cjs VERB runc's-arguments...` for what it does not answer itself.
// VERB (the front end found it among the arguments; may be empty) only names the V8 code cache
// the bundle is compiled from (src/meta/code-cache.ts), and leaves argv before the bundle runs.
'use strict';

const [verb] = process.argv.splice(2, 1);
require('../dist/bundle/load.cjs').loadBundle(`${__dirname}/../dist/bundle/runc.cjs`, verb ?? '');
