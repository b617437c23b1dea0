// Every wire format of the error catalogue, pinned byte for byte (status, headers, body) as the one error
// handler (through Fastify) and writeError (on a bare node:http response) answer it.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import {
  HttpError, OAuthError, RegistrationError, ApiError, RpcError, RpcCode, SecEventError,
  bearerChallenge, writeError, type WireFormat
} from '@uspl/errors'
import { errorHandlerFor } from '../src/error-handler.ts'

/** the headers an answer carries, without the ones every answer has */
function headersOf (raw: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, 'content-length': _length, 'transfer-encoding': _chunked, ...rest } = raw
  return rest
}

interface Row {
  name: string
  format: WireFormat
  /** what the route throws */
  raise: () => unknown
  status: number
  headers: Record<string, string>
  body: string
}

/** what Fastify writes for every JSON answer */
const FASTIFY_JSON = 'application/json; charset=utf-8'
const redisDown = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })

const rows: Row[] = [
  {
    name: 'RFC 6749 §5.2: an OAuth error, not cached',
    format: 'oauth',
    raise: () => new OAuthError('invalid_grant', 'the authorization code was already used'),
    status: 400,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store' },
    body: '{"error":"invalid_grant","error_description":"the authorization code was already used"}'
  },
  {
    name: 'RFC 6749 §5.2: a 5xx hides its message, carries Retry-After',
    format: 'oauth',
    raise: () => new OAuthError('temporarily_unavailable', 'the IdP keys could not be read from https://idp.example', 503, { retryAfterS: 5 }),
    status: 503,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store', 'retry-after': '5' },
    body: '{"error":"temporarily_unavailable","error_description":"internal error"}'
  },
  {
    name: 'RFC 7591 §3.2.2: a registration error',
    format: 'oauth',
    raise: () => new RegistrationError('invalid_redirect_uri', 'redirect_uris[0] must use https'),
    status: 400,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store' },
    body: '{"error":"invalid_redirect_uri","error_description":"redirect_uris[0] must use https"}'
  },
  {
    name: 'RFC 6750 §3: a Bearer challenge with its error',
    format: 'oauth',
    raise: () => new RegistrationError('invalid_token', 'the registration access token is missing or invalid for this client', 401, { challenge: bearerChallenge({ error: 'invalid_token' }) }),
    status: 401,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store', 'www-authenticate': 'Bearer error="invalid_token"' },
    body: '{"error":"invalid_token","error_description":"the registration access token is missing or invalid for this client"}'
  },
  {
    name: 'JSON-RPC 2.0 through Fastify: id null',
    format: 'oauth',
    raise: () => new RpcError(429, RpcCode.ServerError, 'Too many open sessions', { noStore: true, retryAfterS: 60 }),
    status: 429,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store', 'retry-after': '60' },
    body: '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Too many open sessions"},"id":null}'
  },
  {
    name: 'the API: {error:{code,message}}, Retry-After, no Cache-Control',
    format: 'api',
    raise: () => new ApiError('rate_limited', 'too many requests from this address; retry in 7 seconds', 429, { retryAfterS: 7 }),
    status: 429,
    headers: { 'content-type': FASTIFY_JSON, 'retry-after': '7' },
    body: '{"error":{"code":"rate_limited","message":"too many requests from this address; retry in 7 seconds"}}'
  },
  {
    name: 'the API: a challenge on 401',
    format: 'api',
    raise: () => new ApiError('unauthenticated', 'the API key is missing, malformed or revoked', 401, { challenge: bearerChallenge({ realm: 'uspl-connections', error: 'invalid_token' }) }),
    status: 401,
    headers: { 'content-type': FASTIFY_JSON, 'www-authenticate': 'Bearer realm="uspl-connections", error="invalid_token"' },
    body: '{"error":{"code":"unauthenticated","message":"the API key is missing, malformed or revoked"}}'
  },
  {
    name: 'RFC 8935 §2.4: a refused SET',
    format: 'oauth',
    raise: () => new SecEventError('invalid_issuer', 'the SET names no trusted issuer'),
    status: 400,
    headers: { 'content-type': FASTIFY_JSON, 'cache-control': 'no-store' },
    body: '{"err":"invalid_issuer","description":"the SET names no trusted issuer"}'
  },
  {
    name: 'RFC 8935: the issuer\'s keys unavailable, 503 with Retry-After',
    format: 'oauth',
    raise: () => new SecEventError('invalid_key', 'the issuer\'s keys could not be read; retry shortly', 503, { retryAfterS: 5 }),
    status: 503,
    headers: { 'content-type': FASTIFY_JSON, 'retry-after': '5' },
    body: '{"err":"invalid_key","description":"the issuer\'s keys could not be read; retry shortly"}'
  },
  {
    name: 'uncatalogued, OAuth context: Redis unreachable is 503 with Retry-After',
    format: 'oauth',
    raise: redisDown,
    status: 503,
    headers: { 'content-type': FASTIFY_JSON, 'retry-after': '2' },
    body: '{"error":"temporarily_unavailable","error_description":"the service cannot reach its store; retry shortly"}'
  },
  {
    name: 'uncatalogued, API context: Redis unreachable is 503 with Retry-After',
    format: 'api',
    raise: redisDown,
    status: 503,
    headers: { 'content-type': FASTIFY_JSON, 'retry-after': '2' },
    body: '{"error":{"code":"unavailable","message":"the service cannot reach its store; retry shortly"}}'
  },
  {
    name: 'uncatalogued, OAuth context: a bug is 500 with nothing internal',
    format: 'oauth',
    raise: () => new Error('secret internals'),
    status: 500,
    headers: { 'content-type': FASTIFY_JSON },
    body: '{"error":"server_error","error_description":"internal error"}'
  },
  {
    name: 'uncatalogued, API context: a bug is 500 with nothing internal',
    format: 'api',
    raise: () => new Error('secret internals'),
    status: 500,
    headers: { 'content-type': FASTIFY_JSON },
    body: '{"error":{"code":"internal","message":"internal error"}}'
  },
  {
    name: 'uncatalogued, API context: another 4xx keeps its status, its code lowercased',
    format: 'api',
    raise: () => Object.assign(new Error('Body cannot be empty'), { statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }),
    status: 400,
    headers: { 'content-type': FASTIFY_JSON },
    body: '{"error":{"code":"fst_err_ctp_empty_json_body","message":"Body cannot be empty"}}'
  }
]

async function appFor (format: WireFormat, raise: () => unknown): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.setErrorHandler(errorHandlerFor(format))
  app.get('/', async () => { throw raise() })
  app.post('/validated', { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }, async () => ({}))
  await app.ready()
  return app
}

t.test('each wire format, through the one error handler', async (t) => {
  for (const row of rows) {
    const app = await appFor(row.format, row.raise)
    const res = await app.inject({ method: 'GET', url: '/' })
    t.equal(res.statusCode, row.status, `${row.name}: status`)
    t.strictSame(headersOf(res.headers), row.headers, `${row.name}: headers`)
    t.equal(res.body, row.body, `${row.name}: body`)
    await app.close()
  }
})

t.test('a validation failure is 400 naming the field, in each context\'s format', async (t) => {
  const expected: Record<'oauth' | 'api', string> = {
    oauth: '{"error":"invalid_request","error_description":"body must have required property \'name\'"}',
    api: '{"error":{"code":"invalid_request","message":"body must have required property \'name\'"}}'
  }
  for (const format of ['oauth', 'api'] as const) {
    const app = await appFor(format, () => new Error('unused'))
    const res = await app.inject({ method: 'POST', url: '/validated', payload: {} })
    t.equal(res.statusCode, 400)
    t.strictSame(headersOf(res.headers), { 'content-type': FASTIFY_JSON })
    t.equal(res.body, expected[format], format)
    await app.close()
  }
})

t.test('writeError on a bare node:http response: the given headers first, then the error\'s', async (t) => {
  const cases: Array<{ err: HttpError, given: Record<string, string>, status: number, headers: Record<string, string>, body: string }> = [
    {
      err: new RpcError(503, RpcCode.ServerError, 'Service Unavailable: this replica is shutting down; retry', { retryAfterS: 2 }),
      given: { 'mcp-protocol-version': '2026-07-28' },
      status: 503,
      headers: { 'mcp-protocol-version': '2026-07-28', 'content-type': 'application/json', 'retry-after': '2' },
      body: '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Service Unavailable: this replica is shutting down; retry"},"id":null}'
    },
    {
      err: new RpcError(404, RpcCode.SessionNotFound, 'Session not found', { noStore: true }),
      given: { 'x-request-id': 'req-1' },
      status: 404,
      headers: { 'x-request-id': 'req-1', 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: '{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}'
    },
    {
      err: Object.assign(new OAuthError('invalid_token', 'access was revoked while this request was in flight', 401, { expose: true }), {
        challenge: bearerChallenge({ resource_metadata: 'https://mcp.example/.well-known/oauth-protected-resource/mcp', scope: 'mcp:tools', error: 'invalid_token', error_description: 'access was "revoked"' })
      }),
      given: {},
      status: 401,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'www-authenticate': 'Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="mcp:tools", error="invalid_token", error_description="access was revoked"'
      },
      body: '{"error":"invalid_token","error_description":"access was revoked while this request was in flight"}'
    }
  ]
  for (const c of cases) {
    const server: Server = createServer((_req, res) => writeError(res, c.err, c.given))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
    const headers: Record<string, string> = {}
    res.headers.forEach((value, name) => { headers[name] = value })
    t.equal(res.status, c.status)
    t.strictSame(headersOf(headers), c.headers, c.err.message)
    t.equal(await res.text(), c.body)
    server.close()
    await once(server, 'close')
  }
})

t.test('bearerChallenge writes the parameters given, in order', async (t) => {
  t.equal(bearerChallenge({ realm: 'introspect' }), 'Bearer realm="introspect"')
  t.equal(bearerChallenge({ realm: 'uspl-connections', error: undefined }), 'Bearer realm="uspl-connections"')
  t.equal(bearerChallenge({ error: 'invalid_token' }), 'Bearer error="invalid_token"')
  t.equal(bearerChallenge({ error_description: 'a \\ "quoted" value' }), 'Bearer error_description="a  quoted value"')
})
