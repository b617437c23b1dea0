/**
 * Preloaded (`--import`) into every server process the benchmarks start. Over the IPC channel it reports
 * the port the process listens on and answers the harness: force GC and read memory, read CPU time, and
 * start/stop the V8 CPU profiler (the inspector's Profiler domain) around exactly the measured window.
 * It adds nothing to a request's path; it only runs when the harness asks.
 */
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { summarizeProfile, summarizeHeapProfile, type CpuProfile, type HeapProfileNode } from './profile.ts'

interface Request { type: 'request', id: number, cmd: string, args?: Record<string, unknown> }

if (typeof process.send === 'function') {
  const send = (msg: unknown): void => { process.send?.(msg) }
  const listen = net.Server.prototype.listen
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    this.once('listening', () => {
      const address = this.address()
      if (address && typeof address === 'object') send({ type: 'listening', port: address.port, host: address.address })
    })
    return (listen as (...a: unknown[]) => net.Server).apply(this, args)
  } as typeof listen

  let session: Session | null = null
  let heapSession: Session | null = null
  const gc = (): void => {
    const g = (globalThis as { gc?: () => void }).gc
    if (!g) throw new Error('start the process with --expose-gc')
    g(); g()
  }

  const commands: Record<string, (args: Record<string, unknown>) => Promise<unknown> | unknown> = {
    'heap-start': async (args) => {
      heapSession = new Session()
      heapSession.connect()
      await heapSession.post('HeapProfiler.enable')
      await heapSession.post('HeapProfiler.startSampling', { samplingInterval: Number(args.intervalBytes ?? 16384) })
      return true
    },
    /** live allocations by site, after full GCs (what is still retained) */
    'heap-stop': async (args) => {
      if (!heapSession) throw new Error('heap profiler not started')
      gc()
      const { profile } = await heapSession.post('HeapProfiler.getSamplingProfile') as unknown as { profile: { head: HeapProfileNode } }
      await heapSession.post('HeapProfiler.stopSampling')
      await heapSession.post('HeapProfiler.disable')
      heapSession.disconnect()
      heapSession = null
      if (typeof args.file === 'string') writeFileSync(args.file, JSON.stringify(profile))
      return summarizeHeapProfile(profile.head, { root: typeof args.root === 'string' ? args.root : undefined })
    },
    mem: () => { gc(); return process.memoryUsage() },
    cpu: () => process.cpuUsage(),
    'profile-start': async (args) => {
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: Number(args.intervalUs ?? 250) })
      await session.post('Profiler.start')
      return true
    },
    'profile-stop': async (args) => {
      if (!session) throw new Error('profiler not started')
      const { profile } = await session.post('Profiler.stop') as { profile: CpuProfile }
      await session.post('Profiler.disable')
      session.disconnect()
      session = null
      if (typeof args.file === 'string') writeFileSync(args.file, JSON.stringify(profile))
      return summarizeProfile(profile, { top: Number(args.top ?? 15), root: typeof args.root === 'string' ? args.root : undefined })
    }
  }

  process.on('message', (msg: Request) => {
    if (!msg || msg.type !== 'request') return
    void (async () => {
      try {
        const handler = commands[msg.cmd]
        if (!handler) throw new Error(`unknown command ${msg.cmd}`)
        send({ type: 'reply', id: msg.id, result: await handler(msg.args ?? {}) })
      } catch (err) {
        send({ type: 'reply', id: msg.id, error: (err as Error).message })
      }
    })()
  })
  // the channel must not keep a server alive after it closed
  process.channel?.unref()
}
