// WebAssembly SIMD kernels for the matching hot loops. Plain JS computes a 512-d dot product one
// float64 lane at a time (~0.9 ns per element here); 128-bit wasm SIMD does four float32 lanes and
// lets 100k x 512 exact search run at memory speed (issue 6, item 4). The module is assembled
// here from its opcodes (WebAssembly Core Spec 2.0, section 5.4) so the repository ships no binary
// and needs no wasm toolchain; every kernel is checked against a plain JS loop in simd.spec.ts.

type Code = number[];

const uleb = (n: number): Code => {
  const out: Code = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): Code => {
  const out: Code = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];
const name = (s: string): Code => vec([...s].map((c) => [c.charCodeAt(0)]));

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

// Core instructions (memarg alignment is a hint; offsets are byte offsets).
const get = (i: number): Code => [0x20, ...uleb(i)];
const set = (i: number): Code => [0x21, ...uleb(i)];
const tee = (i: number): Code => [0x22, ...uleb(i)];
const i32 = (v: number): Code => [0x41, ...sleb(v)];
const add = [0x6a];
const mul = [0x6c];
const shl = [0x74];
const ltU = [0x49];
const geU = [0x4f];
const i32Load = (offset = 0): Code => [0x28, 2, ...uleb(offset)];
const i32Store = [0x36, 2, 0];
const f32Load = (offset = 0): Code => [0x2a, 2, ...uleb(offset)];
const f32Store = [0x38, 2, 0];
const f32Add = [0x92];
const f32Ge = [0x60];
const block = [0x02, 0x40];
const loop = [0x03, 0x40];
const ifThen = [0x04, 0x40];
const end = [0x0b];
const brIf = (depth: number): Code => [0x0d, depth];

// SIMD instructions (prefix 0xfd, then the opcode as a LEB128 u32).
const simd = (op: number): Code => [0xfd, ...uleb(op)];
const vLoad = (offset = 0): Code => [...simd(0x00), 4, ...uleb(offset)];
const vStore = (offset = 0): Code => [...simd(0x0b), 4, ...uleb(offset)];
const vZero = [...simd(0x0c), ...new Array<number>(16).fill(0)];
const swizzle = simd(0x0e);
const i8Splat = simd(0x0f);
const f32Splat = simd(0x13);
const f32Lane = (lane: number): Code => [...simd(0x1f), lane];
const f32x4Ge = simd(0x46);
const vAnd = simd(0x4e);
const anyTrue = simd(0x53);
const i8Add = simd(0x6e);
const i16ExtendLowS = simd(0x87);
const i16ExtendHighS = simd(0x88);
const i16ShrU = simd(0x8d);
const i16Add = simd(0x8e);
const i32ExtendLowS = simd(0xa7);
const i32ExtendHighS = simd(0xa8);
const f32x4Add = simd(0xe4);
const f32x4Mul = simd(0xe6);
const f32x4FromI32 = simd(0xfa);

/** Increment local `i` by `by` and loop (br_if 0) while it is below local `limit`. */
const stepWhileBelow = (i: number, by: number | Code, limit: number): Code => [
  ...get(i),
  ...(typeof by === 'number' ? i32(by) : by),
  ...add,
  ...tee(i),
  ...get(limit),
  ...ltU,
  ...brIf(0),
];

/**
 * Dot product of the row at local `row` with the query at local `q` over `stride` floats (a
 * multiple of 16), leaving one f32 on the stack. Four accumulators of four lanes each.
 */
function rowDot(l: { q: number; row: number; stride: number; j: number; acc: number }): Code {
  const accs = [l.acc, l.acc + 1, l.acc + 2, l.acc + 3];
  return [
    ...accs.flatMap((a) => [...vZero, ...set(a)]),
    ...i32(0),
    ...set(l.j),
    ...loop,
    ...accs.flatMap((a, k) => [...get(a), ...get(l.row), ...get(l.j), ...add, ...vLoad(16 * k), ...get(l.q), ...get(l.j), ...add, ...vLoad(16 * k), ...f32x4Mul, ...f32x4Add, ...set(a)]),
    ...get(l.j),
    ...i32(64),
    ...add,
    ...tee(l.j),
    ...get(l.stride),
    ...i32(2),
    ...shl,
    ...ltU,
    ...brIf(0),
    ...end,
    ...get(accs[0]!),
    ...get(accs[1]!),
    ...f32x4Add,
    ...get(accs[2]!),
    ...get(accs[3]!),
    ...f32x4Add,
    ...f32x4Add,
    ...tee(accs[0]!),
    ...f32Lane(0),
    ...get(accs[0]!),
    ...f32Lane(1),
    ...f32Add,
    ...get(accs[0]!),
    ...f32Lane(2),
    ...get(accs[0]!),
    ...f32Lane(3),
    ...f32Add,
    ...f32Add,
  ];
}

/** dots(q, rows, stride, n, out): out[i] = <rows[i], q> for n contiguous rows. */
function dots(): Code {
  const [q, rows, stride, n, out, stop, j, acc] = [0, 1, 2, 3, 4, 5, 6, 7];
  const body = [
    ...get(out), ...get(n), ...i32(2), ...shl, ...add, ...set(stop),
    ...block, ...get(out), ...get(stop), ...geU, ...brIf(0),
    ...loop,
    ...get(out), ...rowDot({ q, row: rows, stride, j, acc }), ...f32Store,
    ...get(rows), ...get(stride), ...i32(2), ...shl, ...add, ...set(rows),
    ...stepWhileBelow(out, 4, stop),
    ...end, ...end,
  ];
  return fn([[2, I32], [4, V128]], body);
}

/** dotsAt(q, rows, stride, idx, m, out): out[t] = <rows[idx[t]], q> for m row indices. */
function dotsAt(): Code {
  const [q, rows, stride, idx, m, out, stop, j, row, acc] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const body = [
    ...get(out), ...get(m), ...i32(2), ...shl, ...add, ...set(stop),
    ...block, ...get(out), ...get(stop), ...geU, ...brIf(0),
    ...loop,
    ...get(rows), ...get(idx), ...i32Load(), ...get(stride), ...mul, ...i32(2), ...shl, ...add, ...set(row),
    ...get(out), ...rowDot({ q, row, stride, j, acc }), ...f32Store,
    ...get(idx), ...i32(4), ...add, ...set(idx),
    ...stepWhileBelow(out, 4, stop),
    ...end, ...end,
  ];
  return fn([[3, I32], [4, V128]], body);
}

/**
 * scan(lut, blocks, nBlocks, codeBytes, qmul, qnoise, qadd, out): the 4-bit fast-scan of sign sketches
 * (André, Kermarrec, Le Scouarnec, "Cache locality is not enough", VLDB 2015). A block holds 16
 * templates: `codeBytes` (a multiple of 4) x 16 code bytes (byte p of each template side by
 * side), then 16 f32 scales, 16 offsets and 16 noise factors. Per code byte the query gives two
 * 16-entry int8 tables (low and high nibble, entries within +-15), looked up for 16 templates at
 * once with i8x16.swizzle; four bytes' lookups sum in int8, then widen into int16 sums.
 * out[t] = qmul * sum * scale[t] + offset[t] + qnoise * noise[t] + qadd.
 */
function scan(): Code {
  const [lut, blocks, nBlocks, codeBytes, qmul, qnoise, qadd, out] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [stop, codesEnd, lp, c, t, acc0, acc1, mask, vmul, vnoise, vadd] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const lookup = (u: number): Code => [
    ...get(blocks), ...vLoad(16 * u), ...set(c),
    ...get(lp), ...vLoad(32 * u), ...get(c), ...get(mask), ...vAnd, ...swizzle,
    ...get(lp), ...vLoad(32 * u + 16), ...get(c), ...i32(4), ...i16ShrU, ...get(mask), ...vAnd, ...swizzle,
    ...i8Add,
  ];
  const lanes = (acc: number, extend: Code, k: number): Code => [
    ...get(out), ...get(acc), ...extend, ...f32x4FromI32, ...get(vmul), ...f32x4Mul,
    ...get(blocks), ...vLoad(16 * k), ...f32x4Mul, ...get(blocks), ...vLoad(64 + 16 * k), ...f32x4Add,
    ...get(vnoise), ...get(blocks), ...vLoad(128 + 16 * k), ...f32x4Mul, ...f32x4Add, ...get(vadd), ...f32x4Add,
    ...vStore(16 * k),
  ];
  const body = [
    ...i32(0x0f), ...i8Splat, ...set(mask),
    ...get(qmul), ...f32Splat, ...set(vmul),
    ...get(qnoise), ...f32Splat, ...set(vnoise),
    ...get(qadd), ...f32Splat, ...set(vadd),
    ...get(blocks), ...get(nBlocks), ...get(codeBytes), ...i32(16), ...mul, ...i32(192), ...add, ...mul, ...add, ...set(stop),
    ...block, ...get(blocks), ...get(stop), ...geU, ...brIf(0),
    ...loop,
    ...vZero, ...set(acc0), ...vZero, ...set(acc1),
    ...get(lut), ...set(lp),
    ...get(blocks), ...get(codeBytes), ...i32(4), ...shl, ...add, ...set(codesEnd),
    ...loop,
    ...lookup(0), ...lookup(1), ...i8Add, ...lookup(2), ...i8Add, ...lookup(3), ...i8Add, ...set(t),
    ...get(acc0), ...get(t), ...i16ExtendLowS, ...i16Add, ...set(acc0),
    ...get(acc1), ...get(t), ...i16ExtendHighS, ...i16Add, ...set(acc1),
    ...get(lp), ...i32(128), ...add, ...set(lp),
    ...stepWhileBelow(blocks, 64, codesEnd),
    ...end,
    // `blocks` now points at the block's scales.
    ...lanes(acc0, i32ExtendLowS, 0),
    ...lanes(acc0, i32ExtendHighS, 1),
    ...lanes(acc1, i32ExtendLowS, 2),
    ...lanes(acc1, i32ExtendHighS, 3),
    ...get(out), ...i32(64), ...add, ...set(out),
    ...stepWhileBelow(blocks, 192, stop),
    ...end, ...end,
  ];
  return fn([[3, I32], [8, V128]], body);
}

/** select(values, n, threshold, idx) -> count: writes the indices i < n with values[i] >= threshold (n a multiple of 4). */
function select(): Code {
  const [values, n, threshold, idx, i, count, stop, lane, vthr] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const body = [
    ...get(threshold), ...f32Splat, ...set(vthr),
    ...block, ...get(n), ...i32(0), ...[0x4c /* i32.le_s */], ...brIf(0),
    ...loop,
    ...get(values), ...get(i), ...i32(2), ...shl, ...add, ...vLoad(), ...get(vthr), ...f32x4Ge, ...anyTrue,
    ...ifThen,
    ...get(i), ...i32(4), ...add, ...set(stop), ...get(i), ...set(lane),
    ...loop,
    ...get(values), ...get(lane), ...i32(2), ...shl, ...add, ...f32Load(), ...get(threshold), ...f32Ge,
    ...ifThen,
    ...get(idx), ...get(count), ...i32(2), ...shl, ...add, ...get(lane), ...i32Store,
    ...get(count), ...i32(1), ...add, ...set(count),
    ...end,
    ...stepWhileBelow(lane, 1, stop),
    ...end,
    ...end,
    ...stepWhileBelow(i, 4, n),
    ...end, ...end,
    ...get(count),
  ];
  return fn([[4, I32], [1, V128]], body);
}

const fn = (locals: [number, number][], body: Code): Code => {
  const code = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...body, ...end];
  return [...uleb(code.length), ...code];
};

const KERNELS = [
  { name: 'dots', params: [I32, I32, I32, I32, I32], results: [] as number[], code: dots },
  { name: 'dotsAt', params: [I32, I32, I32, I32, I32, I32], results: [], code: dotsAt },
  { name: 'scan', params: [I32, I32, I32, I32, F32, F32, F32, I32], results: [], code: scan },
  { name: 'select', params: [I32, I32, F32, I32], results: [I32], code: select },
];

/** The assembled module: one imported memory (`env.memory`), the four kernels exported. */
export function kernelModuleBytes(): Uint8Array {
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(KERNELS.map((k) => [0x60, ...vec(k.params.map((p) => [p])), ...vec(k.results.map((r) => [r]))]))),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vec(KERNELS.map((_, i) => uleb(i)))),
    ...section(7, vec(KERNELS.map((k, i) => [...name(k.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(KERNELS.map((k) => k.code()))),
  ]);
}

export interface Kernels {
  dots(q: number, rows: number, stride: number, n: number, out: number): void;
  dotsAt(q: number, rows: number, stride: number, idx: number, m: number, out: number): void;
  scan(lut: number, blocks: number, nBlocks: number, codeBytes: number, qmul: number, qnoise: number, qadd: number, out: number): void;
  select(values: number, n: number, threshold: number, idx: number): number;
}

/** The slice of the WebAssembly JS API used here (lib "dom" is not in this workspace's libs). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;

const PAGE = 65536;
/** wasm32 addresses 4 GiB at most. */
const MAX_PAGES = 65536;

/**
 * A growable wasm memory with the kernels bound to it. Byte offsets into it are the kernels'
 * pointers; typed views over it are invalidated by growth, so take them after `reserve`.
 */
export class SimdArena {
  readonly kernels: Kernels;
  private readonly memory: WasmMemory;

  constructor(bytes = PAGE) {
    // Compiled once per process: the bytes are a constant, each arena gets its own instance.
    compiled ??= new wasm.Module(kernelModuleBytes());
    this.memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)), maximum: MAX_PAGES });
    this.kernels = new wasm.Instance(compiled, { env: { memory: this.memory } }).exports as Kernels;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Grow (never shrink) to at least `bytes`, keeping the contents; throws RangeError past 4 GiB. */
  reserve(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil(bytes / PAGE);
    if (pages > MAX_PAGES) throw new RangeError(`matching needs ${(bytes / 2 ** 30).toFixed(2)} GiB in one wasm memory (at most 4 GiB)`);
    // V8 reserves a wasm32 memory's whole address range up front, so growing commits pages in
    // place (no copy): a modest headroom (1/8, at least 1 MiB) keeps adds cheap without the
    // doubling a copying array needs (which would hold 4 GiB for a 2 GiB gallery).
    const havePages = have / PAGE;
    const want = Math.min(MAX_PAGES, Math.max(pages, havePages + Math.max(16, Math.ceil(havePages / 8))));
    this.memory.grow(want - havePages);
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, length);
  }

  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }

  i8(offset: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, offset, length);
  }
}
