export * from './main.js';
export * from './hub.js';
export * from './config.js';
export * from './mqtt/broker.js';
export { startHubServer } from './main.js';
