/**
 * A minimal protocol-buffers wire codec that keeps every field it does not interpret, so a
 * message can be decoded, edited in the few fields we care about, and re-encoded losslessly.
 * Enough for rewriting ONNX graphs (onnx.proto) without a generated schema.
 */
export interface PbField {
  no: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wire: 0 | 1 | 2 | 5;
  /** varint value (as bigint) for wire 0; raw bytes otherwise. */
  value: bigint | Uint8Array;
}

export function decodeMessage(buf: Uint8Array): PbField[] {
  const fields: PbField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated protobuf varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = (key & 7) as PbField['wire'];
    if (wire === 0) fields.push({ no, wire, value: varint() });
    else if (wire === 1 || wire === 5) {
      const len = wire === 1 ? 8 : 4;
      fields.push({ no, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error('truncated protobuf field');
      fields.push({ no, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else throw new Error(`unsupported protobuf wire type ${wire as number}`);
  }
  return fields;
}

function varintBytes(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x !== 0n) b |= 0x80;
    out.push(b);
  } while (x !== 0n);
  return out;
}

export function encodeMessage(fields: readonly PbField[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (p: Uint8Array): void => {
    parts.push(p);
    size += p.length;
  };
  for (const f of fields) {
    push(Uint8Array.from(varintBytes(BigInt((f.no << 3) | f.wire))));
    if (f.wire === 0) push(Uint8Array.from(varintBytes(f.value as bigint)));
    else {
      const bytes = f.value as Uint8Array;
      if (f.wire === 2) push(Uint8Array.from(varintBytes(BigInt(bytes.length))));
      push(bytes);
    }
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export const text = (f: PbField | undefined): string => (f ? Buffer.from(f.value as Uint8Array).toString('utf8') : '');
export const bytesOf = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
export const all = (fields: readonly PbField[], no: number): PbField[] => fields.filter((f) => f.no === no);
export const one = (fields: readonly PbField[], no: number): PbField | undefined => fields.find((f) => f.no === no);

/** Decode repeated int64 values (packed or not). */
export function int64s(fields: readonly PbField[], no: number): bigint[] {
  const out: bigint[] = [];
  for (const f of all(fields, no)) {
    if (f.wire === 0) out.push(BigInt.asIntN(64, f.value as bigint));
    else if (f.wire === 2) for (const g of decodePacked(f.value as Uint8Array)) out.push(BigInt.asIntN(64, g));
  }
  return out;
}

function decodePacked(buf: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let result = 0n, shift = 0n;
    for (;;) {
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(result);
  }
  return out;
}
