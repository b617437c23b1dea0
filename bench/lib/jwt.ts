/**
 * A local issuer for the gateway benchmarks: an ES256 key, its JWKS served at
 * `<issuer>/.well-known/jwks.json` (the path the gateway fetches), and access tokens minted with exactly
 * the claims the token service issues (RFC 9068: typ at+jwt, kid, iss, sub, aud, client_id, scope, jti,
 * iat, exp, auth_time, grant_id). The gateway's verification (signature, alg, typ, iss, aud, exp, denylist)
 * is the real one; only who signed the token differs.
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { createSigner } from 'fast-jwt'

export interface TokenClaims {
  sub: string
  clientId: string
  grantId: string
  scope?: string
  ttlS?: number
}

export class LocalIssuer {
  readonly kid = `bench-${randomUUID().slice(0, 8)}`
  private readonly privateKey: KeyObject
  private readonly jwk: Record<string, unknown>
  private server: Server | null = null
  private sign: (payload: Record<string, unknown>) => string
  url = ''
  /** JWKS fetches served: the gateway should fetch once and cache */
  fetches = 0

  constructor (readonly audience: string) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.privateKey = privateKey
    this.jwk = { ...publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'ES256', use: 'sig' }
    this.sign = () => { throw new Error('issuer not started') }
  }

  async start (): Promise<string> {
    const body = JSON.stringify({ keys: [this.jwk] })
    this.server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        this.fetches++
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' })
        res.end(body)
        return
      }
      res.writeHead(404).end()
    })
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    const address = this.server.address()
    if (!address || typeof address === 'string') throw new Error('no address')
    this.url = `http://127.0.0.1:${address.port}`
    const pem = this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    this.sign = createSigner({ key: pem, algorithm: 'ES256', kid: this.kid, header: { alg: 'ES256', typ: 'at+jwt' } })
    return this.url
  }

  mint (c: TokenClaims): string {
    const now = Math.floor(Date.now() / 1000)
    return this.sign({
      iss: this.url,
      sub: c.sub,
      aud: this.audience,
      client_id: c.clientId,
      scope: c.scope ?? 'mcp:tools',
      jti: randomUUID(),
      iat: now,
      exp: now + (c.ttlS ?? 900),
      auth_time: now,
      grant_id: c.grantId
    })
  }

  async stop (): Promise<void> {
    if (!this.server) return
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server?.close(resolve))
    this.server = null
  }
}
