import { ConflictError, DecodeError, NotFoundError, type ModelReportMessage } from '@facefleet/protocol';
import type { ModelsService } from './models.service.js';
import type { DevicesRepo, Gates, ModelsRepo, RolloutDeviceRow, RolloutDeviceState, RolloutRow, RolloutsRepo, RolloutTarget } from './store/ports.js';

export const DEFAULT_GATES: Gates = { maxFailureRate: 0, soakSeconds: 0, minHealthyPercent: 50 };

const FINAL: readonly RolloutDeviceState[] = ['active', 'failed', 'rolledBack', 'cancelled'];
const IN_PROGRESS: readonly RolloutDeviceState[] = ['assigned', 'downloading', 'verifying', 'testing'];

export interface RolloutHooks {
  /** Republish a device's retained config (its assignment changed). */
  publishConfig(deviceId: string): Promise<void>;
  /** Before any device is told to switch embedder: templates of that model for the whole gallery. */
  reembed(modelId: string): Promise<void>;
  isOnline(deviceId: string): Promise<boolean>;
  /** True on the one hub replica that advances waves (the lease holder); reports elsewhere are only recorded. */
  leads(): boolean;
  log(msg: string): void;
}

/**
 * Staged model rollouts. The target's devices are split into waves (cumulative percentages);
 * a wave's devices are assigned the model through their retained config, and report each step
 * back. The next wave starts when no device of this one is still working, at least
 * minHealthyPercent of them run the model, and soakSeconds have passed; failures over
 * maxFailureRate halt the rollout and move the failed devices back to their previous model.
 * A device offline meanwhile gets the assignment when it returns (the config is retained).
 */
export class RolloutsService {
  private timer?: NodeJS.Timeout;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly rollouts: RolloutsRepo,
    private readonly models: ModelsRepo,
    private readonly registry: ModelsService,
    private readonly devices: DevicesRepo,
    private readonly hooks: RolloutHooks,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.serial(() => this.tick()), 1000).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One change at a time: reports, ticks and API calls never interleave on a rollout. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work);
    this.busy = run.then(
      () => undefined,
      (err: Error) => this.hooks.log(`rollouts: ${err.message}`),
    );
    return run;
  }

  create(input: { modelId: string; target: RolloutTarget; waves?: number[]; gates?: Partial<Gates> }): Promise<RolloutRow> {
    return this.serial(async () => {
      const model = await this.registry.get(input.modelId);
      if (model.kind === 'liveness') throw new DecodeError('liveness models are not rolled out to devices yet');
      const waves = input.waves ?? [100];
      if (waves.length === 0 || waves.some((w, i) => w <= 0 || w > 100 || (i > 0 && w <= waves[i - 1]!)) || waves.at(-1) !== 100) {
        throw new DecodeError('waves must be increasing percentages ending at 100, e.g. [5, 25, 100]');
      }
      const gates = { ...DEFAULT_GATES, ...input.gates };
      const ids = await this.resolve(input.target);
      if (ids.length === 0) throw new DecodeError('the target has no devices');
      const busy: RolloutRow[] = [];
      for (const r of await this.rollouts.open()) if (r.kind === model.kind && (await this.rollouts.devices(r.id)).some((d) => ids.includes(d.deviceId))) busy.push(r);
      if (busy.length > 0) throw new ConflictError(`rollout ${busy[0]!.id} of a ${model.kind} is still open for some of these devices: abort or finish it first`);
      await this.registry.signed(model.id); // self-test and signature before anyone downloads it
      if (model.kind === 'embedder') await this.hooks.reembed(model.id);
      const devices = [];
      for (const [position, deviceId] of ids.entries()) {
        devices.push({
          deviceId,
          // A wave of p% reaches the first p% of the devices (rounded down, at least one).
          wave: waves.findIndex((w) => position < Math.max(1, Math.floor((w / 100) * ids.length + 1e-9))),
          previousModelId: (await this.models.assigned(deviceId))[model.kind]?.modelId ?? (await this.reported(deviceId, model.kind)),
        });
      }
      const r = await this.rollouts.create({ modelId: model.id, kind: model.kind, target: input.target, waves, gates, devices });
      this.hooks.log(`rollouts: ${r.id}: ${model.id} to ${ids.length} devices in ${waves.length} waves (${waves.join('% → ')}%)`);
      await this.startWave(r, 0);
      return (await this.rollouts.get(r.id))!;
    });
  }

  private async resolve(target: RolloutTarget): Promise<string[]> {
    const live = (await this.devices.list()).filter((d) => d.revokedAt === null);
    if (target === 'all') return live.map((d) => d.id);
    if ('devices' in target) {
      for (const id of target.devices) if (!live.some((d) => d.id === id)) throw new NotFoundError(`no active device with id ${id}`);
      return [...new Set(target.devices)];
    }
    const out: string[] = [];
    for (const d of live) if ((await this.devices.galleries(d.id)).some((g) => target.galleries.includes(g))) out.push(d.id);
    return out;
  }

  /** The model a device says it runs, when the registry knows it (a rollback target). */
  private async reported(deviceId: string, kind: string): Promise<string | null> {
    const id = ((await this.devices.get(deviceId))?.models as Record<string, string> | null)?.[kind];
    return id !== undefined && (await this.models.get(id)) ? id : null;
  }

  private async startWave(r: RolloutRow, wave: number): Promise<void> {
    await this.rollouts.update(r.id, { wave, waveDoneAt: null });
    for (const d of await this.rollouts.devices(r.id)) {
      if (d.wave !== wave || d.state !== 'pending') continue;
      await this.models.assign(d.deviceId, r.kind, r.modelId, r.id);
      await this.rollouts.setDevice(r.id, d.deviceId, 'assigned');
      await this.hooks.publishConfig(d.deviceId);
    }
    this.hooks.log(`rollouts: ${r.id}: wave ${wave + 1} of ${r.waves.length} started`);
  }

  /** A device's step of an update. */
  onReport(deviceId: string, report: ModelReportMessage): Promise<void> {
    return this.serial(async () => {
      const r = report.rolloutId ? await this.rollouts.get(report.rolloutId) : undefined;
      if (!r || r.kind !== report.kind) return;
      const d = (await this.rollouts.devices(r.id)).find((x) => x.deviceId === deviceId);
      if (!d || d.state === 'rolledBack' || d.state === 'cancelled') return;
      if (report.modelId !== r.modelId) return; // a report about the way back to the previous model
      await this.rollouts.setDevice(r.id, deviceId, report.state, report.reason ?? null);
      if (report.state === 'failed') this.hooks.log(`rollouts: ${r.id}: ${deviceId} failed: ${report.reason ?? 'no reason given'}`);
      if (this.hooks.leads()) await this.evaluate(r.id);
    });
  }

  private async tick(): Promise<void> {
    if (!this.hooks.leads()) return;
    for (const r of await this.rollouts.open()) await this.evaluate(r.id);
  }

  private async evaluate(id: string): Promise<void> {
    const r = (await this.rollouts.get(id))!;
    if (r.state !== 'running') return;
    const all = await this.rollouts.devices(id);
    const wave = all.filter((d) => d.wave === r.wave);
    const failed = wave.filter((d) => d.state === 'failed');
    // A failed device goes back to its previous model whatever the gate says (it reverted itself already).
    for (const d of failed) await this.revert(r, d, 'failed');
    if (failed.length / Math.max(1, wave.length) > r.gates.maxFailureRate) {
      const reason = `wave ${r.wave + 1}: ${failed.length} of ${wave.length} devices failed (gate: ${r.gates.maxFailureRate}); first: ${failed[0]!.reason ?? 'no reason'}`;
      await this.rollouts.update(id, { state: 'halted', reason });
      this.hooks.log(`rollouts: ${id} halted: ${reason}`);
      return;
    }
    const working: RolloutDeviceRow[] = [];
    for (const d of wave) if (IN_PROGRESS.includes(d.state) && (await this.hooks.isOnline(d.deviceId))) working.push(d);
    const healthy = wave.filter((d) => d.state === 'active').length;
    if (working.length > 0 || (healthy * 100) / wave.length < r.gates.minHealthyPercent) return;
    if (r.wave + 1 < r.waves.length) {
      const doneAt = r.waveDoneAt ?? new Date().toISOString();
      if (r.waveDoneAt === null) await this.rollouts.update(id, { waveDoneAt: doneAt });
      if (Date.now() - Date.parse(doneAt) < r.gates.soakSeconds * 1000) return;
      await this.startWave(r, r.wave + 1);
      return;
    }
    if (all.every((d) => FINAL.includes(d.state))) {
      await this.rollouts.update(id, { state: 'completed', reason: null });
      this.hooks.log(`rollouts: ${id} completed: ${all.filter((d) => d.state === 'active').length} of ${all.length} devices run ${r.modelId}`);
    }
  }

  /** Put a device back on the model it ran before this rollout (its own default when unknown). */
  private async revert(r: RolloutRow, d: RolloutDeviceRow, as: 'failed' | 'rolledBack' | 'cancelled'): Promise<void> {
    if ((await this.models.assigned(d.deviceId))[r.kind]?.rolloutId === r.id) {
      await this.models.assign(d.deviceId, r.kind, d.previousModelId, null);
      await this.hooks.publishConfig(d.deviceId);
    }
    if (as !== 'failed') await this.rollouts.setDevice(r.id, d.deviceId, as, d.reason);
  }

  pause(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running'], (r) => this.rollouts.update(r.id, { state: 'paused' }));
  }

  resume(id: string): Promise<RolloutRow> {
    return this.transition(id, ['paused', 'halted'], async (r) => {
      await this.rollouts.update(r.id, { state: 'running', reason: null });
      await this.evaluate(r.id);
    });
  }

  /** Stop here: devices not yet running the model stay on (or go back to) their previous one. */
  abort(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running', 'paused', 'halted'], async (r) => {
      for (const d of await this.rollouts.devices(r.id)) {
        if (d.state === 'pending') await this.rollouts.setDevice(r.id, d.deviceId, 'cancelled');
        else if (IN_PROGRESS.includes(d.state)) await this.revert(r, d, 'cancelled');
      }
      await this.rollouts.update(r.id, { state: 'aborted', reason: 'aborted by an operator' });
    });
  }

  /** Every device of the rollout back on its previous model. */
  rollback(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running', 'paused', 'halted', 'completed', 'aborted'], async (r) => {
      for (const d of await this.rollouts.devices(r.id)) {
        if (d.state === 'pending') await this.rollouts.setDevice(r.id, d.deviceId, 'cancelled');
        else if (d.state !== 'cancelled' && d.state !== 'rolledBack') await this.revert(r, d, 'rolledBack');
      }
      await this.rollouts.update(r.id, { state: 'rolledBack', reason: 'rolled back by an operator' });
    });
  }

  private transition(id: string, from: RolloutRow['state'][], work: (r: RolloutRow) => Promise<void>): Promise<RolloutRow> {
    return this.serial(async () => {
      const r = await this.rollouts.get(id);
      if (!r) throw new NotFoundError(`no rollout with id ${id}`);
      if (!from.includes(r.state)) throw new ConflictError(`rollout ${id} is ${r.state}`);
      await work(r);
      return (await this.rollouts.get(id))!;
    });
  }

  async view(id: string) {
    const r = await this.rollouts.get(id);
    if (!r) throw new NotFoundError(`no rollout with id ${id}`);
    const devices = await this.rollouts.devices(id);
    return {
      ...r,
      devices: devices.map((d) => ({ id: d.deviceId, wave: d.wave, state: d.state, ...(d.reason ? { reason: d.reason } : {}), previousModelId: d.previousModelId, updatedAt: d.updatedAt })),
      wavesStatus: r.waves.map((percent, i) => {
        const w = devices.filter((d) => d.wave === i);
        const count = (s: RolloutDeviceState): number => w.filter((d) => d.state === s).length;
        return { wave: i, percent, devices: w.length, active: count('active'), failed: count('failed'), working: w.filter((d) => IN_PROGRESS.includes(d.state)).length, pending: count('pending') };
      }),
    };
  }
}
