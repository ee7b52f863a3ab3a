// The hub without its HTTP side (no NestJS): for benchmarks and tools that drive the store,
// broker and sync directly.
export * from './hub.js';
export * from './config.js';
export * from './mqtt/broker.js';
export * from './store/ports.js';
export { SqliteStore, openSqliteStore } from './store/sqlite.js';
export { openStore } from './store/open.js';
