/**
 * Server processes for the benchmarks: each service runs from its compiled entry (services/<name>/dist/server.js)
 * in its own Node process, with the agent preloaded so the harness can read its memory, CPU time and CPU
 * profile over IPC. Processes listen on a free port (PORT=0) and report it; readiness is /health/ready.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { request } from 'undici'
import type { ProfileSummary, HeapSummary } from './profile.ts'

/** production mode needs a key-encryption key for the signing keys in Redis: one per bench run, shared by its processes */
export const BENCH_KEK = randomBytes(32).toString('base64')

export const ROOT = join(import.meta.dirname, '..', '..')
const AGENT = join(import.meta.dirname, 'agent.ts')

export interface StartOptions {
  /** a label for errors and logs */
  name: string
  /** the entry module, absolute */
  entry: string
  env: Record<string, string>
  /** expose gc() for memory readings */
  exposeGc?: boolean
  /** wait for this path to answer 200 before resolving (default /health/ready; null: only listening) */
  readyPath?: string | null
  startTimeoutMs?: number
}

/** Processes that exited while their benchmark still ran (not stopped by it): what a failed run reports. */
export const unexpectedExits: string[] = []

/** Every server process started and not yet exited, whichever benchmark started it. */
const live = new Set<ServerProcess>()
/** bumped by stopEveryProcess: a start begun before it (by a benchmark that overran) does not outlive it */
let epoch = 0

/** Stops every server process still running (a benchmark that overran its deadline leaves its own); how many. */
export async function stopEveryProcess (): Promise<number> {
  epoch++
  const procs = [...live]
  await Promise.all(procs.map(async (p) => { await p.stop() }))
  return procs.length
}

export interface CpuTime { user: number, system: number }
export interface MemoryReading { rss: number, heapTotal: number, heapUsed: number, external: number, arrayBuffers: number }

export class ServerProcess {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private output = ''
  private stopping = false
  readonly exited: Promise<number | null>
  port = 0

  private constructor (readonly name: string, readonly child: ChildProcess) {
    const keep = (chunk: Buffer): void => { this.output = (this.output + chunk.toString()).slice(-8000) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('message', (msg: { type: string, id?: number, result?: unknown, error?: string, port?: number }) => {
      if (msg.type === 'reply' && msg.id !== undefined) {
        const p = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        if (msg.error !== undefined) p?.reject(new Error(`${name}: ${msg.error}`))
        else p?.resolve(msg.result)
      }
    })
    live.add(this)
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(this)
        if (!this.stopping) unexpectedExits.push(`${name} exited (${signal ?? code}) while its benchmark ran; its last lines:\n${this.tail}`)
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code})`))
        this.pending.clear()
        resolve(code)
      })
    })
  }

  get url (): string { return `http://127.0.0.1:${this.port}` }
  get pid (): number { return this.child.pid ?? 0 }
  /** the last lines the process printed, for error messages */
  get tail (): string { return this.output.trim().split('\n').slice(-15).join('\n') }

  static async start (opts: StartOptions): Promise<ServerProcess> {
    // production's code (the compiled packages, --conditions=compiled); tsx only loads the agent (a .ts file)
    const startedIn = epoch
    const execArgv = ['--conditions=compiled', '--import', 'tsx', '--import', AGENT]
    if (opts.exposeGc) execArgv.push('--expose-gc')
    const child = fork(opts.entry, [], {
      cwd: ROOT,
      execArgv,
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'production', SIGNING_KEYS_KEK: BENCH_KEK, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    const proc = new ServerProcess(opts.name, child)
    const timeoutMs = opts.startTimeoutMs ?? 30000
    const listening = new Promise<number>((resolve, reject) => {
      const onMessage = (msg: { type: string, port?: number }): void => {
        if (msg.type === 'listening' && msg.port) { child.off('message', onMessage); resolve(msg.port) }
      }
      child.on('message', onMessage)
      void proc.exited.then((code) => reject(new Error(`${opts.name} exited (${code}) before listening:\n${proc.tail}`)))
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${opts.name} did not start within ${timeoutMs} ms:\n${proc.tail}`)), timeoutMs)
    })
    try {
      proc.port = await Promise.race([listening, timeout])
      const readyPath = opts.readyPath === undefined ? '/health/ready' : opts.readyPath
      if (readyPath) await Promise.race([proc.waitFor(readyPath), timeout])
      if (startedIn !== epoch) throw new Error(`${opts.name}: its benchmark was stopped while it started`)
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    } finally {
      clearTimeout(timer)
    }
    return proc
  }

  /** Polls `path` until it answers 200 (readiness is state observed over HTTP: there is no event to wait on). */
  private async waitFor (path: string): Promise<void> {
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited:\n${this.tail}`)
      try {
        const res = await request(`${this.url}${path}`)
        await res.body.dump()
        if (res.statusCode === 200) return
      } catch { /* not yet */ }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  call<T> (cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ type: 'request', id, cmd, args })
    })
  }

  /** process.memoryUsage() after two full GCs (needs exposeGc) */
  memory (): Promise<MemoryReading> { return this.call('mem') }
  cpu (): Promise<CpuTime> { return this.call('cpu') }
  startProfile (): Promise<void> { return this.call('profile-start') }
  stopProfile (file: string): Promise<ProfileSummary> { return this.call('profile-stop', { file, root: ROOT }) }
  /** sampling heap profiler: what the allocations made from now on still hold at `stopHeapProfile` */
  startHeapProfile (): Promise<void> { return this.call('heap-start') }
  stopHeapProfile (file: string): Promise<HeapSummary> { return this.call('heap-stop', { file, root: ROOT }) }

  /** A deliberate kill (a fault the benchmark injects): not reported as an unexpected exit. */
  kill (signal: NodeJS.Signals): void {
    this.stopping = true
    this.child.kill(signal)
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.stopping = true
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await once(this.child, 'exit').catch(() => {})
    clearTimeout(timer)
  }
}

/** Runs `fn` with the processes, stopping every one of them afterwards whatever happens. */
export class ProcessGroup {
  private readonly procs: ServerProcess[] = []
  async start (opts: StartOptions): Promise<ServerProcess> {
    const p = await ServerProcess.start(opts)
    this.procs.push(p)
    return p
  }

  async stopAll (): Promise<void> {
    await Promise.all(this.procs.splice(0).map((p) => p.stop()))
  }
}

export type Service = 'gateway' | 'token' | 'registration' | 'connections' | 'api'

/** The compiled entry production runs (`npm run bench` builds first); the worker is the connections package's. */
export function serviceEntry (service: Service | 'connections-worker'): string {
  return service === 'connections-worker'
    ? join(ROOT, 'services', 'connections', 'dist', 'worker.js')
    : join(ROOT, 'services', service, 'dist', 'server.js')
}
