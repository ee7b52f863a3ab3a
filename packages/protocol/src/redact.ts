/** Query parameters that carry secrets in camera and service URLs (`?user=admin&password=…`). */
const SECRET_PARAMS = /([?&;](?:password|passwd|pass|pwd|secret|token|access_token|api_?key|apikey|auth|sig|signature|key)=)[^&;#\s]*/gi;

/**
 * One URL value with its credentials hidden: `rtsp://admin:secret@cam/…` → `rtsp://***@cam/…`,
 * `…?password=x` → `…?password=***`. Everything between `://` and the last `@` goes, so a
 * password holding `@`, `#`, `/`, `?` or a space (which may not even parse) is never shown.
 */
export function redactUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*:\/\/)/i.exec(url);
  let out = url;
  if (scheme) {
    const at = url.lastIndexOf('@');
    if (at > scheme[1]!.length) out = `${scheme[1]}***@${url.slice(at + 1)}`;
  }
  return out.replace(SECRET_PARAMS, '$1***');
}

/**
 * Hides the credentials of every URL in a text (a log line, an error, a tool's output): first
 * each of the `known` URLs wherever it appears (they may hold characters that end a URL in free
 * text), then anything shaped like `scheme://user:pass@` and secret query parameters.
 */
export function redactUrlCredentials(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const url of known) if (url !== '') out = out.split(url).join(redactUrl(url));
  return out.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi, '$1***@').replace(SECRET_PARAMS, '$1***');
}

/**
 * Is this a URL Node can parse whose user and password decode (no malformed `%` escape)? Config
 * checks use it so a bad URL is refused up front, with the field named and the URL redacted.
 */
export function isUsableUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const u = new URL(url);
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
    return true;
  } catch {
    return false;
  }
}
