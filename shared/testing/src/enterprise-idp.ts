/**
 * A local test enterprise IdP built from the standards: its own ES256 key (and an RSA one for other
 * algorithms), ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant) and SETs (RFC 8417) it signs,
 * hostile variants (alg none, HS256 keyed with its own public key, another key), and its JWKS served over
 * loopback HTTP when a test wants a jwks_uri. Import as `@uspl/testing/enterprise-idp`.
 */
import { createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

interface Teardown { teardown: (fn: () => unknown) => void }

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

export interface JwsOptions {
  header?: Record<string, unknown>
  /** sign with this key instead (a wrong signature) */
  key?: KeyObject
  /** alg none, no signature */
  unsigned?: boolean
  /** HS256 keyed with this secret (algorithm confusion: pass the public key's PEM or JWK JSON) */
  hmacSecret?: string | Buffer
}

export class TestIdp {
  readonly kid = `idp-${randomUUID().slice(0, 8)}`
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  jwksUrl = ''
  jwksHits = 0
  private server: Server | null = null

  constructor (readonly issuer: string, readonly domain = 'corp.example') {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.privateKey = pair.privateKey
    this.publicKey = pair.publicKey
  }

  get jwks (): { keys: Array<Record<string, unknown>> } {
    return { keys: [{ ...this.publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'ES256', use: 'sig' }] }
  }

  get publicPem (): string {
    return this.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  }

  sign (claims: Record<string, unknown>, typ: string, opts: JwsOptions = {}): string {
    const alg = opts.unsigned ? 'none' : opts.hmacSecret !== undefined ? 'HS256' : 'ES256'
    const input = `${b64({ alg, typ, kid: this.kid, ...opts.header })}.${b64(claims)}`
    if (opts.unsigned) return `${input}.`
    if (opts.hmacSecret !== undefined) return `${input}.${createHmac('sha256', opts.hmacSecret).update(input).digest('base64url')}`
    return `${input}.${cryptoSign('sha256', Buffer.from(input), { key: opts.key ?? this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }

  /** The claims of an ID-JAG for `email`, to our `audience` (issuer), `clientId` and `resource`. */
  idJagClaims (c: { audience: string, clientId: string, resource: string, email: string, sub?: string, scope?: string, lifetimeS?: number }): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000)
    return { iss: this.issuer, sub: c.sub ?? `00u${c.email}`, aud: c.audience, client_id: c.clientId, resource: c.resource, scope: c.scope ?? 'mcp:tools', email: c.email, jti: randomUUID(), iat: now, exp: now + (c.lifetimeS ?? 120) }
  }

  idJag (claims: Record<string, unknown>, opts: JwsOptions = {}): string {
    return this.sign(claims, 'oauth-id-jag+jwt', opts)
  }

  /** A SET with one event about a user named by email (SSF `sub_id` format email). */
  setClaims (c: { audience: string, eventType: string, email: string, event?: Record<string, unknown>, iat?: number }): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000)
    return { iss: this.issuer, jti: randomUUID(), iat: c.iat ?? now, aud: c.audience, sub_id: { format: 'email', email: c.email }, events: { [c.eventType]: { event_timestamp: now, ...c.event } } }
  }

  securityEvent (claims: Record<string, unknown>, opts: JwsOptions = {}): string {
    return this.sign(claims, 'secevent+jwt', opts)
  }

  /** Serves the JWKS on loopback; sets and returns `jwksUrl`. */
  async serveJwks (t: Teardown): Promise<string> {
    this.server = createServer((req, res) => {
      this.jwksHits++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.jwks))
    })
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => this.server?.close(resolve)))
    this.jwksUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks`
    return this.jwksUrl
  }
}
