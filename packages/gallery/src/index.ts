export * from './match/flat-index.js';
export * from './match/decide.js';
export * from './match/sketch-index.js';
export * from './store/gallery-store.js';
export * from './enrol.js';
export { runMigrations } from './store/migrations.js';
