/** Small OAuth helpers: scopes, resource indicators, PKCE values, authorization response URLs. */
import { OAuthError } from '@uspl/errors'

/** The scopes this server knows. */
export const SUPPORTED_SCOPES = ['mcp:tools'] as const
export const DEFAULT_SCOPE = 'mcp:tools'

export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  'mcp:tools': 'Use the tools of this MCP server on your behalf: read your workspace\'s recordings and recording links, and create, update or delete them as your role allows.'
}

function split (scope: string | undefined): string[] {
  return [...new Set((scope ?? '').split(' ').filter((s) => s.length > 0))]
}

/** At /authorize: unknown scopes are dropped (real clients send odd ones); nothing left means the default. */
export function authorizationScope (requested: string | undefined): string {
  const known = split(requested).filter((s) => (SUPPORTED_SCOPES as readonly string[]).includes(s))
  return known.length > 0 ? known.join(' ') : DEFAULT_SCOPE
}

/** At refresh: the requested scope must be within the granted one (it can only narrow). */
export function narrowScope (granted: string, requested: string | undefined): string {
  const want = split(requested)
  if (want.length === 0) return granted
  const have = new Set(split(granted))
  const extra = want.filter((s) => !have.has(s))
  if (extra.length > 0) throw new OAuthError('invalid_scope', `the requested scope exceeds the granted one (${extra.join(' ')} was not granted)`)
  return want.join(' ')
}

function normalizeResource (uri: string): string {
  return uri.endsWith('/') ? uri.slice(0, -1) : uri
}

/** RFC 8707: the resource must name the gateway; a trailing slash is not a different resource. */
export function resourceMatches (expected: string, given: string): boolean {
  return normalizeResource(expected) === normalizeResource(given)
}

/** One string parameter from a query or form: absent, or exactly one value (RFC 6749 §3.1: no repeats). */
export function param (source: unknown, name: string, maxLength = 2048): string | undefined {
  const value = (source as Record<string, unknown> | undefined)?.[name]
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string') throw new OAuthError('invalid_request', `${name} must be given once`)
  if (value.length > maxLength) throw new OAuthError('invalid_request', `${name} is longer than ${maxLength} characters`)
  return value
}

/** RFC 7636 §4.1: a code verifier is 43 to 128 unreserved characters; the S256 challenge is 43. */
export const VERIFIER_RE = /^[A-Za-z0-9._~-]{43,128}$/
export const CHALLENGE_RE = /^[A-Za-z0-9_-]{43}$/

/** The redirect back to the client with the response parameters (and `iss`, RFC 9207). */
export function authorizationResponseUrl (redirectUri: string, params: Record<string, string | null | undefined>): string {
  const url = new URL(redirectUri)
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) url.searchParams.set(k, v)
  return url.toString()
}

/**
 * Where sign-in may send the browser afterwards: a path on this service, or a URL on this service's or
 * the connections service's origin. Anything else (another origin, `//host`, `/\host`) is ignored.
 */
export function safeReturnTo (value: unknown, allowedOrigins: readonly string[]): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2000) return null
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return null
  if (value.startsWith('/')) return value.startsWith('//') ? null : value
  try {
    const url = new URL(value)
    return allowedOrigins.includes(url.origin) && !url.username && !url.password ? url.toString() : null
  } catch {
    return null
  }
}
