import { ModelError } from '@facefleet/protocol';
import { all, bytesOf, decodeMessage, encodeMessage, int64s, one, text, type PbField } from './protobuf.js';

// onnx.proto field numbers used here.
const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, int32Data: 5, name: 8, rawData: 9 } as const;
const VALUE_INFO_NAME = 1;
const DT = { float: 1, uint8: 2, int8: 3 } as const;

interface Node {
  fields: PbField[];
  op: string;
  inputs: string[];
  outputs: string[];
}

interface Tensor {
  name: string;
  dims: number[];
  values: Float64Array;
}

/**
 * Rewrite a dynamically quantised ONNX model (onnxruntime `quantize_dynamic`: DynamicQuantizeLinear
 * -> ConvInteger / MatMulInteger -> Cast -> Mul by the product of scales) into plain fp32 Conv /
 * MatMul with weights dequantised once: W = (Wq - zero_point) * scale. The function is the same
 * up to the rounding of activations that dynamic quantisation adds, and ConvInteger, which runs
 * several times slower than Conv on x86, disappears. Throws ModelError when the pattern is absent.
 */
export function dequantizeModel(bytes: Uint8Array): { bytes: Uint8Array; rewritten: number } {
  const model = decodeMessage(bytes);
  const graphField = one(model, MODEL_GRAPH);
  if (!graphField) throw new ModelError('ONNX model has no graph');
  const graph = decodeMessage(graphField.value as Uint8Array);
  const nodes: Node[] = all(graph, GRAPH.node).map((f) => {
    const fields = decodeMessage(f.value as Uint8Array);
    return { fields, op: text(one(fields, NODE.opType)), inputs: all(fields, NODE.input).map(text), outputs: all(fields, NODE.output).map(text) };
  });
  const inits = new Map<string, PbField[]>();
  for (const f of all(graph, GRAPH.initializer)) {
    const t = decodeMessage(f.value as Uint8Array);
    inits.set(text(one(t, TENSOR.name)), t);
  }
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }

  const replaced = new Map<Node, Node>();
  const newInits: PbField[][] = [];
  for (const n of nodes) {
    if (n.op !== 'ConvInteger' && n.op !== 'MatMulInteger') continue;
    const [aq, wq, , wzp] = n.inputs;
    const dql = producer.get(aq ?? '');
    const cast = consumers.get(n.outputs[0]!)?.[0];
    const mul = cast && consumers.get(cast.outputs[0]!)?.[0];
    if (!dql || dql.op !== 'DynamicQuantizeLinear' || cast?.op !== 'Cast' || mul?.op !== 'Mul') {
      throw new ModelError(`node ${n.op} ${n.outputs[0] ?? ''} is not in the dynamic-quantisation pattern`);
    }
    const scaleName = mul.inputs.find((i) => i !== cast.outputs[0]);
    const scaleMul = producer.get(scaleName ?? '');
    const wScaleName = scaleMul?.inputs.find((i) => i !== dql.outputs[1]);
    const wTensor = inits.get(wq ?? '');
    const wScale = inits.get(wScaleName ?? '');
    if (!wTensor || !wScale || scaleMul?.op !== 'Mul') throw new ModelError(`cannot find the weight scale of ${n.op} ${n.outputs[0] ?? ''}`);
    const w = readTensor(wTensor);
    const scale = readTensor(wScale).values;
    const zp = wzp && inits.has(wzp) ? readTensor(inits.get(wzp)!).values : new Float64Array([0]);
    const out = new Float32Array(w.values.length);
    // Per-tensor (one scale) or per output channel: axis 0 for Conv weights, axis 1 for MatMul (K x N).
    const isConv = n.op === 'ConvInteger';
    const channels = scale.length;
    const inner = isConv ? w.values.length / (w.dims[0] ?? 1) : 1;
    for (let i = 0; i < out.length; i++) {
      const c = channels === 1 ? 0 : isConv ? Math.floor(i / inner) : i % (w.dims[1] ?? 1);
      out[i] = (w.values[i]! - zp[zp.length === 1 ? 0 : c]!) * scale[c]!;
    }
    const wName = `${wq ?? 'w'}_dequantized`;
    newInits.push(tensorFields(wName, w.dims, out));
    const fields: PbField[] = [
      { no: NODE.input, wire: 2, value: bytesOf(dql.inputs[0]!) },
      { no: NODE.input, wire: 2, value: bytesOf(wName) },
      { no: NODE.output, wire: 2, value: bytesOf(mul.outputs[0]!) },
      { no: NODE.name, wire: 2, value: bytesOf(`${text(one(n.fields, NODE.name)) || mul.outputs[0]!}_fp32`) },
      { no: NODE.opType, wire: 2, value: bytesOf(isConv ? 'Conv' : 'MatMul') },
      ...all(n.fields, NODE.attribute),
    ];
    replaced.set(n, { fields, op: isConv ? 'Conv' : 'MatMul', inputs: [dql.inputs[0]!, wName], outputs: [mul.outputs[0]!] });
    // The pattern's other nodes become dead; mark their outputs so dead-code removal drops them.
    replaced.set(mul, { fields: [], op: '', inputs: [], outputs: [] });
  }
  if (replaced.size === 0) throw new ModelError('model has no ConvInteger or MatMulInteger to dequantise');

  // Keep replacements and any node whose outputs are still used (iterate to a fixed point).
  let kept = nodes.map((n) => replaced.get(n) ?? n).filter((n) => n.op !== '');
  const graphOutputs = new Set(all(graph, GRAPH.output).map((f) => text(one(decodeMessage(f.value as Uint8Array), VALUE_INFO_NAME))));
  for (;;) {
    const used = new Set([...graphOutputs, ...kept.flatMap((n) => n.inputs)]);
    const next = kept.filter((n) => n.outputs.some((o) => used.has(o)));
    if (next.length === kept.length) break;
    kept = next;
  }
  const used = new Set(kept.flatMap((n) => n.inputs));
  const initFields = [...inits.entries()].filter(([name]) => used.has(name)).map(([, t]) => t).concat(newInits.filter((t) => used.has(text(one(t, TENSOR.name)))));
  const initNames = new Set(inits.keys());
  const newGraph: PbField[] = [];
  let nodesWritten = false, initsWritten = false;
  for (const f of graph) {
    if (f.no === GRAPH.node) {
      if (!nodesWritten) for (const n of kept) newGraph.push({ no: GRAPH.node, wire: 2, value: encodeMessage(n.fields) });
      nodesWritten = true;
    } else if (f.no === GRAPH.initializer) {
      if (!initsWritten) for (const t of initFields) newGraph.push({ no: GRAPH.initializer, wire: 2, value: encodeMessage(t) });
      initsWritten = true;
    } else if (f.no === GRAPH.input || f.no === GRAPH.valueInfo) {
      // Drop graph inputs / value infos that named removed initializers or removed values.
      const name = text(one(decodeMessage(f.value as Uint8Array), VALUE_INFO_NAME));
      if (f.no === GRAPH.input && initNames.has(name) && !used.has(name)) continue;
      if (f.no === GRAPH.valueInfo && !used.has(name) && !kept.some((n) => n.outputs.includes(name))) continue;
      newGraph.push(f);
    } else newGraph.push(f);
  }
  const newModel = model.map((f) => (f.no === MODEL_GRAPH ? { ...f, value: encodeMessage(newGraph) } : f));
  return { bytes: encodeMessage(newModel), rewritten: [...replaced.values()].filter((n) => n.op !== '').length };
}

function readTensor(t: PbField[]): Tensor {
  const name = text(one(t, TENSOR.name));
  const dims = int64s(t, TENSOR.dims).map(Number);
  const type = Number(one(t, TENSOR.dataType)?.value ?? 0);
  const raw = one(t, TENSOR.rawData)?.value as Uint8Array | undefined;
  const count = dims.reduce((a, b) => a * b, 1);
  const values = new Float64Array(count);
  if (type === DT.float) {
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
    } else {
      const floats = all(t, TENSOR.floatData).flatMap((f) => {
        const b = f.value as Uint8Array;
        if (f.wire === 5) return [new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true)];
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        return Array.from({ length: b.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
      });
      values.set(floats.slice(0, count));
    }
  } else if (type === DT.uint8 || type === DT.int8) {
    const ints = raw ? Array.from(raw, (b) => (type === DT.int8 && b > 127 ? b - 256 : b)) : int64s(t, TENSOR.int32Data).map((v) => Number(BigInt.asIntN(32, v)));
    values.set(ints.slice(0, count));
  } else {
    throw new ModelError(`tensor ${name}: data type ${type} is not supported by the dequantiser`);
  }
  return { name, dims, values };
}

function tensorFields(name: string, dims: number[], data: Float32Array): PbField[] {
  return [
    ...dims.map((d) => ({ no: TENSOR.dims, wire: 0 as const, value: BigInt(d) })),
    { no: TENSOR.dataType, wire: 0, value: BigInt(DT.float) },
    { no: TENSOR.name, wire: 2, value: bytesOf(name) },
    { no: TENSOR.rawData, wire: 2, value: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) },
  ];
}
