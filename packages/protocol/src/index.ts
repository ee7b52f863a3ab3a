export * from './errors.js';
export * from './embedding.js';
