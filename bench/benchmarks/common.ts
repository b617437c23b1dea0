import type { Dispatcher } from 'undici'
import { McpSession, type SseStream } from '../lib/mcp.ts'

export type { Benchmark, BenchResult, RunContext } from '../lib/types.ts'
export interface CpuTimeLike { user: number, system: number }

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** An MCP client with a session and its GET stream open. */
export interface Connected { session: McpSession, stream: SseStream }

export async function connect (requests: Dispatcher, streams: Dispatcher, token: string): Promise<Connected> {
  const session = await new McpSession(requests, '/mcp', token).open()
  const stream = await session.stream(streams)
  return { session, stream }
}

/** Resolves with the value, or with `fallback` after `ms` (a bound on waiting for an event that may never come). */
export async function within<T> (p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<T>((resolve) => { timer = setTimeout(() => resolve(fallback), ms) })
  try {
    return await Promise.race([p, t])
  } finally {
    clearTimeout(timer)
  }
}
