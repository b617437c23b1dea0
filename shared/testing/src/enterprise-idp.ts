/**
 * A local test enterprise IdP built from the standards: its own ES256 key (and an RSA one for other
 * algorithms), ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant) and SETs (RFC 8417) it signs,
 * hostile variants (alg none, HS256 keyed with its own public key, another key), and its JWKS served over
 * loopback HTTP when a test wants a jwks_uri, and its RFC 8936 poll endpoint (TestPollEndpoint). Import as
 * `@uspl/testing/enterprise-idp`.
 */
import { createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EventEmitter } from 'node:events'

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

export interface PollRequest {
  authorization: string | undefined
  contentType: string | undefined
  body: { maxEvents?: number, returnImmediately?: boolean, ack?: string[], setErrs?: Record<string, { err: string, description: string }> }
}

/**
 * An IdP's RFC 8936 poll endpoint on loopback HTTP, built from the RFC: it holds SETs (jti -> SET) until
 * they are acknowledged (`ack`) or reported (`setErrs`, recorded), answers at most `maxEvents` of them
 * with `moreAvailable`, and records every request. `down` answers 503, `raw` answers that text instead;
 * `hold` keeps answers back until it resolves. Emits 'request' as each request arrives.
 */
export class TestPollEndpoint extends EventEmitter {
  url = ''
  readonly held = new Map<string, string>()
  readonly requests: PollRequest[] = []
  readonly acked: string[] = []
  readonly setErrs: Record<string, { err: string, description: string }> = {}
  down = false
  /** when set, answered as is (200) instead of a poll response */
  raw: string | null = null
  hold: Promise<void> | null = null
  private server: Server | null = null

  /** Queues a SET under its jti (or the one given); returns the jti. */
  add (set: string, jti?: string): string {
    const id = jti ?? String(JSON.parse(Buffer.from(set.split('.')[1] ?? '', 'base64url').toString() || '{}').jti)
    this.held.set(id, set)
    return id
  }

  async serve (t: Teardown): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        void (async () => {
          let body: PollRequest['body'] = {}
          try { body = JSON.parse(Buffer.concat(chunks).toString()) } catch {}
          this.requests.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body })
          this.emit('request', this.requests[this.requests.length - 1])
          if (this.hold) await this.hold
          if (this.down || req.method !== 'POST') return res.writeHead(503).end()
          if (this.raw !== null) return res.writeHead(200, { 'content-type': 'application/json' }).end(this.raw)
          for (const jti of body.ack ?? []) {
            this.acked.push(jti)
            this.held.delete(jti)
          }
          for (const [jti, e] of Object.entries(body.setErrs ?? {})) {
            this.setErrs[jti] = e
            this.held.delete(jti)
          }
          const max = Math.max(0, Number(body.maxEvents ?? this.held.size))
          const sets = Object.fromEntries([...this.held].slice(0, max))
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sets, moreAvailable: this.held.size > max }))
        })()
      })
    })
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => this.server?.close(resolve)))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ssf/poll`
    return this.url
  }
}
