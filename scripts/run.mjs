// `node scripts/run.mjs <file.ts> [args…]`: runs a TypeScript entry through tsx (npm run cli, npm run
// bench) with the suite's Redis: REDIS_URL from the environment, else the one `npm start` recorded in
// .data/suite.env, else the entry's own default (127.0.0.1:6379). Signals reach the entry; its exit code
// is this one's.
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { readSuiteEnv } from './lib.mjs'

const [entry, ...args] = process.argv.slice(2)
if (!entry) {
  console.error('usage: node scripts/run.mjs <file.ts> [args…]')
  process.exit(2)
}
const env = { ...process.env }
if (!env.REDIS_URL) {
  const { REDIS_URL } = readSuiteEnv()
  if (REDIS_URL) env.REDIS_URL = REDIS_URL
}
const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: 'inherit', env })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)))
