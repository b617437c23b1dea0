/**
 * wrk (Debian's package), the outside client of the MCP-methods benchmark: one POST, the same for every
 * request, over N keep-alive connections for a fixed time. Its Lua script is written to a temporary file.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface WrkOptions {
  url: string
  headers: Record<string, string>
  body: string
  connections: number
  durationS: number
  /** give every request its own JSON-RPC id (the body's `"id":1,` counts up), as a real client does */
  uniqueIds?: boolean
}

export interface WrkResult {
  rps: number
  requests: number
  /** non-2xx answers and socket errors */
  errors: number
}

const lua = (s: string): string => JSON.stringify(s)

export async function wrk (opts: WrkOptions): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'uspl-wrk-'))
  const script = join(dir, 'post.lua')
  writeFileSync(script, [
    'wrk.method = "POST"',
    `wrk.body = ${lua(opts.body)}`,
    ...Object.entries(opts.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    ...(opts.uniqueIds
      ? ['local n = 0', 'request = function() n = n + 1; return wrk.format(nil, nil, nil, (string.gsub(wrk.body, \'"id":1,\', \'"id":\' .. n .. \',\', 1))) end']
      : [])
  ].join('\n'))
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', ['-t1', `-c${opts.connections}`, `-d${opts.durationS}s`, '-s', script, opts.url], { stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      child.stdout.on('data', (d: Buffer) => { text += d.toString() })
      child.stderr.on('data', (d: Buffer) => { text += d.toString() })
      child.once('error', (err) => reject(new Error(`wrk could not run (Debian: apt-get install wrk): ${err.message}`)))
      child.once('exit', (code) => code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text.slice(-400)}`)))
    })
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN)
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
    const socketErrors = socket ? socket.slice(1).reduce((a, x) => a + Number(x), 0) : 0
    if (!Number.isFinite(rps)) throw new Error(`wrk printed no rate: ${out.slice(-400)}`)
    return { rps, requests, errors: non2xx + socketErrors }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
