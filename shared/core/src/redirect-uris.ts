/**
 * Redirect URI rules, shared by registration (what may be registered) and the token service (what an
 * authorization request may name):
 * - `https` anywhere;
 * - `http` only on loopback (`localhost`, `127.0.0.1`, `[::1]`), where any port matches at authorization
 *   time (RFC 8252 §7.3), so native apps may listen on an ephemeral port;
 * - private-use schemes (`cursor://…`, `com.example.app:/cb`, RFC 8252 §7.1);
 * - never fragments, wildcards, user info, or the schemes a browser would execute or read locally.
 */

export const MAX_REDIRECT_URI_LENGTH = 2000

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'about:', 'blob:', 'filesystem:', 'view-source:', 'ws:', 'wss:', 'ftp:'])

export function isLoopbackHost (hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}

/** Why `uri` cannot be registered as a redirect URI, or null when it can. */
export function redirectUriProblem (uri: unknown): string | null {
  if (typeof uri !== 'string' || uri.length === 0) return 'is not a non-empty string'
  if (uri.length > MAX_REDIRECT_URI_LENGTH) return `is longer than ${MAX_REDIRECT_URI_LENGTH} characters`
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) return 'contains whitespace or control characters'
  if (uri.includes('*')) return 'contains a wildcard (*); register each exact URI'
  if (uri.includes('#')) return 'contains a fragment (#), which redirect URIs must not have (RFC 6749 §3.1.2)'
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'is not a valid absolute URI'
  }
  const scheme = url.protocol.toLowerCase()
  if (FORBIDDEN_SCHEMES.has(scheme)) return `uses the ${scheme.slice(0, -1)} scheme, which is not allowed for redirects`
  if (url.username || url.password) return 'contains user credentials'
  if (scheme === 'https:') {
    if (!url.hostname) return 'has no host'
    return null
  }
  if (scheme === 'http:') {
    if (!isLoopbackHost(url.hostname)) return 'uses plain http off loopback; use https, or http on localhost, 127.0.0.1 or [::1]'
    return null
  }
  // a private-use scheme (RFC 8252 §7.1): cursor://anysphere.cursor-retrieval/oauth/…/callback, com.example.app:/cb
  if (!/^[a-z][a-z0-9+.-]*:$/.test(scheme)) return 'has an invalid scheme'
  return null
}

/**
 * Whether `requested` names the registered `registered` URI: an exact string match, or for loopback
 * `http` URIs, a match of everything but the port (RFC 8252 §7.3).
 */
export function redirectUriMatches (registered: string, requested: string): boolean {
  if (registered === requested) return true
  let a: URL, b: URL
  try {
    a = new URL(registered)
    b = new URL(requested)
  } catch {
    return false
  }
  if (a.protocol !== 'http:' || b.protocol !== 'http:') return false
  if (!isLoopbackHost(a.hostname) || a.hostname.toLowerCase() !== b.hostname.toLowerCase()) return false
  if (requested.includes('#') || b.username || b.password) return false
  return a.pathname === b.pathname && a.search === b.search
}

/** The registered URI that `requested` matches, or null. */
export function findRedirectUri (registered: readonly string[], requested: string): string | null {
  return registered.find((r) => redirectUriMatches(r, requested)) ?? null
}
