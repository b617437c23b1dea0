/** The run's JSON result and its Markdown table. */
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchResult, Metric, ProfileRecord } from './types.ts'

export interface RunResult {
  schema: 'uspl-bench/1'
  startedAt: string
  finishedAt: string
  size: string
  command: string
  machine: { cpus: number, cpuModel: string, memoryGb: number, node: string, platform: string, redis: string, loadAverage: { start: number[], end: number[] } }
  benchmarks: BenchResult[]
}

const fmt = (x: number | undefined, unit = ''): string => {
  if (x === undefined) return ''
  if (!Number.isFinite(x)) return String(x)
  const abs = Math.abs(x)
  const s = abs >= 1000 ? Math.round(x).toLocaleString('en-US') : abs >= 100 ? x.toFixed(0) : abs >= 10 ? x.toFixed(1) : abs >= 1 ? x.toFixed(2) : x.toFixed(3)
  return unit ? `${s} ${unit}` : s
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function metricRow (m: Metric): string {
  return `| ${cell(m.name)} | ${fmt(m.value, m.unit)} | ${m.baseline === undefined ? '' : fmt(m.baseline, m.unit)} | ${m.ratio === undefined ? '' : fmt(m.ratio)} | ${cell(m.note ?? '')} |`
}

function profileSection (p: ProfileRecord): string[] {
  const lines = [
    `**CPU profile: ${p.process}** (${p.load}; ${fmt(p.summary.durationMs)} ms sampled, busy ${fmt(p.summary.busyPct)} %; file \`${p.file}\`)`,
    '',
    '| self % | self ms | function | location (or, for native code, its JS caller) | package |',
    '| ---: | ---: | --- | --- | --- |',
    ...p.summary.top.map((f) => `| ${fmt(f.selfPct)} | ${fmt(f.selfMs)} | ${cell(f.function)} | ${cell(f.location || (f.caller ? `called by ${f.caller}` : ''))} | ${cell(f.package)} |`),
    '',
    'Self time by package: ' + p.summary.byPackage.map((b) => `${b.package} ${fmt(b.selfPct)} %`).join(', '),
    '',
    'Self time by the library that caused it (Node and native work charged to its nearest caller outside Node): ' + p.summary.byOwner.map((b) => `${b.package} ${fmt(b.selfPct)} %`).join(', '),
    ''
  ]
  return lines
}

export function markdown (run: RunResult): string {
  const out: string[] = []
  out.push(`# Benchmarks (${run.size})`, '')
  out.push(`Run \`${run.command}\` at ${run.startedAt} on ${run.machine.cpus} × ${run.machine.cpuModel}, ${run.machine.memoryGb} GB, Node ${run.machine.node}, Redis ${run.machine.redis} (same machine, loopback); 1-min load average ${run.machine.loadAverage.start[0]?.toFixed(2)} at the start, ${run.machine.loadAverage.end[0]?.toFixed(2)} at the end.`)
  out.push('Every ratio is measured side by side in this run. Raw figures: the JSON file of the same run.', '')
  out.push('## Targets', '')
  out.push('| benchmark | target | measured | met |', '| --- | --- | --- | --- |')
  for (const b of run.benchmarks) {
    if (b.status === 'error') { out.push(`| ${b.title} | | error: ${cell(b.error ?? '')} | **error** |`); continue }
    for (const t of b.targets) out.push(`| ${b.title} | ${cell(t.name)} ${cell(t.target)} | ${fmt(t.value, t.unit)} | ${t.met ? 'met' : '**missed**'} |`)
  }
  out.push('')
  for (const b of run.benchmarks) {
    out.push(`## ${b.title}`, '')
    if (b.status === 'error') { out.push('```', b.error ?? '', '```', ''); continue }
    out.push('| figure | value | baseline | ratio | note |', '| --- | ---: | ---: | ---: | --- |')
    for (const m of b.metrics) out.push(metricRow(m))
    out.push('')
    for (const n of b.notes) out.push(`- ${n}`)
    if (b.notes.length) out.push('')
    for (const p of b.profiles) out.push(...profileSection(p))
  }
  return out.join('\n') + '\n'
}

export function writeResults (dir: string, stamp: string, run: RunResult): { json: string, md: string } {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, `${stamp}.json`)
  const md = join(dir, 'latest.md')
  writeFileSync(json, JSON.stringify(run, null, 2) + '\n')
  writeFileSync(md, markdown(run))
  return { json, md }
}
