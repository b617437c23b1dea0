/**
 * 1. MCP methods, gateway vs bare: every method a client sends, through the real gateway (ES256 JWTs
 * verified against a JWKS, the denylist read, the session's grant binding, the role read of the tools)
 * against a bare SDK server doing the same work with no authentication (the gateway's own nine tools for
 * a fixed user), side by side in one run, alternating rounds. Sessions (2025-06-18): initialize (a
 * session's whole life: initialize, notifications/initialized, DELETE), tools/list, tools/call, ping, a
 * notification; stateless (2026-07-28): tools/call against a bare v2 SDK stateless server. Target per
 * method: >= 0.9 of bare at equal client load, and per server CPU-second.
 */
import { LocalIssuer } from '../lib/jwt.ts'
import { McpSession, requestPool, rpc, toolFailed, type RpcReply } from '../lib/mcp.ts'
import { closedLoop, type LoadResult } from '../lib/load.ts'
import { seedWorkspace, seedGrants } from '../lib/seed.ts'
import { ProcessGroup, gatewayOptions, bareOptions, bareStatelessOptions, RESOURCE, type ServerProcess } from '../lib/services.ts'
import { TOOL, toolArgs } from '../lib/tool.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { ratio, round } from '../lib/stats.ts'
import type { Benchmark, CpuTimeLike } from './common.ts'
import { wrk } from '../lib/wrk.ts'

const SIZES = {
  tiny: { connections: 8, durationMs: 400, warmupMs: 100, rounds: 1, profileMs: 400 },
  full: { connections: 32, durationMs: 4000, warmupMs: 1000, rounds: 3, profileMs: 4000 }
}

const TARGET = 0.9
const MODERN = '2026-07-28'

/** What one worker holds: its session (for the 2025 methods) and its token. */
interface Worker { session: McpSession | null, token: string | undefined }

interface Method {
  key: string
  label: string
  /** served statelessly (2026-07-28), against the bare v2 server */
  stateless: boolean
  op: (w: Worker, args: Record<string, string>) => Promise<true | string>
}

function outcome (r: RpcReply, expectResult = true): true | string {
  if (r.status >= 300) return `http ${r.status}`
  if (expectResult && !r.message?.result) return `no result (${r.message?.error?.message ?? 'none'})`
  return true
}

function modernCall (w: Worker, pool: ReturnType<typeof requestPool>, args: Record<string, string>): Promise<RpcReply> {
  const headers: Record<string, string> = { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': TOOL.name }
  if (w.token) headers.authorization = `Bearer ${w.token}`
  return rpc(pool, '/mcp', {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: TOOL.name, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'uspl-bench', version: '1.0.0' } } }
  }, headers)
}

export const mcpMethods: Benchmark = {
  name: 'mcp-methods',
  title: '1. MCP methods, gateway vs bare',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const group = new ProcessGroup()
    const issuer = new LocalIssuer(RESOURCE)
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, s.connections, { resource: RESOURCE })
      await issuer.start()
      const tokens = grants.map((g) => issuer.mint({ sub: g.userId, clientId: g.clientId, grantId: g.grantId }))
      const bareEnv = { BARE_USER_ID: ws.userId }
      const [gateway, bare, bareStateless] = await Promise.all([
        group.start(gatewayOptions(ctx, issuer.url)),
        group.start(bareOptions(ctx, bareEnv)),
        group.start(bareStatelessOptions(ctx, bareEnv))
      ])
      const args = toolArgs(ws.workspaceId, ws.recordingId)
      let pool: ReturnType<typeof requestPool> | null = null
      const methods: Method[] = [
        {
          key: 'initialize',
          label: 'initialize: a new session (initialize, notifications/initialized, DELETE)',
          stateless: false,
          op: async (w) => {
            const session = await new McpSession(pool!, '/mcp', w.token).open()
            const status = await session.close()
            return status === 200 ? true : `delete ${status}`
          }
        },
        { key: 'tools/list', label: 'tools/list (nine tools)', stateless: false, op: async (w) => { const r = await w.session!.request('tools/list'); return outcome(r) === true && (r.message?.result?.tools as unknown[]).length === 9 ? true : 'bad list' } },
        { key: 'tools/call', label: `tools/call ${TOOL.name}`, stateless: false, op: async (w) => { const r = await w.session!.callTool(TOOL.name, args); return toolFailed(r) ? `http ${r.status}${r.message?.result?.isError === true ? ' isError' : ''}` : true } },
        { key: 'ping', label: 'ping', stateless: false, op: async (w) => outcome(await w.session!.request('ping')) },
        {
          key: 'notification',
          label: 'a notification (notifications/cancelled for no request: 202)',
          stateless: false,
          op: async (w) => {
            const r = await rpc(pool!, '/mcp', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 0, reason: 'bench' } }, w.session!.headers())
            return r.status === 202 ? true : `http ${r.status}`
          }
        },
        { key: 'stateless tools/call', label: `2026-07-28 stateless tools/call ${TOOL.name}`, stateless: true, op: async (w) => { const r = await modernCall(w, pool!, args); return toolFailed(r) ? `http ${r.status}${r.message?.result?.isError === true ? ' isError' : ''}` : true } }
      ]

      interface Side { load: LoadResult & { clientCpuPct: number }, cpuUsPerOp: number, cpuPct: number }
      const measure = async (server: ServerProcess, auth: boolean, method: Method, durationMs: number, warmupMs: number): Promise<Side> => {
        pool = requestPool(server.url, s.connections)
        try {
          const workers: Worker[] = await Promise.all(Array.from({ length: s.connections }, async (_, i) => {
            const token = auth ? tokens[i] : undefined
            const needsSession = !method.stateless && method.key !== 'initialize'
            return { token, session: needsSession ? await new McpSession(pool!, '/mcp', token).open() : null }
          }))
          const probe = await method.op(workers[0], args)
          if (probe !== true) throw new Error(`${server.name}: ${method.key} failed: ${probe}`)
          let cpu0: CpuTimeLike = { user: 0, system: 0 }
          let cpu1: CpuTimeLike = { user: 0, system: 0 }
          const load = await closedLoop({
            connections: s.connections,
            durationMs,
            warmupMs,
            op: async (i) => method.op(workers[i], args),
            onStart: async () => { cpu0 = await server.cpu() },
            onEnd: async () => { cpu1 = await server.cpu() }
          })
          const cpuUs = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
          await Promise.all(workers.map((w) => w.session?.close().catch(() => 0)))
          return { load, cpuUsPerOp: round(cpuUs / Math.max(1, load.ok)), cpuPct: round((cpuUs / 1000 / durationMs) * 100) }
        } finally {
          await pool.close()
          pool = null
        }
      }

      const median = (xs: number[]): number => { const v = [...xs].sort((a, b) => a - b); const m = Math.floor(v.length / 2); return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2 }
      const perMethod: Record<string, unknown> = {}
      const missed: Method[] = []
      for (const method of methods) {
        const baseline = method.stateless ? bareStateless : bare
        // a round that is not counted: both processes compile this method's path before it is measured
        ctx.log(`${method.key}: warm-up (not counted)`)
        await measure(baseline, false, method, s.warmupMs * 2, 0)
        await measure(gateway, true, method, s.warmupMs * 2, 0)
        const rounds: Array<{ bare: Side, gateway: Side }> = []
        for (let r = 0; r < s.rounds; r++) {
          const b = await measure(baseline, false, method, s.durationMs, s.warmupMs)
          const g = await measure(gateway, true, method, s.durationMs, s.warmupMs)
          ctx.log(`${method.key} round ${r + 1}/${s.rounds}: bare ${b.load.rps}/s (${b.cpuUsPerOp} µs CPU), gateway ${g.load.rps}/s (${g.cpuUsPerOp} µs CPU)`)
          rounds.push({ bare: b, gateway: g })
        }
        const mid = (f: (x: { bare: Side, gateway: Side }) => number): number => round(median(rounds.map(f)), 3)
        // each round pairs the two servers back to back; the median of the paired ratios resists a disturbed round
        const roundRatios = rounds.map((x) => ratio(x.gateway.load.rps, x.bare.load.rps))
        const tput = round(median(roundRatios), 3)
        const gCpu = mid((x) => x.gateway.cpuUsPerOp)
        const bCpu = mid((x) => x.bare.cpuUsPerOp)
        const capacity = ratio(bCpu, gCpu)
        const gP50 = mid((x) => x.gateway.load.latency.p50)
        const bP50 = mid((x) => x.bare.load.latency.p50)
        result.metrics.push(
          { name: `${method.key}: per second at equal load`, value: mid((x) => x.gateway.load.rps), baseline: mid((x) => x.bare.load.rps), ratio: tput, unit: '/s', note: `${method.label}; median of per-round ratios (${roundRatios.join(', ')}); ${s.connections} connections, ${s.durationMs / 1000} s × ${s.rounds} rounds` },
          { name: `${method.key}: server CPU per operation`, value: gCpu, baseline: bCpu, ratio: capacity, unit: 'µs', note: `ratio: bare / gateway (operations per server CPU-second, gateway over bare); server CPU use ${mid((x) => x.gateway.cpuPct)} % vs ${mid((x) => x.bare.cpuPct)} %` },
          { name: `${method.key}: latency p50`, value: gP50, baseline: bP50, ratio: ratio(gP50, bP50), unit: 'ms', note: `p99 ${mid((x) => x.gateway.load.latency.p99)} ms vs ${mid((x) => x.bare.load.latency.p99)} ms` }
        )
        result.targets.push(
          { name: `${method.key}: gateway/bare at equal client load`, target: `>= ${TARGET}`, value: tput, unit: '', met: tput >= TARGET },
          { name: `${method.key}: gateway/bare per server CPU-second`, target: `>= ${TARGET}`, value: capacity, unit: '', met: capacity >= TARGET }
        )
        if (tput < TARGET || capacity < TARGET) missed.push(method)
        const errors = rounds.flatMap((x) => [x.bare, x.gateway]).reduce((a, x) => a + (x.load.requests - x.load.ok), 0)
        if (errors > 0) result.notes.push(`${method.key}: ${errors} operations failed in the measured windows: ${JSON.stringify(rounds.map((x) => ({ bare: x.bare.load.outcomes, gateway: x.gateway.load.outcomes })))}`)
        perMethod[method.key] = rounds
      }
      // the same comparison from outside the project: wrk (another HTTP client, written in C) on one session
      // per server, same request (each with its own JSON-RPC id, as a client must send), alternating; its ratio
      // should agree with ours within noise
      const external: Array<{ method: string, bareRps: number, gatewayRps: number, ratio: number, cpuRatio: number, errors: number }> = []
      for (const method of methods.filter((m) => m.key === 'ping' || m.key === 'tools/call')) {
        const body = method.key === 'ping' ? { jsonrpc: '2.0', id: 1, method: 'ping' } : { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: TOOL.name, arguments: args } }
        const sideRps = async (server: ServerProcess, token: string | undefined): Promise<{ rps: number, cpuUsPerOp: number, errors: number }> => {
          pool = requestPool(server.url, 1)
          try {
            const session = await new McpSession(pool, '/mcp', token).open()
            const cpu0 = await server.cpu()
            const run = await wrk({ url: `${server.url}/mcp`, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...session.headers() }, body: JSON.stringify(body), connections: s.connections, durationS: Math.max(1, s.durationMs / 1000), uniqueIds: true })
            const cpu1 = await server.cpu()
            await session.close()
            return { rps: run.rps, cpuUsPerOp: ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / Math.max(1, run.requests), errors: run.errors }
          } finally {
            await pool.close()
            pool = null
          }
        }
        const pairs: Array<{ b: number, g: number, bCpu: number, gCpu: number, errors: number }> = []
        for (let r = 0; r < s.rounds; r++) {
          const b = await sideRps(bare, undefined)
          const g = await sideRps(gateway, tokens[0])
          pairs.push({ b: b.rps, g: g.rps, bCpu: b.cpuUsPerOp, gCpu: g.cpuUsPerOp, errors: b.errors + g.errors })
        }
        const extRatio = round(median(pairs.map((p) => ratio(p.g, p.b))), 3)
        external.push({ method: method.key, bareRps: round(median(pairs.map((p) => p.b))), gatewayRps: round(median(pairs.map((p) => p.g))), ratio: extRatio, cpuRatio: round(median(pairs.map((p) => ratio(p.bCpu, p.gCpu))), 3), errors: pairs.reduce((a, p) => a + p.errors, 0) })
        const ours = result.targets.find((x) => x.name === `${method.key}: gateway/bare at equal client load`)?.value ?? NaN
        const extCpu = round(median(pairs.map((p) => ratio(p.bCpu, p.gCpu))), 3)
        const oursCpu = result.targets.find((x) => x.name === `${method.key}: gateway/bare per server CPU-second`)?.value ?? NaN
        result.metrics.push({ name: `${method.key}: from outside (wrk), operations per server CPU-second`, value: round(1e6 / median(pairs.map((p) => p.gCpu))), baseline: round(1e6 / median(pairs.map((p) => p.bCpu))), ratio: extCpu, unit: '/s', note: `server CPU time around each wrk run / its requests; this benchmark's own ratio: ${oursCpu}` })
        result.metrics.push({ name: `${method.key}: measured from outside (wrk)`, value: round(median(pairs.map((p) => p.g))), baseline: round(median(pairs.map((p) => p.b))), ratio: extRatio, unit: '/s', note: `wrk, ${s.connections} connections on one session per server, a new JSON-RPC id per request, ${s.rounds} alternating rounds; this benchmark's own ratio: ${ours}; non-2xx or socket errors: ${pairs.reduce((a, p) => a + p.errors, 0)}` })
      }

      result.notes.push(`Servers and the load generator are separate processes on the same machine. The bare servers run the gateway's own nine tools for a fixed user with no authentication: the v1 SDK's McpServer + StreamableHTTPServerTransport per session (the SDK's documented pattern) for the 2025 methods, the v2 SDK's createMcpHandler for 2026-07-28. The gateway verifies an ES256 JWT (its JWKS fetched ${issuer.fetches} time(s)), reads the denylist in Redis and binds the session to the grant on every request. "At equal load" is the throughput ratio with the same ${s.connections} client connections; "per CPU-second" is what a saturated core of each would serve (the inverse of CPU per operation), the capacity a deployment buys.`)
      result.details = { size: s, rounds: perMethod, external, jwksFetches: issuer.fetches }

      if (shouldProfile(ctx, result)) {
        for (const method of (ctx.profile === 'always' ? methods : missed).slice(0, 3)) {
          const baseline = method.stateless ? bareStateless : bare
          let gOps = 0
          let bOps = 0
          ctx.log(`profiling ${method.key} on the gateway and its baseline`)
          await profileDuring(ctx, result, [gateway], `${method.key}: ${s.connections} connections for ${s.profileMs / 1000} s`, async () => { gOps = (await measure(gateway, true, method, s.profileMs, 0)).load.requests })
          await profileDuring(ctx, result, [baseline], `${method.key}: the baseline under the same load`, async () => { bOps = (await measure(baseline, false, method, s.profileMs, 0)).load.requests })
          const [gp, bp] = result.profiles.slice(-2)
          const perOp = (p: typeof gp, ops: number): Map<string, number> => new Map(p.summary.byOwner.map((o) => [o.package, (o.selfMs * 1000) / Math.max(1, ops)]))
          const g = perOp(gp, gOps)
          const b = perOp(bp, bOps)
          const diff = [...new Set([...g.keys(), ...b.keys()])]
            .map((k) => ({ package: k, gatewayUs: round(g.get(k) ?? 0), bareUs: round(b.get(k) ?? 0), extraUs: round((g.get(k) ?? 0) - (b.get(k) ?? 0)) }))
            .sort((x, y) => y.extraUs - x.extraUs)
          result.notes.push(`${method.key}: CPU per operation by the library that caused it (profiled, µs, gateway − bare): ` +
            diff.filter((d) => Math.abs(d.extraUs) >= 1).slice(0, 10).map((d) => `${d.package} ${d.extraUs > 0 ? '+' : ''}${d.extraUs}`).join(', ') + '.')
        }
      }
    } finally {
      await group.stopAll()
      await issuer.stop()
    }
  }
}
