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
  }
  const busyUs = Math.max(1, [...fn.values()].reduce((a, e) => a + e.us, 0))
  const round = (x: number): number => Math.round(x * 10) / 10
  const top = [...fn.values()].sort((a, b) => b.us - a.us).slice(0, opts.top ?? 15)
    .map(({ us, ...e }) => ({ ...e, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) }))
  const byPackage = [...pkg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)
    .map(([p, us]) => ({ package: p, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) }))
  return { durationMs: round(durationUs / 1000), busyPct: round(((durationUs - idleUs) / Math.max(1, durationUs)) * 100), top, byPackage }
}
