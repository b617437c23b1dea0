/** CPU-profiles server processes while a load runs, and records the summary with the benchmark. */
import { join, relative, dirname } from 'node:path'
import type { ServerProcess } from './proc.ts'
import type { BenchResult, ProfileRecord, RunContext } from './types.ts'

export function shouldProfile (ctx: RunContext, result: BenchResult): boolean {
  if (ctx.profile === 'never') return false
  return ctx.profile === 'always' || result.targets.some((t) => !t.met)
}

/** Profiles `procs` while `load` runs; the profiles cover exactly the load. */
export async function profileDuring (ctx: RunContext, result: BenchResult, procs: ServerProcess[], loadLabel: string, load: () => Promise<unknown>): Promise<ProfileRecord[]> {
  await Promise.all(procs.map((p) => p.startProfile()))
  try {
    await load()
  } finally {
    const records = await Promise.all(procs.map(async (p): Promise<ProfileRecord> => {
      const file = join(ctx.profilesDir, `${ctx.stamp}-${result.name}-${p.name}.cpuprofile`)
      const summary = await p.stopProfile(file)
      return { process: p.name, load: loadLabel, file: relative(dirname(ctx.profilesDir), file), summary }
    }))
    result.profiles.push(...records)
  }
  return result.profiles
}
