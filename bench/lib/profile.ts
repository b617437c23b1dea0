/**
 * Summarises a V8 CPU profile (.cpuprofile, from the inspector's Profiler) as the functions with the most
 * self time, and the same self time grouped by package (a node_modules package, a workspace package, or
 * Node's own code), so a missed target names its bottleneck from measurement.
 */
export interface CpuProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  hitCount?: number
  children?: number[]
}

export interface CpuProfile {
  nodes: CpuProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface HotFunction {
  function: string
  location: string
  /** for native and anonymous frames: the nearest JavaScript caller with a source location */
  caller?: string
  package: string
  selfMs: number
  /** share of the non-idle samples, percent */
  selfPct: number
}

export interface ProfileSummary {
  durationMs: number
  /** share of wall time the process was on the CPU (not idle), percent */
  busyPct: number
  top: HotFunction[]
  byPackage: Array<{ package: string, selfMs: number, selfPct: number }>
  /**
   * Self time charged to the library that caused it: Node's own and native frames count for the nearest
   * calling frame outside Node (so an ECDSA verify counts for the JWT library, a socket write for the
   * HTTP layer that wrote), everything else for its own package.
   */
  byOwner: Array<{ package: string, selfMs: number, selfPct: number }>
}

const SPECIAL = new Set(['(program)', '(garbage collector)', '(idle)', '(root)'])

export function packageOf (url: string, functionName: string, root?: string): string {
  if (!url) return SPECIAL.has(functionName) ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node (core)'
  const path = url.replace(/^file:\/\//, '')
  const nm = path.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const rel = root && path.startsWith(root) ? path.slice(root.length).replace(/^\//, '') : path
  const m = /^(services|shared)\/([^/]+)\//.exec(rel)
  if (m) return m[1] === 'shared' ? `@uspl/${m[2]}` : `@uspl/${m[2]} (service)`
  if (rel.startsWith('bench/')) return 'bench'
  return rel
}

function location (url: string, line: number, root?: string): string {
  if (!url) return ''
  let path = url.replace(/^file:\/\//, '')
  const nm = path.lastIndexOf('/node_modules/')
  if (nm >= 0) path = path.slice(nm + '/node_modules/'.length)
  else if (root && path.startsWith(root)) path = path.slice(root.length).replace(/^\//, '')
  return `${path}:${line + 1}`
}

export function summarizeProfile (profile: CpuProfile, opts: { top?: number, root?: string } = {}): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const callerOf = (id: number): string | undefined => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const f = byId.get(p)?.callFrame
      if (f?.url) return `${f.functionName || '(anonymous)'} ${location(f.url, f.lineNumber, opts.root)}`
    }
    return undefined
  }
  const hits = new Map<number, number>()
  let gapUs = 0
  if (profile.samples && profile.timeDeltas && profile.samples.length > 0) {
    // sample i lasted until sample i+1 was taken
    const s = profile.samples
    const d = profile.timeDeltas
    // a gap far longer than the sampling interval is time the sampler did not run (the process was idle,
    // e.g. waiting in the inspector's own dispatch), not time spent in the frame sampled before it
    const sorted = [...d].sort((a, b) => a - b)
    const interval = Math.max(1, sorted[Math.floor(sorted.length / 2)] ?? 1)
    for (let i = 0; i < s.length; i++) {
      const dt = Math.max(0, i + 1 < d.length ? d[i + 1] : 0)
      if (dt > interval * 20) { gapUs += dt; continue }
      hits.set(s[i], (hits.get(s[i]) ?? 0) + dt)
    }
  } else {
    const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1
    const per = (profile.endTime - profile.startTime) / total
    for (const n of profile.nodes) hits.set(n.id, (n.hitCount ?? 0) * per)
  }
  const durationUs = profile.endTime - profile.startTime
  let idleUs = gapUs
  const fn = new Map<string, HotFunction & { us: number }>()
  const pkg = new Map<string, number>()
  const owner = new Map<string, number>()
  const ownerCache = new Map<number, string>()
  const isNodeOwn = (p: string): boolean => p === 'node (core)' || p === '(native)'
  const ownerOf = (id: number): string => {
    const cached = ownerCache.get(id)
    if (cached !== undefined) return cached
    const f = byId.get(id)?.callFrame
    const own = f ? packageOf(f.url, f.functionName, opts.root) : '(native)'
    let result = own
    if (isNodeOwn(own)) {
      const p = parent.get(id)
      const up = p === undefined ? own : ownerOf(p)
      result = up === '(root)' || SPECIAL.has(up) ? own : up
    }
    ownerCache.set(id, result)
    return result
  }
  for (const [id, us] of hits) {
    const node = byId.get(id)
    if (!node || us === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') { idleUs += us; continue }
    const name = functionName || '(anonymous)'
    const p = packageOf(url, name, opts.root)
    const caller = url ? undefined : callerOf(id)
    const key = `${name}|${url}|${lineNumber}|${caller ?? ''}`
    const entry = fn.get(key) ?? { function: name, location: location(url, lineNumber, opts.root), caller, package: p, selfMs: 0, selfPct: 0, us: 0 }
    entry.us += us
    fn.set(key, entry)
    pkg.set(p, (pkg.get(p) ?? 0) + us)
    const o = ownerOf(id)
    owner.set(o, (owner.get(o) ?? 0) + us)
  }
  const busyUs = Math.max(1, [...fn.values()].reduce((a, e) => a + e.us, 0))
  const round = (x: number): number => Math.round(x * 10) / 10
  const top = [...fn.values()].sort((a, b) => b.us - a.us).slice(0, opts.top ?? 15)
    .map(({ us, ...e }) => ({ ...e, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) }))
  const byPackage = [...pkg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)
    .map(([p, us]) => ({ package: p, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) }))
  const byOwner = [...owner.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)
    .map(([p, us]) => ({ package: p, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) }))
  return { durationMs: round(durationUs / 1000), busyPct: round(((durationUs - idleUs) / Math.max(1, durationUs)) * 100), top, byPackage, byOwner }
}

/** A V8 sampling heap profile (HeapProfiler.getSamplingProfile): a tree of allocation sites. */
export interface HeapProfileNode {
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  selfSize: number
  id: number
  children: HeapProfileNode[]
}

export interface HeapSummary {
  /** live bytes the sampled allocations stand for */
  totalKb: number
  top: Array<{ function: string, location: string, package: string, kb: number, pct: number }>
  /** live bytes by the library that allocated them (Node's own frames charged to their nearest caller outside Node) */
  byOwner: Array<{ package: string, kb: number, pct: number }>
}

/** Summarises live memory by allocation site (objects still alive when the profile was taken). */
export function summarizeHeapProfile (head: HeapProfileNode, opts: { top?: number, root?: string } = {}): HeapSummary {
  const fn = new Map<string, { function: string, location: string, package: string, bytes: number }>()
  const owner = new Map<string, number>()
  let total = 0
  const walk = (node: HeapProfileNode, inherited: string): void => {
    const { functionName, url, lineNumber } = node.callFrame
    const own = packageOf(url, functionName, opts.root)
    const o = own === 'node (core)' || own === '(native)' || own === '(root)' ? inherited : own
    if (node.selfSize > 0) {
      total += node.selfSize
      const name = functionName || '(anonymous)'
      const key = `${name}|${url}|${lineNumber}`
      const e = fn.get(key) ?? { function: name, location: location(url, lineNumber, opts.root), package: own, bytes: 0 }
      e.bytes += node.selfSize
      fn.set(key, e)
      owner.set(o, (owner.get(o) ?? 0) + node.selfSize)
    }
    for (const c of node.children) walk(c, o)
  }
  walk(head, 'node (core)')
  const r = (x: number): number => Math.round(x * 10) / 10
  return {
    totalKb: r(total / 1024),
    top: [...fn.values()].sort((a, b) => b.bytes - a.bytes).slice(0, opts.top ?? 12)
      .map((e) => ({ function: e.function, location: e.location, package: e.package, kb: r(e.bytes / 1024), pct: r((e.bytes / Math.max(1, total)) * 100) })),
    byOwner: [...owner.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([p, b]) => ({ package: p, kb: r(b / 1024), pct: r((b / Math.max(1, total)) * 100) }))
  }
}
