export * from './config.js';
export * from './controller.js';
export * from './main.js';
export * from './components/tracker.js';
export * from './components/outbox.js';
export * from './components/metrics.js';
export * from './adapters/agent-db.js';
export * from './components/pipeline.js';
