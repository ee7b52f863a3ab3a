import { ConflictError, DecodeError, NotFoundError, type ModelReportMessage } from '@facefleet/protocol';
import type { ModelsService } from './models.service.js';
import type { DevicesRepository } from './store/devices.repository.js';
import type { ModelsRepository } from './store/models.repository.js';
import type { Gates, RolloutDeviceRow, RolloutDeviceState, RolloutRow, RolloutsRepository, RolloutTarget } from './store/rollouts.repository.js';

export const DEFAULT_GATES: Gates = { maxFailureRate: 0, soakSeconds: 0, minHealthyPercent: 50 };

const FINAL: readonly RolloutDeviceState[] = ['active', 'failed', 'rolledBack', 'cancelled'];
const IN_PROGRESS: readonly RolloutDeviceState[] = ['assigned', 'downloading', 'verifying', 'testing'];

export interface RolloutHooks {
  /** Republish a device's retained config (its assignment changed). */
  publishConfig(deviceId: string): Promise<void>;
  /** Before any device is told to switch embedder: templates of that model for the whole gallery. */
  reembed(modelId: string): Promise<void>;
  isOnline(deviceId: string): boolean;
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
    private readonly rollouts: RolloutsRepository,
    private readonly models: ModelsRepository,
    private readonly registry: ModelsService,
    private readonly devices: DevicesRepository,
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
      const model = this.registry.get(input.modelId);
      if (model.kind === 'liveness') throw new DecodeError('liveness models are not rolled out to devices yet');
      const waves = input.waves ?? [100];
      if (waves.length === 0 || waves.some((w, i) => w <= 0 || w > 100 || (i > 0 && w <= waves[i - 1]!)) || waves.at(-1) !== 100) {
        throw new DecodeError('waves must be increasing percentages ending at 100, e.g. [5, 25, 100]');
      }
      const gates = { ...DEFAULT_GATES, ...input.gates };
      const ids = this.resolve(input.target);
      if (ids.length === 0) throw new DecodeError('the target has no devices');
      const busy = this.rollouts.open().filter((r) => r.kind === model.kind && this.rollouts.devices(r.id).some((d) => ids.includes(d.deviceId)));
      if (busy.length > 0) throw new ConflictError(`rollout ${busy[0]!.id} of a ${model.kind} is still open for some of these devices: abort or finish it first`);
      await this.registry.signed(model.id); // self-test and signature before anyone downloads it
      if (model.kind === 'embedder') await this.hooks.reembed(model.id);
      const devices = ids.map((deviceId, position) => ({
        deviceId,
        // A wave of p% reaches the first p% of the devices (rounded down, at least one).
        wave: waves.findIndex((w) => position < Math.max(1, Math.floor((w / 100) * ids.length + 1e-9))),
        previousModelId: this.models.assigned(deviceId)[model.kind]?.modelId ?? this.reported(deviceId, model.kind),
      }));
      const r = this.rollouts.create({ modelId: model.id, kind: model.kind, target: input.target, waves, gates, devices });
      this.hooks.log(`rollouts: ${r.id}: ${model.id} to ${ids.length} devices in ${waves.length} waves (${waves.join('% → ')}%)`);
      await this.startWave(r, 0);
      return this.rollouts.get(r.id)!;
    });
  }

  private resolve(target: RolloutTarget): string[] {
    const live = this.devices.list().filter((d) => d.revokedAt === null);
    if (target === 'all') return live.map((d) => d.id);
    if ('devices' in target) {
      for (const id of target.devices) if (!live.some((d) => d.id === id)) throw new NotFoundError(`no active device with id ${id}`);
      return [...new Set(target.devices)];
    }
    return live.filter((d) => this.devices.galleries(d.id).some((g) => target.galleries.includes(g))).map((d) => d.id);
  }

  /** The model a device says it runs, when the registry knows it (a rollback target). */
  private reported(deviceId: string, kind: string): string | null {
    const id = (this.devices.get(deviceId)?.models as Record<string, string> | null)?.[kind];
    return id !== undefined && this.models.get(id) ? id : null;
  }

  private async startWave(r: RolloutRow, wave: number): Promise<void> {
    this.rollouts.update(r.id, { wave, waveDoneAt: null });
    for (const d of this.rollouts.devices(r.id)) {
      if (d.wave !== wave || d.state !== 'pending') continue;
      this.models.assign(d.deviceId, r.kind, r.modelId, r.id);
      this.rollouts.setDevice(r.id, d.deviceId, 'assigned');
      await this.hooks.publishConfig(d.deviceId);
    }
    this.hooks.log(`rollouts: ${r.id}: wave ${wave + 1} of ${r.waves.length} started`);
  }

  /** A device's step of an update. */
  onReport(deviceId: string, report: ModelReportMessage): Promise<void> {
    return this.serial(async () => {
      const open = this.rollouts.open().find((r) => r.id === report.rolloutId);
      const r = open ?? (report.rolloutId ? this.rollouts.get(report.rolloutId) : undefined);
      if (!r || r.kind !== report.kind) return;
      const d = this.rollouts.devices(r.id).find((x) => x.deviceId === deviceId);
      if (!d || d.state === 'rolledBack' || d.state === 'cancelled') return;
      if (report.modelId !== r.modelId) return; // a report about the way back to the previous model
      this.rollouts.setDevice(r.id, deviceId, report.state, report.reason ?? null);
      if (report.state === 'failed') this.hooks.log(`rollouts: ${r.id}: ${deviceId} failed: ${report.reason ?? 'no reason given'}`);
      await this.evaluate(r.id);
    });
  }

  private async tick(): Promise<void> {
    for (const r of this.rollouts.open()) await this.evaluate(r.id);
  }

  private async evaluate(id: string): Promise<void> {
    const r = this.rollouts.get(id)!;
    if (r.state !== 'running') return;
    const all = this.rollouts.devices(id);
    const wave = all.filter((d) => d.wave === r.wave);
    const failed = wave.filter((d) => d.state === 'failed');
    // A failed device goes back to its previous model whatever the gate says (it reverted itself already).
    for (const d of failed) await this.revert(r, d, 'failed');
    if (failed.length / Math.max(1, wave.length) > r.gates.maxFailureRate) {
      const reason = `wave ${r.wave + 1}: ${failed.length} of ${wave.length} devices failed (gate: ${r.gates.maxFailureRate}); first: ${failed[0]!.reason ?? 'no reason'}`;
      this.rollouts.update(id, { state: 'halted', reason });
      this.hooks.log(`rollouts: ${id} halted: ${reason}`);
      return;
    }
    const working = wave.filter((d) => IN_PROGRESS.includes(d.state) && this.hooks.isOnline(d.deviceId));
    const healthy = wave.filter((d) => d.state === 'active').length;
    if (working.length > 0 || (healthy * 100) / wave.length < r.gates.minHealthyPercent) return;
    if (r.wave + 1 < r.waves.length) {
      const doneAt = r.waveDoneAt ?? new Date().toISOString();
      if (r.waveDoneAt === null) this.rollouts.update(id, { waveDoneAt: doneAt });
      if (Date.now() - Date.parse(doneAt) < r.gates.soakSeconds * 1000) return;
      await this.startWave(r, r.wave + 1);
      return;
    }
    if (all.every((d) => FINAL.includes(d.state))) {
      this.rollouts.update(id, { state: 'completed', reason: null });
      this.hooks.log(`rollouts: ${id} completed: ${all.filter((d) => d.state === 'active').length} of ${all.length} devices run ${r.modelId}`);
    }
  }

  /** Put a device back on the model it ran before this rollout (its own default when unknown). */
  private async revert(r: RolloutRow, d: RolloutDeviceRow, as: 'failed' | 'rolledBack' | 'cancelled'): Promise<void> {
    if (this.models.assigned(d.deviceId)[r.kind]?.rolloutId === r.id) {
      this.models.assign(d.deviceId, r.kind, d.previousModelId, null);
      await this.hooks.publishConfig(d.deviceId);
    }
    if (as !== 'failed') this.rollouts.setDevice(r.id, d.deviceId, as, d.reason);
  }

  pause(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running'], (r) => Promise.resolve(this.rollouts.update(r.id, { state: 'paused' })));
  }

  resume(id: string): Promise<RolloutRow> {
    return this.transition(id, ['paused', 'halted'], async (r) => {
      this.rollouts.update(r.id, { state: 'running', reason: null });
      await this.evaluate(r.id);
    });
  }

  /** Stop here: devices not yet running the model stay on (or go back to) their previous one. */
  abort(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running', 'paused', 'halted'], async (r) => {
      for (const d of this.rollouts.devices(r.id)) {
        if (d.state === 'pending') this.rollouts.setDevice(r.id, d.deviceId, 'cancelled');
        else if (IN_PROGRESS.includes(d.state)) await this.revert(r, d, 'cancelled');
      }
      this.rollouts.update(r.id, { state: 'aborted', reason: 'aborted by an operator' });
    });
  }

  /** Every device of the rollout back on its previous model. */
  rollback(id: string): Promise<RolloutRow> {
    return this.transition(id, ['running', 'paused', 'halted', 'completed', 'aborted'], async (r) => {
      for (const d of this.rollouts.devices(r.id)) {
        if (d.state === 'pending') this.rollouts.setDevice(r.id, d.deviceId, 'cancelled');
        else if (d.state !== 'cancelled' && d.state !== 'rolledBack') await this.revert(r, d, 'rolledBack');
      }
      this.rollouts.update(r.id, { state: 'rolledBack', reason: 'rolled back by an operator' });
    });
  }

  private transition(id: string, from: RolloutRow['state'][], work: (r: RolloutRow) => Promise<void>): Promise<RolloutRow> {
    return this.serial(async () => {
      const r = this.rollouts.get(id);
      if (!r) throw new NotFoundError(`no rollout with id ${id}`);
      if (!from.includes(r.state)) throw new ConflictError(`rollout ${id} is ${r.state}`);
      await work(r);
      return this.rollouts.get(id)!;
    });
  }

  view(id: string) {
    const r = this.rollouts.get(id);
    if (!r) throw new NotFoundError(`no rollout with id ${id}`);
    const devices = this.rollouts.devices(id);
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
