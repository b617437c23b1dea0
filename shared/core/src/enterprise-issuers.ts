/**
 * Trusted enterprise issuers: the identity providers (Okta, Entra ID, Google Workspace…) whose ID-JAGs the
 * token endpoint accepts and whose Security Event Tokens the Shared Signals receiver acts on. Each names
 * its keys (a JWKS URL, or an inline public JWK set), which users it governs (email domains, and a tenant
 * when the IdP puts a `tenant` claim in its assertions) and how its subject maps to our users:
 *   'email'  the assertion's `email` claim is the user's email;
 *   'sub'    the assertion's `sub` is linked to one of our users beforehand (linkSubject); the link is the
 *            user attribute, so an IdP that re-issues an email address cannot take over another account.
 * Either way the user's email domain must be one the issuer governs. Optionally, the IdP's RFC 8936 poll
 * endpoint (its stream's `delivery.endpoint_url`) and the `Authorization` value to send it, for the token
 * service's poller: that value is an outbound credential, so it is stored as given and never shown
 * (`publicEnterpriseIssuer` says only whether one is set). Records live in one hash (field = issuer URL),
 * so adding, replacing and removing are single commands.
 */
import { createHash } from 'node:crypto'
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { assertPublicJwks, type Jwks } from './jose.ts'

export type SubjectMapping = 'email' | 'sub'

export interface EnterpriseIssuer {
  /** stable id derived from the issuer URL (`ent_…`): what grants name in `managed_by` */
  id: string
  issuer: string
  name: string
  jwksUri: string | null
  jwks: Jwks | null
  /** lower-case email domains this issuer governs */
  domains: string[]
  /** when set, assertions must carry this `tenant` claim */
  tenant: string | null
  subject: SubjectMapping
  /** the IdP's RFC 8936 poll endpoint, or null (push only) */
  pollUrl: string | null
  /** the `Authorization` header value sent to the poll endpoint: a secret, never listed or returned */
  pollAuthorization: string | null
  createdAt: number
}

/** An issuer as listings and responses show it: the poll credential only as whether one is set. */
export type PublicEnterpriseIssuer = Omit<EnterpriseIssuer, 'pollAuthorization'> & { pollAuthorizationSet: boolean }

export function publicEnterpriseIssuer (i: EnterpriseIssuer): PublicEnterpriseIssuer {
  const { pollAuthorization, ...rest } = i
  return { ...rest, pollUrl: i.pollUrl ?? null, pollAuthorizationSet: typeof pollAuthorization === 'string' && pollAuthorization.length > 0 }
}

export interface EnterpriseIssuerInput {
  issuer: string
  name?: string
  jwksUri?: string | null
  jwks?: unknown
  domains: string[]
  tenant?: string | null
  subject?: SubjectMapping
  pollUrl?: string | null
  pollAuthorization?: string | null
}

export function enterpriseIssuerId (issuer: string): string {
  return `ent_${createHash('sha256').update(issuer).digest('base64url').slice(0, 22)}`
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

/** https, or http on a loopback host only (a local IdP in tests); fetched only under ENTERPRISE_JWKS_ORIGINS. */
function validatePollUrl (value: string): string {
  let u: URL
  try { u = new URL(value) } catch { throw new Error('poll_url must be an absolute URL') }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname))) throw new Error('poll_url must be an https URL')
  if (u.username || u.password || u.hash) throw new Error('poll_url must have no credentials or fragment')
  return u.toString()
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/

/** Validates operator input; throws an Error whose message names the field. */
export function validateEnterpriseIssuer (input: EnterpriseIssuerInput, now = Date.now()): EnterpriseIssuer {
  let url: URL
  try { url = new URL(input.issuer) } catch { throw new Error('issuer must be an absolute URL') }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('issuer must be an http(s) URL')
  if (url.search || url.hash) throw new Error('issuer must have no query or fragment')
  const hasUri = typeof input.jwksUri === 'string' && input.jwksUri.length > 0
  const hasInline = input.jwks !== undefined && input.jwks !== null
  if (hasUri === hasInline) throw new Error('give exactly one of jwks_uri and jwks')
  let jwksUri: string | null = null
  if (hasUri) {
    let u: URL
    try { u = new URL(input.jwksUri as string) } catch { throw new Error('jwks_uri must be an absolute URL') }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('jwks_uri must be an http(s) URL')
    if (u.username || u.password || u.hash) throw new Error('jwks_uri must have no credentials or fragment')
    jwksUri = u.toString()
  }
  const jwks = hasInline ? assertPublicJwks(input.jwks) : null
  if (!Array.isArray(input.domains) || input.domains.length === 0) throw new Error('domains must name at least one governed email domain')
  const domains = [...new Set(input.domains.map((d) => String(d).trim().toLowerCase()))]
  for (const d of domains) if (!DOMAIN_RE.test(d)) throw new Error(`domain ${d} is not a domain name`)
  const subject = input.subject ?? 'email'
  if (subject !== 'email' && subject !== 'sub') throw new Error('subject must be email or sub')
  const tenant = input.tenant ? String(input.tenant) : null
  const pollUrl = typeof input.pollUrl === 'string' && input.pollUrl.length > 0 ? validatePollUrl(input.pollUrl) : null
  const pollAuthorization = typeof input.pollAuthorization === 'string' && input.pollAuthorization.length > 0 ? input.pollAuthorization : null
  if (pollAuthorization !== null) {
    if (!pollUrl) throw new Error('poll_authorization needs poll_url')
    // a header value: visible ASCII and spaces, one line
    if (pollAuthorization.length > 4096 || !/^[\x20-\x7e]+$/.test(pollAuthorization)) throw new Error('poll_authorization must be one line of printable ASCII (at most 4096 characters)')
  }
  return { id: enterpriseIssuerId(input.issuer), issuer: input.issuer, name: input.name ?? url.host, jwksUri, jwks, domains, tenant, subject, pollUrl, pollAuthorization, createdAt: now }
}

/** The domain of an email address, lower-case, or null when it is not one. */
export function emailDomain (email: unknown): string | null {
  if (typeof email !== 'string' || email.length > 320) return null
  const at = email.lastIndexOf('@')
  if (at <= 0 || at === email.length - 1) return null
  return email.slice(at + 1).toLowerCase()
}

/** A stored record; one written before the poll fields existed reads as push only. */
function parseRecord (raw: string): EnterpriseIssuer {
  const r = JSON.parse(raw) as EnterpriseIssuer
  return { ...r, pollUrl: r.pollUrl ?? null, pollAuthorization: r.pollAuthorization ?? null }
}

export class EnterpriseIssuerStore {
  constructor (private readonly redis: RedisClient) {}

  /** Adds the issuer, or replaces its record (keeping its creation time). */
  async put (input: EnterpriseIssuerInput): Promise<EnterpriseIssuer> {
    const record = validateEnterpriseIssuer(input)
    const existing = await this.get(record.issuer)
    if (existing) record.createdAt = existing.createdAt
    await this.redis.hset(keys.enterpriseIssuers(), record.issuer, JSON.stringify(record))
    return record
  }

  async get (issuer: string): Promise<EnterpriseIssuer | null> {
    if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 2048) return null
    const raw = await this.redis.hget(keys.enterpriseIssuers(), issuer)
    return raw ? parseRecord(raw) : null
  }

  async list (): Promise<EnterpriseIssuer[]> {
    const all = await this.redis.hvals(keys.enterpriseIssuers())
    return all.map(parseRecord).sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Finds by issuer URL or by id. */
  async find (issuerOrId: string): Promise<EnterpriseIssuer | null> {
    if (!issuerOrId.startsWith('ent_')) return this.get(issuerOrId)
    return (await this.list()).find((i) => i.id === issuerOrId) ?? null
  }

  /** Removes the issuer, its subject links and its unsent poll acknowledgements; its grants stay (revoke them through the pipeline). */
  async remove (issuerOrId: string): Promise<EnterpriseIssuer | null> {
    const found = await this.find(issuerOrId)
    if (!found) return null
    await this.redis.multi().hdel(keys.enterpriseIssuers(), found.issuer).del(keys.enterpriseSubjectLinks(found.id)).del(keys.ssfPollPendingAcks(found.id)).exec()
    return found
  }

  /** For `subject: 'sub'`: links the issuer's subject to one of our users. */
  async linkSubject (issuerId: string, sub: string, userId: string): Promise<void> {
    await this.redis.hset(keys.enterpriseSubjectLinks(issuerId), sub, userId)
  }

  async linkedUser (issuerId: string, sub: string): Promise<string | null> {
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 1024) return null
    return this.redis.hget(keys.enterpriseSubjectLinks(issuerId), sub)
  }
}
