/**
 * Client ID Metadata Documents served the way real clients serve them: over https, from a local server
 * whose certificate a test CA signed (made with openssl at test time in a temporary folder, never checked
 * in). Hosts are test names (claude.test, chatgpt.test, …) that the token service's resolver maps to
 * 127.0.0.1, so nothing leaves the machine. Each path answers with whatever the test says: a document, a
 * redirect, a huge body, a body that never ends.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Teardown { teardown: (fn: () => unknown) => void }

export const DOCUMENT_HOSTS = ['claude.test', 'vscode.test', 'chatgpt.test', 'evil.test', 'rebind.test', 'localhost']

export interface TestCa {
  /** the CA certificate (PEM), to trust */
  ca: string
  /** a file holding `ca`, for NODE_EXTRA_CA_CERTS */
  caFile: string
  key: string
  cert: string
}

/** A test CA and a server certificate it signed for DOCUMENT_HOSTS and 127.0.0.1. */
export function testCa (t: Teardown): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'uspl-ca-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const run = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=uspl test CA')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=documents.test')
  writeFileSync(join(dir, 'san.ext'), `subjectAltName=${[...DOCUMENT_HOSTS.map((h) => `DNS:${h}`), 'IP:127.0.0.1'].join(',')}\n`)
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext')
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8')
  return { ca: read('ca.pem'), caFile: join(dir, 'ca.pem'), key: read('server.key'), cert: read('server.pem') }
}

export type Route = (req: IncomingMessage, res: ServerResponse) => void

export interface DocumentServer {
  port: number
  /** `https://<host>:<port>` */
  origin: (host: string) => string
  /** what `path` answers (any host) */
  route: (path: string, handler: Route) => void
  /** serves `body` as JSON at `path` with extra headers */
  json: (path: string, body: unknown, headers?: Record<string, string>) => void
  /** how many requests reached `path` */
  hits: (path: string) => number
}

export async function documentServer (t: Teardown, ca: TestCa): Promise<DocumentServer> {
  const routes = new Map<string, Route>()
  const counts = new Map<string, number>()
  const sockets = new Set<Socket>()
  const server: Server = createServer({ key: ca.key, cert: ca.cert }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    counts.set(path, (counts.get(path) ?? 0) + 1)
    const handler = routes.get(path)
    if (!handler) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
      return
    }
    handler(req, res)
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('no address')
  const port = address.port
  return {
    port,
    origin: (host) => `https://${host}:${port}`,
    route: (path, handler) => routes.set(path, handler),
    json: (path, body, headers = {}) => routes.set(path, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600', ...headers }).end(JSON.stringify(body))
    }),
    hits: (path) => counts.get(path) ?? 0
  }
}

/** A resolver for the token service's fetcher: every test host is 127.0.0.1 (no DNS, no network). */
export async function loopbackResolver (hostname: string): Promise<Array<{ address: string, family: number }>> {
  if (DOCUMENT_HOSTS.includes(hostname)) return [{ address: '127.0.0.1', family: 4 }]
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
}
