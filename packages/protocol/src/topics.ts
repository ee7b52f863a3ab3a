/**
 * Every MQTT topic, built here and nowhere else. Root `facefleet/v1`; a device only ever
 * touches topics under `facefleet/v1/devices/<its id>/` (and, read-only, the heads of the
 * galleries assigned to it), which is what broker ACLs enforce.
 */
export const TOPIC_ROOT = 'facefleet/v1';
export const PROTOCOL_VERSION = 1;

const segment = (id: string): string => {
  if (id === '' || /[/#+\u0000]/.test(id)) throw new RangeError(`"${id}" cannot be an MQTT topic segment`);
  return id;
};

export const topics = {
  /** Device -> hub, retained: {online, at, ...}; the last will publishes online=false. */
  state: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/state`,
  /** Device -> hub, QoS 1, never retained: one recognition event per message. */
  events: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/events`,
  /** Hub -> device, QoS 1: ids of events stored by the hub (the application-level ack). */
  acks: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/acks`,
  /** Device -> hub, QoS 0, periodic: gallery sequences, models, outbox depth, counters. */
  status: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/status`,
  /** Device -> hub: request for gallery changes since the device's sequences. */
  syncRequest: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/sync/request`,
  /** Hub -> device: a batch of gallery changes (or a snapshot). */
  syncChanges: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/sync/changes`,
  /** Hub -> device, retained: the device's assignment (galleries, models). */
  config: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/config`,
  /** Device -> hub, QoS 1: each step of a model update (downloading .. active or failed). */
  models: (deviceId: string): string => `${TOPIC_ROOT}/devices/${segment(deviceId)}/models`,
  /** Hub -> devices, retained: the head sequence of a gallery. */
  galleryHead: (galleryId: string): string => `${TOPIC_ROOT}/galleries/${segment(galleryId)}/head`,
  /** Every device's topic of one kind, for the hub's subscriptions. */
  allDevices: (kind: 'state' | 'events' | 'status' | 'sync/request' | 'models'): string => `${TOPIC_ROOT}/devices/+/${kind}`,
} as const;

/** The device id and kind of a device topic, or undefined when it is not one. */
export function parseDeviceTopic(topic: string): { deviceId: string; kind: string } | undefined {
  const prefix = `${TOPIC_ROOT}/devices/`;
  if (!topic.startsWith(prefix)) return undefined;
  const rest = topic.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  return { deviceId: rest.slice(0, slash), kind: rest.slice(slash + 1) };
}
