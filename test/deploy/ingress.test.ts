// infra/k8s, run for real (issue 10): every Deployment runs from the production folder with its command and
// the environment its manifest gives it (the ConfigMap, its env list with $(VAR) expansion and the pod IP,
// the Secret's REDIS_URL pointing at a standalone Redis, its SIGNING_KEYS_FILE mounted from a file made
// by infra/gen-signing-keys.mjs), each pod in its own network namespace where Service names resolve, and
// the gateway with THREE replicas. The Ingress objects are rendered into a real Debian nginx (one public
// origin standing in for https://mcp.example.com; the gateway upstream `hash $mcp_affinity consistent`,
// i.e. Mcp-Session-Id). Through that origin: the advertised jwks_uri and the well-known documents answer,
// /static does not, the OAuth flow and tool calls run, each session sticks to one upstream, sessions are
// held on all three replicas, and one revocation ends them all.
import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { NetTopology, freePort, until } from '@uspl/testing'
import { createRedis, closeRedis, waitReady } from '@uspl/redis'
import { keys } from '@uspl/core'
import { productionFolder, programOf, capture, waitHealthy, seed, oauthAndToolCall, ROOT } from './helpers.ts'
import { connectViaChallenge, rawPost, type Connected } from '../e2e/suite.ts'
import { renderNginx } from './nginx.ts'

type Obj = Record<string, any>
const PUBLIC = 'https://mcp.example.com'
const GATEWAYS = 3
/** Debian's nginx (in /usr/sbin, which a non-root PATH may lack) */
const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx'

const k8sDir = join(ROOT, 'infra', 'k8s')
const docs: Obj[] = readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'secret.example.yaml')
  .flatMap((f) => parseAllDocuments(readFileSync(join(k8sDir, f), 'utf8')).map((d) => d.toJS() as Obj)).filter(Boolean)
const ofKind = (kind: string): Obj[] => docs.filter((d) => d.kind === kind)

/** A container's environment as the kubelet builds it: envFrom ConfigMaps, then env in order, $(VAR) expanded. */
function containerEnv (c: Obj, refs: { podIp: string, podName: string, secret: Record<string, string>, publicOrigin: string }): Record<string, string> {
  const env: Record<string, string> = {}
  const publicValue = (v: string): string => v.split(PUBLIC).join(refs.publicOrigin)
  for (const from of c.envFrom ?? []) {
    const cm = ofKind('ConfigMap').find((m) => m.metadata.name === from.configMapRef?.name)
    if (!cm) throw new Error(`no ConfigMap ${from.configMapRef?.name}`)
    for (const [k, v] of Object.entries(cm.data)) env[k] = publicValue(String(v))
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = publicValue(String(e.value).replace(/\$\((\w+)\)/g, (m, name) => env[name] ?? m))
    else if (e.valueFrom?.secretKeyRef) env[e.name] = refs.secret[e.valueFrom.secretKeyRef.key]
    else if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') env[e.name] = refs.podIp
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = refs.podName
    else throw new Error(`cannot resolve env ${e.name}`)
  }
  return env
}

// several Node processes starting at once on a shared 2-core machine: well past tap's default 120 s
t.setTimeout(600000)

t.test('the k8s Deployments behind the Ingress rendered into nginx: flow, sticky sessions on three gateways, one revocation ends them all', async (t) => {
  // throws (fails the test, never a skip) when nginx is missing; .ci/run installs it
  execFileSync(NGINX, ['-v'], { stdio: 'ignore' })
  const dir = await productionFolder(t)
  const deployments = ofKind('Deployment')
  const pods: Array<{ host: string, deployment: Obj }> = []
  for (const d of deployments) {
    const n = d.metadata.name === 'gateway' ? GATEWAYS : 1
    for (let i = 1; i <= n; i++) pods.push({ host: n > 1 ? `${d.metadata.name}-${i}` : d.metadata.name, deployment: d })
  }
  // Service names resolve to the (single) pod behind them; gateway replicas are reached by the ingress only
  const topo = await NetTopology.create(t, ['redis', ...pods.map((p) => p.host)])
  const work = mkdtempSync(join(tmpdir(), 'uspl-ingress-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  mkdirSync(join(work, 'redis'))
  await topo.redis('redis', join(work, 'redis'))

  const nginxPort = await freePort()
  const origin = `http://127.0.0.1:${nginxPort}`
  // the Secret uspl-secrets (see secret.example.yaml): a standalone Redis here, and a generated signing key
  const secret = {
    REDIS_URL: 'redis://redis:6379',
    'signing-keys.json': execFileSync(process.execPath, [join(ROOT, 'infra', 'gen-signing-keys.mjs')], { encoding: 'utf8' })
  }
  const keysFile = join(work, 'signing-keys.json')
  writeFileSync(keysFile, secret['signing-keys.json'])

  const envs = new Map<string, Record<string, string>>()
  for (const pod of pods) {
    const c = pod.deployment.spec.template.spec.containers[0]
    const env = containerEnv(c, { podIp: topo.host(pod.host).ip, podName: pod.host, secret, publicOrigin: origin })
    // the Secret volume's mount is a path in this test's temp dir
    if (env.SIGNING_KEYS_FILE) env.SIGNING_KEYS_FILE = keysFile
    envs.set(pod.host, env)
    const { program, args } = programOf(c.command)
    capture(topo.spawn(pod.host, program, args, { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } }), pod.host, t)
  }
  for (const pod of pods) await waitHealthy(`http://${topo.host(pod.host).ip}:${envs.get(pod.host)!.PORT}`, pod.host)
  t.pass(`ready: ${pods.map((p) => p.host).join(', ')}`)

  // Endpoints of each Service: its pods' IPs on the Service's target port
  const endpoints: Record<string, string[]> = {}
  for (const svc of ofKind('Service')) {
    const port = svc.spec.ports[0].port
    endpoints[svc.metadata.name] = pods.filter((p) => p.deployment.metadata.name === svc.metadata.name).map((p) => `${topo.host(p.host).ip}:${port}`)
  }
  t.equal(endpoints.gateway.length, GATEWAYS, 'three gateway endpoints')
  const conf = renderNginx(ofKind('Ingress'), { listen: `127.0.0.1:${nginxPort}`, endpoints, dir: work, user: process.getuid?.() === 0 ? 'root' : undefined })
  t.match(conf, /upstream [\w-]+gateway-3000 \{\n\s+hash \$mcp_affinity consistent;/, 'the gateway upstream hashes consistently')
  t.match(conf, /set \$mcp_affinity \$http_mcp_session_id;/, 'on the Mcp-Session-Id header')
  writeFileSync(join(work, 'nginx.conf'), conf)
  execFileSync(NGINX, ['-t', '-q', '-p', work, '-c', join(work, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  const nginx = spawn(NGINX, ['-p', work, '-c', join(work, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  capture(nginx, 'nginx', t)
  t.teardown(async () => { if (nginx.exitCode === null) { nginx.kill('SIGQUIT'); await once(nginx, 'exit') } })
  await until(async () => { try { return (await fetch(`${origin}/.well-known/oauth-authorization-server`)).ok } catch { return false } }, 10000, 'nginx')

  t.test('the routes of the one origin', async (t) => {
    const as = await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json() as Obj
    t.equal(as.issuer, origin, 'the issuer is the public origin')
    t.equal(as.jwks_uri, `${origin}/.well-known/jwks.json`, 'the advertised jwks_uri')
    const jwks = await fetch(as.jwks_uri)
    t.equal(jwks.status, 200, 'answers through the ingress')
    t.ok(((await jwks.json()) as Obj).keys.length > 0, 'with keys')
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      t.equal((await fetch(`${origin}${path}`)).status, 200, `${path} answers`)
    }
    t.equal(as.registration_endpoint, `${origin}/register`, 'registration on the origin')
    t.equal((await fetch(`${origin}/static/app.css`)).status, 404, '/static is not routed (nothing serves it)')
    t.equal((await fetch(`${origin}/mcp`, { method: 'POST' })).status, 401, '/mcp reaches a gateway')
    t.equal((await fetch(`${origin}/v1/connections`)).status, 401, '/v1 reaches connections')
    t.equal((await fetch(`${origin}/connections`, { redirect: 'manual' })).status >= 200, true, '/connections answers')
  })

  const prefix = envs.get('token')!.REDIS_PREFIX
  const { person, operatorKey } = await seed(t, `redis://${topo.host('redis').ip}:6379`, prefix)
  const first = await oauthAndToolCall(t, `${origin}/mcp`, origin, person)
  const app = first.app
  const conns: Connected[] = [first]

  // which replica holds each session: the sessions index records the owner's REPLICA_URL (its pod IP)
  const redis = createRedis({ url: `redis://${topo.host('redis').ip}:6379`, prefix, name: 'test-index', offlineQueue: true })
  t.teardown(() => closeRedis(redis))
  await waitReady(redis)
  const ownerOf = async (id: string): Promise<string> => String(await redis.hget(keys.mcpSession(id), 'url'))
  const owners = new Set<string>([await ownerOf(first.sessionId)])
  // a new session lands where its random request id hashes on nginx's consistent ring, whose shares are
  // uneven with three servers: open sessions until each replica holds one. Past 12 (the grant may hold
  // MAX_SESSIONS_PER_GRANT, 20), a session on a replica already seen is ended again (DELETE) to free its slot
  for (let attempts = 1; owners.size < GATEWAYS && attempts < 80; attempts++) {
    const conn = await connectViaChallenge(t, `${origin}/mcp`, app)
    const owner = await ownerOf(conn.sessionId)
    if (owners.has(owner) && conns.length >= 12) {
      await conn.transport.terminateSession()
      await conn.client.close()
      continue
    }
    conns.push(conn)
    owners.add(owner)
  }
  t.equal(owners.size, GATEWAYS, `sessions are held on all three replicas (${conns.length} sessions)`)
  t.equal(app.consents, 1, 'one consent: every later session reused the token')

  for (const conn of conns) {
    const result = await conn.client.callTool({ name: 'list_workspaces', arguments: {} })
    t.notOk(result.isError, `a tool call on session ${conn.sessionId.slice(0, 8)}`)
  }
  const log = readFileSync(join(work, 'access.log'), 'utf8')
  const upstreamsOf = new Map<string, Set<string>>()
  for (const m of log.matchAll(/ session=(\S+) upstream=(\S+)/g)) {
    if (m[1] === '-') continue
    upstreamsOf.set(m[1], (upstreamsOf.get(m[1]) ?? new Set()).add(m[2]))
  }
  for (const conn of conns) {
    t.equal(upstreamsOf.get(conn.sessionId)?.size, 1, `session ${conn.sessionId.slice(0, 8)} sticks to one upstream (${[...upstreamsOf.get(conn.sessionId) ?? []].join(',')})`)
  }

  // one revocation, through the ingress, by the operator API
  const ended = Promise.all(conns.map((c) => c.watcher.ended > 0 ? null : once(c.watcher, 'end')))
  const revoke = await fetch(`${origin}/v1/connections/${app.grantId}/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ confirm: 'Deploy Client' })
  })
  t.equal(revoke.status, 200, `revoked: ${await revoke.text()}`)
  await ended
  t.pass(`the ${conns.length} sessions' streams ended, on all three replicas`)
  for (const conn of conns) {
    t.equal((await rawPost(`${origin}/mcp`, conn.token, conn.sessionId)).status, 401, `session ${conn.sessionId.slice(0, 8)}: its token answers 401`)
    t.equal(await redis.exists(keys.mcpSession(conn.sessionId)), 0, 'and it is gone from the index')
  }
  for (let i = 1; i <= GATEWAYS; i++) {
    const metrics = await (await fetch(`http://${topo.host(`gateway-${i}`).ip}:3000/metrics`)).text()
    t.match(metrics, /\ngateway_mcp_sessions_open 0\n/, `gateway-${i} holds no session`)
  }
})
