import { SqliteCrops } from './crops.repository.js';
import { SqliteDevices } from './devices.repository.js';
import { SqliteEvents } from './events.repository.js';
import { SqliteGalleries } from './galleries.repository.js';
import { openHubDb, type HubDb } from './hub-db.js';
import { SqliteKeys } from './keys.repository.js';
import { SqliteLeases } from './leases.repository.js';
import { SqliteModels } from './models.repository.js';
import type { HubStore } from './ports.js';
import { SqliteRollouts } from './rollouts.repository.js';
import { SqliteSubjects } from './subjects.repository.js';

/** The hub's store in one SQLite file (WAL): the embedded default, for one hub process. */
export class SqliteStore implements HubStore {
  readonly engine = 'sqlite' as const;
  readonly keys: SqliteKeys;
  readonly subjects: SqliteSubjects;
  readonly galleries: SqliteGalleries;
  readonly devices: SqliteDevices;
  readonly events: SqliteEvents;
  readonly models: SqliteModels;
  readonly rollouts: SqliteRollouts;
  readonly crops: SqliteCrops;
  readonly leases: SqliteLeases;

  constructor(
    readonly db: HubDb,
    readonly location: string,
    cropKey: Buffer,
  ) {
    this.keys = new SqliteKeys(db);
    this.subjects = new SqliteSubjects(db);
    this.galleries = new SqliteGalleries(db);
    this.devices = new SqliteDevices(db);
    this.events = new SqliteEvents(db);
    this.models = new SqliteModels(db);
    this.rollouts = new SqliteRollouts(db);
    this.crops = new SqliteCrops(db, cropKey);
    this.leases = new SqliteLeases(db);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** Open (creating and migrating) a hub SQLite file. */
export async function openSqliteStore(path: string, opts: { cropKey: Buffer }): Promise<HubStore> {
  return new SqliteStore(openHubDb(path), path, opts.cropKey);
}
