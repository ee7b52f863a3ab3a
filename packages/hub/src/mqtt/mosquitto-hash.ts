import { pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * A secret in Mosquitto's password-file form (`$7$`: PBKDF2-SHA512, 101 iterations, 12-byte
 * salt, 64-byte key, base64), as `mosquitto_passwd` writes it. The hub keeps this beside its own
 * sha256 of a device secret so it can write a password file for an external Mosquitto without
 * ever storing the secret itself.
 */
export function mosquittoPasswordHash(secret: string, iterations = 101, salt: Buffer = randomBytes(12)): string {
  const key = pbkdf2Sync(secret, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `secret` matches a `$7$` hash (used in tests against mosquitto_passwd's output). */
export function checkMosquittoPasswordHash(secret: string, hash: string): boolean {
  const m = /^\$7\$(\d+)\$([^$]+)\$([^$]+)$/.exec(hash);
  if (!m) return false;
  return mosquittoPasswordHash(secret, Number(m[1]), Buffer.from(m[2]!, 'base64')) === hash;
}
