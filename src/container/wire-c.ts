// The C side of wire.ts: from the layouts of plan-layout.ts, the helper's structs and their
// decoders (native/helper-wire.h), so that container-init.c reads exactly what TypeScript writes.
// Run by scripts/helper-wire.mjs at `npm run build`; test/unit/helper-wire.test.ts checks that
// the header in the tree is the one these layouts make.

import { FRAME_HEADER, FRAME_MAGIC, layoutHash, type Layout, type StructLayout } from './wire.js';

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The C type of a list's item or a plain field. */
function cType(layout: Layout, where: string): string {
  switch (layout.kind) {
    case 'int':
      return 'long long';
    case 'bool':
      return 'int';
    case 'str':
      return 'char *';
    case 'struct':
      return layout.name;
    default:
      throw new Error(`${where}: a ${layout.kind} of a ${layout.kind === 'list' || layout.kind === 'opt' ? layout.of.kind : ''} has no C form here`);
  }
}

function declare(type: string, name: string): string {
  return type.endsWith('*') ? `${type}${name};` : `${type} ${name};`;
}

function fieldDeclarations(key: string, layout: Layout, where: string): string[] {
  const name = snake(key);
  switch (layout.kind) {
    case 'list':
      // Lists of strings end with a NULL as well (argv, envp).
      return [declare(`${cType(layout.of, where)} *`, name), `size_t n_${name};`];
    case 'opt':
      if (layout.of.kind === 'str') return [`${declare('char *', name)} // NULL: absent`];
      return [`int has_${name};`, declare(cType(layout.of, where), name)];
    default:
      return [declare(cType(layout, where), name)];
  }
}

function readExpression(layout: Layout, target: string, where: string): string[] {
  switch (layout.kind) {
    case 'int':
      return [`${target} = wire_int(r);`];
    case 'bool':
      return [`${target} = wire_bool(r);`];
    case 'str':
      return [`${target} = wire_str(r);`];
    case 'struct':
      return [`decode_${layout.name}(r, &${target});`];
    default:
      throw new Error(`${where}: nested ${layout.kind} has no C form here`);
  }
}

function decodeField(key: string, layout: Layout, where: string): string[] {
  const name = `out->${snake(key)}`;
  switch (layout.kind) {
    case 'list': {
      const terminated = layout.of.kind === 'str' ? ' + 1' : '';
      return [
        `out->n_${snake(key)} = wire_count(r);`,
        `${name} = wire_alloc(r, (out->n_${snake(key)}${terminated}) * sizeof *${name});`,
        `for (size_t i = 0; r->ok && i < out->n_${snake(key)}; i++) {`,
        ...readExpression(layout.of, `${name}[i]`, where).map((l) => `  ${l}`),
        '}',
      ];
    }
    case 'opt':
      if (layout.of.kind === 'str') return [`${name} = wire_bool(r) ? wire_str(r) : NULL;`];
      return [`out->has_${snake(key)} = wire_bool(r);`, `if (out->has_${snake(key)}) {`, ...readExpression(layout.of, name, where).map((l) => `  ${l}`), '}'];
    default:
      return readExpression(layout, name, where);
  }
}

/** Every struct reachable from `messages`, each before its users; one layout per C name. */
function structsInOrder(messages: readonly StructLayout[]): StructLayout[] {
  const seen = new Map<string, StructLayout>();
  const order: StructLayout[] = [];
  const visit = (layout: Layout) => {
    if (layout.kind === 'list' || layout.kind === 'opt') return visit(layout.of);
    if (layout.kind !== 'struct') return;
    const known = seen.get(layout.name);
    if (known) {
      if (JSON.stringify(known) !== JSON.stringify(layout)) throw new Error(`two layouts named ${layout.name}`);
      return;
    }
    seen.set(layout.name, layout);
    for (const field of Object.values(layout.fields)) visit(field);
    order.push(layout);
  };
  messages.forEach(visit);
  return order;
}

const ENGINE = `// Decoding: a reader over one frame's body; any overrun clears ok, and every value read after
// it is zero or NULL. Memory is never freed: the helper reads a few frames and then execs or ends.
typedef struct {
  const unsigned char *p, *end;
  int ok;
} wire_reader;

static int wire_take(wire_reader *r, size_t n) {
  if (!r->ok || (size_t)(r->end - r->p) < n) {
    r->ok = 0;
    return 0;
  }
  return 1;
}

static void *wire_alloc(wire_reader *r, size_t n) {
  void *m = calloc(n ? n : 1, 1);
  if (!m) r->ok = 0;
  return m;
}

static uint32_t wire_u32(wire_reader *r) {
  if (!wire_take(r, 4)) return 0;
  uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
  r->p += 4;
  return v;
}

static long long wire_int(wire_reader *r) {
  if (!wire_take(r, 8)) return 0;
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | r->p[i];
  r->p += 8;
  return (long long)v;
}

static int wire_bool(wire_reader *r) {
  if (!wire_take(r, 1)) return 0;
  return *r->p++ != 0;
}

static char *wire_str(wire_reader *r) {
  uint32_t n = wire_u32(r);
  if (!wire_take(r, n)) return NULL;
  char *s = wire_alloc(r, (size_t)n + 1);
  if (!s) return NULL;
  memcpy(s, r->p, n);
  r->p += n;
  return s;
}

// A list's length; each item takes at least a byte, so a count past the frame's end is damage.
static size_t wire_count(wire_reader *r) {
  uint32_t n = wire_u32(r);
  if (n > (size_t)(r->end - r->p)) {
    r->ok = 0;
    return 0;
  }
  return n;
}

// The body length of a frame whose ${FRAME_HEADER}-byte header is \`h\`, or -1 if it is not a frame of
// this build (magic, layout hash) or not of \`kind\`.
static long wire_frame_body(const unsigned char *h, uint32_t kind) {
  wire_reader r = { h, h + ${FRAME_HEADER}, 1 };
  if (memcmp(h, "${FRAME_MAGIC}", 4) != 0) return -1;
  r.p += 4;
  if (wire_u32(&r) != HELPER_WIRE_HASH || wire_u32(&r) != kind) return -1;
  return (long)wire_u32(&r);
}
`;

export function generateHelperHeader(messages: readonly StructLayout[], source: string): string {
  const structs = structsInOrder(messages);
  const out: string[] = [
    `// Generated from ${source} by scripts/helper-wire.mjs (npm run build): do not edit.`,
    '// The structs and decoders of what TypeScript hands to container-init (src/container/wire.ts).',
    '',
    '#include <stdint.h>',
    '#include <stdlib.h>',
    '#include <string.h>',
    '',
    `#define HELPER_WIRE_HASH 0x${layoutHash(messages).toString(16).padStart(8, '0')}u`,
    `#define HELPER_WIRE_HEADER ${FRAME_HEADER}`,
    '',
    'enum helper_wire_kind {',
    ...messages.map((m, i) => `  WIRE_${m.name.toUpperCase()} = ${i},`),
    '};',
    '',
  ];
  for (const s of structs) {
    const fields = Object.entries(s.fields).flatMap(([key, layout]) => fieldDeclarations(key, layout, `${s.name}.${key}`));
    out.push('typedef struct {', ...(fields.length ? fields : ['char unused;']).map((f) => `  ${f}`), `} ${s.name};`, '');
  }
  out.push(ENGINE);
  for (const s of structs) {
    out.push(`static void decode_${s.name}(wire_reader *r, ${s.name} *out) {`);
    const body = Object.entries(s.fields).flatMap(([key, layout]) => decodeField(key, layout, `${s.name}.${key}`));
    out.push(...(body.length ? body : ['(void)r;', '(void)out;']).map((l) => `  ${l}`), '}', '');
  }
  for (const m of messages) {
    out.push(
      `// A whole ${m.name} frame (header and body); 0, or -1 if it is not one or is damaged.`,
      `static __attribute__((unused)) int read_${m.name}(const unsigned char *frame, size_t length, ${m.name} *out) {`,
      `  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_${m.name.toUpperCase()}) != (long)(length - HELPER_WIRE_HEADER)) return -1;`,
      '  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };',
      `  decode_${m.name}(&r, out);`,
      '  return r.ok && r.p == r.end ? 0 : -1;',
      '}',
      '',
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}
