/**
 * Hides the credentials of every URL in a text: `rtsp://admin:secret@cam/…` becomes
 * `rtsp://***@cam/…`. For log lines and error messages that may quote a camera, broker or
 * database URL (or a tool's output about one).
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1***@');
}
