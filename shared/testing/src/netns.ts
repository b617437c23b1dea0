/**
 * Network namespaces for topology tests (Linux, root): every host of a deployment in its own `ip netns`,
 * joined by veth pairs to one bridge in the root namespace (which holds the bridge's first address, so the
 * test itself reaches every host), with /etc/netns/<ns>/hosts so the deployment's names (redis, token,
 * gateway…) resolve inside each namespace as a container network's DNS would. Names are unique per run;
 * `cleanup()` (registered as a teardown) kills what it started, deletes the namespaces, the bridge and
 * /etc/netns/<ns>. Commands run through `ip netns exec`, which execs them: a child's pid is the program's.
 */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface NetHost {
  /** the name other hosts resolve it by */
  name: string
  /** its network namespace */
  ns: string
  ip: string
}

function ip (...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A /24 in 10.200.0.0–10.250.255.0 that no route of this machine uses. */
function freeSubnet (): string {
  const routes = ip('-4', 'route', 'show', 'table', 'all')
  for (let i = 0; i < 50; i++) {
    const base = `10.${200 + (randomBytes(1)[0] % 51)}.${randomBytes(1)[0]}`
    if (!routes.includes(`${base}.`)) return base
  }
  throw new Error('no free 10.x.y.0/24 for the test network')
}

export class NetTopology {
  readonly id = randomBytes(3).toString('hex')
  readonly bridge = `ub${this.id}`
  readonly subnet = freeSubnet()
  /** the root namespace's address on the bridge: how hosts reach the test (a published port, a client) */
  readonly gatewayIp = `${this.subnet}.1`
  readonly hosts = new Map<string, NetHost>()
  private readonly procs = new Set<ChildProcess>()
  private nextHost = 2

  private constructor () {}

  /** A bridge and one namespace per name, each host resolving every other by name. */
  static async create (t: Teardown, names: string[], aliases: Record<string, string[]> = {}): Promise<NetTopology> {
    const topo = new NetTopology()
    t.teardown(() => topo.cleanup())
    ip('link', 'add', topo.bridge, 'type', 'bridge')
    ip('addr', 'add', `${topo.gatewayIp}/24`, 'dev', topo.bridge)
    ip('link', 'set', topo.bridge, 'up')
    for (const name of names) topo.addHost(name)
    const lines = ['127.0.0.1 localhost', '::1 localhost', `${topo.gatewayIp} host.test`]
    for (const h of topo.hosts.values()) lines.push(`${h.ip} ${[h.name, ...(aliases[h.name] ?? [])].join(' ')}`)
    for (const h of topo.hosts.values()) {
      mkdirSync(`/etc/netns/${h.ns}`, { recursive: true })
      writeFileSync(`/etc/netns/${h.ns}/hosts`, lines.join('\n') + '\n')
    }
    return topo
  }

  private addHost (name: string): NetHost {
    const n = this.nextHost++
    const host: NetHost = { name, ns: `uspl-${this.id}-${name}`, ip: `${this.subnet}.${n}` }
    const outside = `uv${this.id}${n}`
    const inside = `ui${this.id}${n}`
    ip('netns', 'add', host.ns)
    this.hosts.set(name, host)
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside)
    ip('link', 'set', inside, 'netns', host.ns)
    ip('link', 'set', outside, 'master', this.bridge, 'up')
    ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', inside)
    ip('-n', host.ns, 'link', 'set', inside, 'up')
    ip('-n', host.ns, 'link', 'set', 'lo', 'up')
    ip('-n', host.ns, 'route', 'add', 'default', 'via', this.gatewayIp)
    return host
  }

  host (name: string): NetHost {
    const h = this.hosts.get(name)
    if (!h) throw new Error(`no host ${name} in the topology`)
    return h
  }

  /** Runs `command` inside the host's namespace (killed at cleanup). */
  spawn (name: string, command: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(name).ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    this.procs.add(child)
    child.once('exit', () => this.procs.delete(child))
    return child
  }

  /** A redis-server listening on 0.0.0.0:6379 inside the host's namespace, resolved once it accepts connections. */
  async redis (name: string, dir: string): Promise<ChildProcess> {
    const child = this.spawn(name, 'redis-server', ['--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir])
    let out = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Ready to accept connections')) resolve() })
      child.once('exit', (code) => reject(new Error(`redis-server in ${name} exited with ${code}: ${out.slice(-400)}`)))
    })
    return child
  }

  async cleanup (): Promise<void> {
    await Promise.all([...this.procs].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }))
    for (const h of this.hosts.values()) {
      try { ip('netns', 'del', h.ns) } catch {}
      rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true })
    }
    this.hosts.clear()
    try { ip('link', 'del', this.bridge) } catch {}
  }
}
