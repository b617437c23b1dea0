/**
 * The deployment files checked against each other and against the repo: docker-compose.yml against the
 * Compose specification's structure, every manifest under infra/k8s/ against the objects it references,
 * the Dockerfile's stages, and the service names, entries and ports they all name.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { createPrivateKey, createPublicKey, createHash, sign, verify } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const read = (path: string): string => readFileSync(join(root, path), 'utf8')

type Obj = Record<string, any>
const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The HTTP services and their default ports. */
const SERVICES: Record<string, number> = { gateway: 3000, token: 3001, registration: 3002, connections: 3003, api: 3004 }
/** Every process a deployment runs: the services, and the follow-up worker (health only, on 3013). */
const PROCESSES: Record<string, { port: number, service: string, entry: string }> = {
  ...Object.fromEntries(Object.entries(SERVICES).map(([name, port]) => [name, { port, service: name, entry: 'server' }])),
  'connections-worker': { port: 3013, service: 'connections', entry: 'worker' }
}
/** The compiled entry a deployment runs, and the source it is built from. */
const entryOf = (name: string): string => `services/${PROCESSES[name].service}/dist/${PROCESSES[name].entry}.js`
const sourceOf = (name: string): string => `services/${PROCESSES[name].service}/src/${PROCESSES[name].entry}.ts`
const RUN = (name: string): string[] => ['node', '--conditions=compiled', entryOf(name)]

t.test('every process named here is built from a workspace service\'s entry', async (t) => {
  for (const name of Object.keys(PROCESSES)) {
    t.ok(statSync(join(root, 'services', PROCESSES[name].service)).isDirectory(), `services/${PROCESSES[name].service} is a directory`)
    t.ok(existsSync(join(root, sourceOf(name))), `${sourceOf(name)} exists (compiled to ${entryOf(name)})`)
  }
  const build = JSON.parse(read('tsconfig.build.json')) as { references: Array<{ path: string }> }
  const built = build.references.map((r) => r.path.replace(/^\.\//, '').replace(/\/tsconfig\.build\.json$/, ''))
  for (const svc of new Set(Object.values(PROCESSES).map((p) => p.service))) t.ok(built.includes(`services/${svc}`), `npm run build compiles services/${svc}`)
  for (const dir of built) {
    const pkg = JSON.parse(read(`${dir}/package.json`))
    t.same(pkg.files, ['dist/**/*.js'], `${dir}: ships only its compiled JavaScript`)
    for (const [sub, target] of Object.entries<Obj>(pkg.exports)) {
      t.match(target.compiled, /^\.\/dist\/.*\.js$/, `${dir} ${sub}: the 'compiled' condition resolves to dist/`)
      t.match(target.default, /^\.\/src\/.*\.ts$/, `${dir} ${sub}: the default (tests, tsx) to src/`)
    }
    const refs = (JSON.parse(read(`${dir}/tsconfig.build.json`)).references ?? []).map((r: { path: string }) => r.path.split('/').slice(-2, -1)[0])
    const deps = Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@uspl/')).map((d) => d.slice(6))
    t.same(refs.sort(), deps.sort(), `${dir}: its build references are its workspace dependencies`)
  }
})

// ---------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------

/** Compose specification: top-level elements; `x-` keys are extensions. */
const TOP_LEVEL = new Set(['version', 'name', 'include', 'services', 'networks', 'volumes', 'configs', 'secrets', 'models'])
const DEPENDS_ON_CONDITIONS = new Set(['service_started', 'service_healthy', 'service_completed_successfully'])
const DURATION = /^(\d+(\.\d+)?(us|ms|s|m|h))+$/

/**
 * A short-syntax port, [[HOST_IP:](HOST_PORT|RANGE):](CONTAINER_PORT|RANGE)[/PROTOCOL], as the Compose
 * specification defines it. Ranges are not used here, so they are refused rather than half-parsed.
 */
function parsePort (spec: string): { hostIp?: string, published?: number, target: number, protocol: string } {
  const m = /^(?:(?:(\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d+)?:)?(\d+)(?:\/(tcp|udp))?$/.exec(spec)
  if (!m) throw new Error(`not a port: ${spec}`)
  const num = (s: string): number => {
    const n = Number(s)
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`port out of range in ${spec}`)
    return n
  }
  return { hostIp: m[1], published: m[2] ? num(m[2]) : undefined, target: num(m[3]), protocol: m[4] ?? 'tcp' }
}

/** A short-syntax volume's source is a named volume when it is not a path. */
function namedVolumeOf (spec: string | Obj): string | undefined {
  if (isMap(spec)) return spec.type === 'volume' ? spec.source : undefined
  const source = spec.split(':')[0]
  return spec.includes(':') && !/^[./~]/.test(source) ? source : undefined
}

const envOf = (service: Obj): Record<string, string> => {
  const env = service.environment ?? {}
  if (Array.isArray(env)) return Object.fromEntries(env.map((e: string) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]))
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))
}

t.test('docker-compose.yml', async (t) => {
  // merge keys (<<) are part of the Compose file format
  const compose = parse(read('docker-compose.yml'), { merge: true }) as Obj
  t.ok(isMap(compose), 'is a map')

  t.test('follows the Compose specification', async (t) => {
    for (const key of Object.keys(compose)) {
      t.ok(TOP_LEVEL.has(key) || key.startsWith('x-'), `top-level key ${key} is a Compose element or an extension`)
    }
    t.ok(isMap(compose.services), 'services is a map')
    const declaredVolumes = Object.keys(compose.volumes ?? {})
    for (const [name, service] of Object.entries<Obj>(compose.services)) {
      t.match(name, /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, `${name}: valid service name`)
      t.ok(isMap(service), `${name}: is a map`)
      t.ok(service.image !== undefined || service.build !== undefined, `${name}: has image or build`)
      if (service.build !== undefined) {
        const context = typeof service.build === 'string' ? service.build : service.build.context
        t.ok(existsSync(join(root, context ?? '.')), `${name}: build context exists`)
        if (isMap(service.build) && service.build.dockerfile) {
          t.ok(existsSync(join(root, service.build.context ?? '.', service.build.dockerfile)), `${name}: Dockerfile exists`)
        }
      }
      if (service.command !== undefined) {
        t.ok(typeof service.command === 'string' || (Array.isArray(service.command) && service.command.every((c: unknown) => typeof c === 'string')),
          `${name}: command is a string or a list of strings`)
      }
      for (const port of service.ports ?? []) {
        t.equal(typeof port, 'string', `${name}: port ${port} is quoted (a bare 3000:3000 is YAML 1.1 base-60)`)
        t.doesNotThrow(() => parsePort(port), `${name}: port ${port} parses`)
      }
      const env = service.environment
      if (env !== undefined) {
        t.ok(isMap(env) ? Object.values(env).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))
          : Array.isArray(env) && env.every((e) => typeof e === 'string' && e.includes('=')),
        `${name}: environment is a map of scalars or a list of KEY=VALUE`)
      }
      if (service.healthcheck !== undefined) {
        const hc = service.healthcheck
        t.ok(Array.isArray(hc.test), `${name}: healthcheck.test is an array`)
        t.ok(['NONE', 'CMD', 'CMD-SHELL'].includes(hc.test[0]), `${name}: healthcheck.test starts with CMD, CMD-SHELL or NONE`)
        for (const key of ['interval', 'timeout', 'start_period', 'start_interval']) {
          if (hc[key] !== undefined) t.match(hc[key], DURATION, `${name}: healthcheck.${key} is a duration`)
        }
        if (hc.retries !== undefined) t.ok(Number.isInteger(hc.retries) && hc.retries > 0, `${name}: healthcheck.retries is a positive integer`)
      }
      const dependsOn = service.depends_on
      if (dependsOn !== undefined) {
        const entries: Array<[string, Obj]> = Array.isArray(dependsOn) ? dependsOn.map((d: string) => [d, {}]) : Object.entries(dependsOn)
        for (const [dep, spec] of entries) {
          t.ok(compose.services[dep], `${name}: depends on existing service ${dep}`)
          if (spec.condition !== undefined) t.ok(DEPENDS_ON_CONDITIONS.has(spec.condition), `${name}: depends_on ${dep} condition ${spec.condition} is valid`)
          if (spec.condition === 'service_healthy') t.ok(compose.services[dep]?.healthcheck, `${name}: ${dep} has the healthcheck its condition waits for`)
        }
      }
      for (const volume of service.volumes ?? []) {
        const named = namedVolumeOf(volume)
        if (named) t.ok(declaredVolumes.includes(named), `${name}: named volume ${named} is declared at the top level`)
      }
    }
  })

  t.test('redis: redis 7 with AOF on a named volume, healthy on ping', async (t) => {
    const redis = compose.services.redis
    t.ok(redis, 'has a redis service')
    t.match(redis.image, /^redis:7(\.|$|-)/, 'image is redis:7')
    t.match([redis.command].flat().join(' '), /--appendonly yes/, 'appendonly yes')
    t.ok(redis.volumes.some((v: string) => namedVolumeOf(v) && v.endsWith(':/data')), 'a named volume at /data')
    t.same(redis.healthcheck.test, ['CMD', 'redis-cli', 'ping'], 'healthcheck pings')
  })

  t.test('the services and the worker run the one image, each on its default port', async (t) => {
    const built = Object.entries<Obj>(compose.services).filter(([, s]) => s.build !== undefined)
    t.same(built.map(([n]) => n).sort(), Object.keys(PROCESSES).sort(), 'exactly the services and the worker are built from the Dockerfile')
    t.equal(new Set(built.map(([, s]) => s.image)).size, 1, 'all share one image tag')
    for (const [name, { port }] of Object.entries(PROCESSES)) {
      const service = compose.services[name]
      t.same(service.command, RUN(name), `${name}: runs ${entryOf(name)}`)
      const ports = ((service.ports ?? []) as string[]).map(parsePort)
      t.same(ports.map((p) => [p.published, p.target]), name in SERVICES ? [[port, port]] : [], name in SERVICES ? `${name}: publishes ${port} as ${port}` : `${name}: publishes nothing`)
      const env = envOf(service)
      t.equal(env.PORT, String(port), `${name}: PORT=${port}`)
      t.equal(env.HOST, '0.0.0.0', `${name}: listens on all interfaces in its container`)
      t.equal(env.REDIS_URL, 'redis://redis:6379', `${name}: Redis by its compose name`)
      t.equal(env.ISSUER_URL, `http://localhost:${SERVICES.token}`, `${name}: issuer as the browser sees it`)
      t.equal(env.GATEWAY_RESOURCE_URL, `http://localhost:${SERVICES.gateway}/mcp`, `${name}: resource URL`)
      t.equal(env.REGISTRATION_URL, `http://localhost:${SERVICES.registration}`, `${name}: registration URL`)
      t.equal(env.CONNECTIONS_URL, `http://localhost:${SERVICES.connections}`, `${name}: connections URL`)
      t.same(service.depends_on, { redis: { condition: 'service_healthy' } }, `${name}: waits for a healthy redis`)
      t.same(service.healthcheck.test, ['CMD', 'node', '/app/healthcheck.mjs'], `${name}: healthcheck runs the image's script (slim images have no curl)`)
    }
    t.equal(envOf(compose.services.gateway).JWKS_URL, `http://token:${SERVICES.token}/.well-known/jwks.json`, 'the gateway fetches the JWKS from the token service by its compose name')
    t.equal(envOf(compose.services.connections).WORKER_ENABLED, 'false', 'the connections API leaves the follow-up work to connections-worker')
    const script = read('scripts/healthcheck.mjs')
    t.match(script, /process\.env\.PORT/, 'the healthcheck script targets the container\'s PORT')
    t.match(script, /\/health\/ready/, 'and its /health/ready')
  })
})

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

interface Instruction { op: string, args: string }
function parseDockerfile (text: string): Instruction[] {
  const out: Instruction[] = []
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (current === '' && (line === '' || line.startsWith('#'))) continue
    if (current !== '' && line.startsWith('#')) continue
    if (line.endsWith('\\')) { current += line.slice(0, -1) + ' '; continue }
    current += line
    const m = /^(\S+)\s*(.*)$/s.exec(current)
    if (m) out.push({ op: m[1].toUpperCase(), args: m[2].trim() })
    current = ''
  }
  return out
}

t.test('Dockerfile', async (t) => {
  const instructions = parseDockerfile(read('Dockerfile'))
  const args: Record<string, string> = {}
  for (const i of instructions) {
    if (i.op === 'FROM') break
    const m = /^(\w+)=(.*)$/.exec(i.args)
    if (i.op === 'ARG' && m) args[m[1]] = m[2]
  }
  const expand = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? '')

  const stages: Array<{ image: string, name?: string, body: Instruction[] }> = []
  for (const i of instructions) {
    if (i.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args)
      t.ok(m, `FROM ${i.args} parses`)
      stages.push({ image: expand(m![1]), name: m![2], body: [] })
    } else if (stages.length > 0) {
      stages[stages.length - 1].body.push(i)
    }
  }
  t.ok(stages.length >= 2, 'multi-stage build')
  const names = stages.map((s) => s.name)
  t.ok(names.includes('build'), 'has a build stage')

  const deps = stages.find((s) => s.name === 'build')!
  const depsRuns = deps.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')
  t.match(depsRuns, /node scripts\/assemble-prod\.mjs \/prod/, 'assembles the production folder with the script the prod-folder test runs')
  const pkg = JSON.parse(read('package.json'))
  t.match(expand(depsRuns), `pnpm@${args.PNPM_VERSION}`, 'installs the pinned pnpm')
  t.equal(`pnpm@${args.PNPM_VERSION}`, pkg.packageManager, 'the same pnpm as package.json packageManager')
  t.match(depsRuns, /pnpm install[^\n]*--frozen-lockfile/, 'installs from the lockfile, frozen')

  const prod = stages[stages.length - 1]
  t.match(prod.image, /^node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/, `runs on an exact Node 20 release on Debian bookworm (${prod.image})`)
  t.equal(stages[0].image, prod.image, 'build and runtime on the same base')
  const copies = prod.body.filter((i) => i.op === 'COPY' && /--from=/.test(i.args))
  t.same(copies.map((c) => c.args), ['--from=build /prod /app'], 'the runtime stage holds only the production folder')
  t.match(prod.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n'), /apt-get install -y --no-install-recommends tini/, 'installs Debian\'s tini')
  t.same(JSON.parse(prod.body.find((i) => i.op === 'ENTRYPOINT')!.args), ['/usr/bin/tini', '--'], 'tini is PID 1')
  t.match(prod.body.find((i) => i.op === 'HEALTHCHECK')?.args, /CMD \["node", "\/app\/healthcheck\.mjs"\]/, 'HEALTHCHECK on /health/ready')
  for (const c of copies) t.ok(names.slice(0, -1).includes(/--from=(\S+)/.exec(c.args)![1]), `COPY ${c.args} names an earlier stage`)
  const users = prod.body.filter((i) => i.op === 'USER')
  t.ok(users.length > 0, 'sets USER in the runtime stage')
  const user = users[users.length - 1].args.split(':')[0]
  t.notOk(['root', '0'].includes(user), `runs as non-root user ${user}`)
  t.equal(user, 'node', 'runs as the image\'s node user (uid 1000, as infra/k8s runAsUser)')
  const cmd = JSON.parse(prod.body.filter((i) => i.op === 'CMD').pop()!.args)
  t.same(cmd, RUN('gateway'), 'default command runs the compiled gateway')
  const workdir = prod.body.filter((i) => i.op === 'WORKDIR').pop()!.args
  t.equal(workdir, '/app', 'entries are relative to /app, the production folder')

  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  t.ok(ignored.includes('**/node_modules'), '.dockerignore keeps host node_modules out')
  t.ok(ignored.includes('**/dist'), '.dockerignore keeps host builds out')
  for (const needed of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'services', 'shared', 'services/*/package.json', 'shared/*/src', 'scripts', 'tsconfig.build.json', 'tsconfig.base.json']) {
    t.notOk(ignored.includes(needed), `.dockerignore keeps ${needed}`)
  }
})

// ---------------------------------------------------------------------------------------------
// infra/k8s
// ---------------------------------------------------------------------------------------------

const k8sDir = join(root, 'infra', 'k8s')
function yamlFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [])
}

const docs: Array<{ file: string, doc: Obj }> = []
for (const file of yamlFiles(k8sDir)) {
  for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (d.errors.length > 0) throw new Error(`${relative(root, file)}: ${d.errors[0].message}`)
    const doc = d.toJS()
    if (doc !== null) docs.push({ file: relative(k8sDir, file), doc })
  }
}
const ofKind = (kind: string): Obj[] => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc)
const selects = (selector: Obj, labels: Obj): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v)

t.test('infra/k8s: every document is a named Kubernetes object', async (t) => {
  t.ok(docs.length > 0, 'has manifests')
  for (const { file, doc } of docs) {
    t.ok(typeof doc.apiVersion === 'string' && doc.apiVersion.length > 0, `${file}: apiVersion`)
    t.ok(typeof doc.kind === 'string' && doc.kind.length > 0, `${file}: kind`)
    t.ok(typeof doc.metadata?.name === 'string' && doc.metadata.name.length > 0, `${file}: ${doc.kind} metadata.name`)
  }
  const seen = new Set<string>()
  for (const { doc } of docs) {
    const id = `${doc.kind}/${doc.metadata.name}`
    t.notOk(seen.has(id), `${id} is defined once`)
    seen.add(id)
  }
})

t.test('infra/k8s: kustomization applies every manifest but the Secret example', async (t) => {
  const [kustomization] = ofKind('Kustomization')
  t.ok(kustomization, 'has a kustomization')
  const files = yamlFiles(k8sDir).map((f) => relative(k8sDir, f))
  const expected = files.filter((f) => !['kustomization.yaml', 'secret.example.yaml'].includes(f)).sort()
  t.same([...kustomization.resources].sort(), expected, 'resources are exactly the manifests')
  t.notOk(kustomization.resources.includes('secret.example.yaml'), 'the example Secret is never applied')
})

t.test('infra/k8s: Deployments', async (t) => {
  const deployments = ofKind('Deployment')
  t.same(deployments.map((d) => d.metadata.name).sort(), Object.keys(PROCESSES).sort(), 'one Deployment per service, and one for the worker')
  const services = ofKind('Service')
  const pdbs = ofKind('PodDisruptionBudget')
  const configMaps = ofKind('ConfigMap').map((c) => c.metadata.name)
  const secret = ofKind('Secret')[0]
  t.ok(secret, 'a Secret example exists')
  t.equal(new Set(deployments.map((d) => d.spec.template.spec.containers[0].image)).size, 1, 'all run the one image')

  for (const d of deployments) {
    const name: string = d.metadata.name
    const pod = d.spec.template
    const labels = pod.metadata.labels
    t.test(name, async (t) => {
      t.ok(selects(d.spec.selector.matchLabels, labels), 'selector matches the pod labels')
      t.ok(d.spec.replicas >= (['gateway', 'token'].includes(name) ? 2 : 1), `replicas ${d.spec.replicas}`)
      t.equal(pod.spec.containers.length, 1, 'one container')
      const c = pod.spec.containers[0]
      t.same(c.command, RUN(name), `runs ${entryOf(name)}`)
      const port = PROCESSES[name].port
      const containerPort = c.ports.find((p: Obj) => p.containerPort === port)
      t.ok(containerPort, `container port ${port}`)
      t.same(c.env.find((e: Obj) => e.name === 'PORT'), { name: 'PORT', value: String(port) }, 'PORT matches the container port')
      const isContainerPort = (p: unknown): boolean => p === port || p === containerPort?.name
      t.equal(c.readinessProbe?.httpGet?.path, '/health/ready', 'readiness probe /health/ready')
      t.ok(isContainerPort(c.readinessProbe?.httpGet?.port), 'readiness probe on the container port')
      t.equal(c.livenessProbe?.httpGet?.path, '/health/live', 'liveness probe /health/live')
      t.ok(isContainerPort(c.livenessProbe?.httpGet?.port), 'liveness probe on the container port')
      if (c.startupProbe) t.ok(c.startupProbe.httpGet.path === '/health/live' && isContainerPort(c.startupProbe.httpGet.port), 'startup probe on /health/live')

      t.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, 'cpu and memory requests, memory limit')
      t.equal(pod.spec.securityContext.runAsNonRoot, true, 'runAsNonRoot')
      t.ok(pod.spec.securityContext.runAsUser > 0, 'a numeric non-root uid (the image\'s USER is a name)')
      t.equal(c.securityContext.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem')
      t.equal(c.securityContext.allowPrivilegeEscalation, false, 'no privilege escalation')
      t.same(c.securityContext.capabilities?.drop, ['ALL'], 'drops all capabilities')

      const preStop = c.lifecycle?.preStop?.exec?.command
      t.equal(preStop?.[0], 'sleep', 'preStop sleeps so the ingress drains first')
      t.ok(pod.spec.terminationGracePeriodSeconds > Number(preStop?.[1]), 'grace period outlasts the preStop sleep')

      const volumes = new Set((pod.spec.volumes ?? []).map((v: Obj) => v.name))
      for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `volume ${m.name} is declared`)
      t.ok((c.volumeMounts ?? []).some((m: Obj) => m.mountPath === '/tmp'), 'a writable /tmp beside the read-only root')
      for (const from of c.envFrom ?? []) t.ok(configMaps.includes(from.configMapRef?.name), `envFrom ConfigMap ${from.configMapRef?.name} exists`)
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef
        if (ref) t.ok(ref.name === secret.metadata.name && ref.key in secret.stringData, `env ${e.name} from Secret key ${ref.key}`)
      }

      const svc = services.find((s) => selects(s.spec.selector, labels))
      if (name in SERVICES) {
        t.ok(svc, 'a Service selects these pods')
        t.equal(svc?.metadata.name, name, 'the Service has the Deployment\'s name')
        for (const p of svc?.spec.ports ?? []) t.ok(isContainerPort(p.targetPort ?? p.port), `Service port ${p.port} targets the container port`)
      } else {
        t.notOk(svc, 'no Service: nothing calls the worker')
      }
      const pdb = pdbs.find((p) => selects(p.spec.selector.matchLabels, labels))
      t.ok(pdb, 'a PodDisruptionBudget covers these pods')
      t.ok(pdb?.spec.maxUnavailable !== undefined || pdb?.spec.minAvailable < d.spec.replicas, 'the PDB lets a node drain')
    })
  }

  t.test('token reads its JWK set from the Secret, mounted at SIGNING_KEYS_FILE', async (t) => {
    const token = deployments.find((d) => d.metadata.name === 'token')!.spec.template.spec
    const file = token.containers[0].env.find((e: Obj) => e.name === 'SIGNING_KEYS_FILE')?.value as string
    t.ok(file, 'SIGNING_KEYS_FILE is set')
    const mount = token.containers[0].volumeMounts.find((m: Obj) => m.mountPath === dirname(file))
    t.ok(mount?.readOnly, 'its directory is a read-only mount')
    const volume = token.volumes.find((v: Obj) => v.name === mount.name)
    t.equal(volume.secret.secretName, secret.metadata.name, 'from the Secret')
    const item = volume.secret.items.find((i: Obj) => i.path === basename(file))
    t.ok(item && item.key in secret.stringData, 'the file is a key of the Secret')
  })
})

t.test('infra/k8s: HorizontalPodAutoscalers for gateway and token', async (t) => {
  const hpas = ofKind('HorizontalPodAutoscaler')
  for (const name of ['gateway', 'token']) {
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === name)
    t.ok(hpa, `${name} has an HPA`)
    t.equal(hpa?.spec.scaleTargetRef.kind, 'Deployment', `${name}: targets its Deployment`)
    t.ok(hpa?.spec.minReplicas >= 2 && hpa?.spec.maxReplicas > hpa?.spec.minReplicas, `${name}: scales from at least 2`)
  }
  for (const hpa of hpas) t.ok(ofKind('Deployment').some((d) => d.metadata.name === hpa.spec.scaleTargetRef.name), `${hpa.metadata.name} targets an existing Deployment`)
})

t.test('infra/k8s: Ingress serves everything on one origin', async (t) => {
  const ingresses = ofKind('Ingress')
  const services = ofKind('Service')
  const routes: Array<{ host: string, path: string, pathType: string, service: string, ingress: Obj }> = []
  for (const ing of ingresses) {
    for (const rule of ing.spec.rules) {
      for (const p of rule.http.paths) {
        const backend = p.backend.service
        const svc = services.find((s) => s.metadata.name === backend.name)
        t.ok(svc, `${ing.metadata.name} ${p.path}: Service ${backend.name} exists`)
        t.ok(svc?.spec.ports.some((sp: Obj) => sp.port === backend.port.number || (sp.name && sp.name === backend.port.name)),
          `${ing.metadata.name} ${p.path}: Service ${backend.name} has port ${backend.port.number ?? backend.port.name}`)
        t.ok(['Exact', 'Prefix', 'ImplementationSpecific'].includes(p.pathType), `${p.path}: pathType ${p.pathType}`)
        routes.push({ host: rule.host, path: p.path, pathType: p.pathType, service: backend.name, ingress: ing })
      }
    }
  }
  const hosts = new Set(routes.map((r) => r.host))
  t.equal(hosts.size, 1, 'one host')
  const [host] = hosts

  /** Which route serves `path`, by the Ingress rules: an Exact match first, then the longest Prefix by path elements. */
  const route = (path: string) => {
    const exact = routes.find((r) => r.pathType === 'Exact' && r.path === path)
    if (exact) return exact
    return routes
      .filter((r) => r.pathType === 'Prefix' && (path === r.path || path.startsWith(r.path.replace(/\/$/, '') + '/')))
      .sort((a, b) => b.path.length - a.path.length)[0]
  }
  const expected: Record<string, string> = {
    '/mcp': 'gateway',
    '/.well-known/oauth-protected-resource': 'gateway',
    '/.well-known/oauth-protected-resource/mcp': 'gateway',
    '/authorize': 'token',
    '/token': 'token',
    '/revoke': 'token',
    '/introspect': 'token',
    '/.well-known/jwks.json': 'token',
    '/.well-known/oauth-authorization-server': 'token',
    '/.well-known/openid-configuration': 'token',
    '/signin': 'token',
    '/consent': 'token',
    '/logout': 'token',
    '/register': 'registration',
    '/register/some-client-id': 'registration',
    '/connections': 'connections',
    '/v1/grants': 'connections',
    '/v1/workspaces': 'api',
    '/v1/workspaces/ws_1/recordings': 'api',
    '/docs': 'connections'
  }
  for (const [path, service] of Object.entries(expected)) t.equal(route(path)?.service, service, `${path} -> ${service}`)
  for (const path of ['/static/app.css', '/jwks.json', '/metrics']) t.notOk(route(path), `${path} is not routed (nothing serves it publicly)`)

  const gatewayIngresses = ingresses.filter((i) => routes.some((r) => r.ingress === i && r.service === 'gateway'))
  t.equal(gatewayIngresses.length, 1, 'the gateway has an Ingress of its own')
  const gw = gatewayIngresses[0]
  t.ok(routes.filter((r) => r.ingress === gw).every((r) => r.service === 'gateway'), 'and it routes only to the gateway')
  t.equal(gw.metadata.annotations?.['nginx.ingress.kubernetes.io/upstream-hash-by'], '$mcp_affinity', 'affinity by a key the snippet derives')
  const snippet = String(gw.metadata.annotations?.['nginx.ingress.kubernetes.io/configuration-snippet'] ?? '')
  t.match(snippet, /set \$mcp_affinity \$http_mcp_session_id;/, 'the key is Mcp-Session-Id')
  t.match(snippet, /if \(\$mcp_affinity = ""\) \{ set \$mcp_affinity \$request_id; \}/, 'and the request id when there is none, so initialize and stateless requests spread')
  t.equal(gw.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-buffering'], 'off', 'SSE is not buffered')
  for (const ing of ingresses) t.equal(ing.spec.ingressClassName, 'nginx', `${ing.metadata.name}: ingress-nginx`)

  const config = ofKind('ConfigMap').find((c) => c.metadata.name === 'uspl-config')!.data
  const origin = `https://${host}`
  t.equal(config.ISSUER_URL, origin, 'ISSUER_URL is the public origin')
  t.equal(config.GATEWAY_RESOURCE_URL, `${origin}/mcp`, 'GATEWAY_RESOURCE_URL is the public /mcp')
  t.equal(config.REGISTRATION_URL, origin, 'REGISTRATION_URL is the public origin')
  t.equal(config.CONNECTIONS_URL, origin, 'CONNECTIONS_URL is the public origin')
  t.equal(config.HOST, '0.0.0.0', 'pods listen on all interfaces')
})

t.test('infra/gen-signing-keys.mjs prints a usable ES256 JWK set', async (t) => {
  const out = execFileSync(process.execPath, [join(root, 'infra', 'gen-signing-keys.mjs'), '2'], { encoding: 'utf8' })
  const { keys } = JSON.parse(out) as { keys: Obj[] }
  t.equal(keys.length, 2, 'as many keys as asked')
  t.not(keys[0].kid, keys[1].kid, 'distinct kids')
  for (const jwk of keys) {
    t.match(jwk, { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
    const thumbprint = createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url')
    t.equal(jwk.kid, thumbprint, 'kid is the RFC 7638 thumbprint')
    const privateKey = createPrivateKey({ key: jwk as any, format: 'jwk' })
    const signature = sign('sha256', Buffer.from('x'), { key: privateKey, dsaEncoding: 'ieee-p1363' })
    t.ok(verify('sha256', Buffer.from('x'), { key: createPublicKey(privateKey), dsaEncoding: 'ieee-p1363' }, signature), 'signs and verifies')
  }
})

t.test('infra/k8s: gateway replicas can forward a request to the session owner', async (t) => {
  const gateway = docs.find((d) => d.doc.kind === 'Deployment' && (d.doc.metadata as Obj).name === 'gateway')
  t.ok(gateway, 'a gateway Deployment')
  const container = (((gateway?.doc.spec as Obj).template as Obj).spec as Obj).containers as Obj[]
  const env = (container[0].env as Obj[]).map((e) => e.name as string)
  t.ok(env.includes('POD_IP') && env.includes('REPLICA_URL'), 'POD_IP and REPLICA_URL are set')
  t.ok(env.indexOf('POD_IP') < env.indexOf('REPLICA_URL'), 'POD_IP comes first, so $(POD_IP) expands')
  const replicaUrl = (container[0].env as Obj[]).find((e) => e.name === 'REPLICA_URL')?.value
  t.equal(replicaUrl, 'http://$(POD_IP):3000')
  const jwks = (container[0].env as Obj[]).find((e) => e.name === 'JWKS_URL')?.value
  t.equal(jwks, `http://token:${SERVICES.token}/.well-known/jwks.json`, 'JWKS from the token Service inside the cluster')
  const connections = ofKind('Deployment').find((d) => d.metadata.name === 'connections')!.spec.template.spec.containers[0]
  t.same(connections.env.find((e: Obj) => e.name === 'WORKER_ENABLED'), { name: 'WORKER_ENABLED', value: 'false' }, 'the connections API leaves the follow-up work to connections-worker')
})
