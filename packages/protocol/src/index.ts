export * from './errors.js';
export * from './embedding.js';
export * from './topics.js';
export * from './messages.js';
export * from './models.js';
export * from './redact.js';
