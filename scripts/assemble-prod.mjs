// Assembles the production folder: what the image's runtime stage holds and nothing else. The Dockerfile
// runs this script (so the image and test/deploy/prod-folder.test.ts cannot diverge):
//
//   node scripts/assemble-prod.mjs <out> [--skip-build] [-- <extra pnpm options, e.g. --store-dir /pnpm-store>]
//
// Steps: 1. build (scripts/lib.mjs `build`, the same as `npm run build`: tsc -b, the page bundle);
// 2. per service, `pnpm deploy --legacy --prod --prefer-offline` into <out>/services/<name>: its package.json,
//    its dist/ and a node_modules with its production dependencies only (workspace packages contribute their
//    dist/ only, through their `files` field), and the same for the operator CLI (shared/cli) into <out>/cli;
//    3. copy scripts/healthcheck.mjs to <out>; 4. refuse the folder (exit 1) when any development-only
//    package reached it.
// A service runs from <out> as `node --conditions=compiled services/<name>/dist/server.js`, the CLI as
// `node --conditions=compiled cli/dist/cli.js <command>`.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { root, pnpmCommand, serviceNames, build as buildAll } from './lib.mjs'

function run (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts })
  if (r.status !== 0) {
    console.error(`assemble-prod: ${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`)
    process.exit(1)
  }
}

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))

/** The packages only development needs: every devDependency (root and packages) that no package needs at run time, and shared/testing. */
export function devOnlyPackages () {
  const manifests = [readJson(join(root, 'package.json'))]
  for (const group of ['services', 'shared']) {
    for (const name of readdirSync(join(root, group))) {
      const file = join(root, group, name, 'package.json')
      if (existsSync(file)) manifests.push(readJson(file))
    }
  }
  const runtime = new Set(manifests.flatMap((m) => m.name === '@uspl/testing' ? [] : Object.keys(m.dependencies ?? {})))
  const dev = new Set(manifests.flatMap((m) => Object.keys(m.devDependencies ?? {})))
  for (const m of manifests) if (m.name === '@uspl/testing') for (const d of Object.keys(m.dependencies ?? {})) dev.add(d)
  dev.add('@uspl/testing')
  // the services themselves are root devDependencies (for the cross-service tests), and deployed on purpose
  for (const m of manifests) if (m.name?.startsWith('@uspl/') && m.name !== '@uspl/testing') runtime.add(m.name)
  return [...dev].filter((name) => !runtime.has(name)).sort()
}

/** Development tools that must never reach a production folder, whoever depends on them. */
export const NEVER_IN_PRODUCTION = ['tap', 'typescript', 'tsx', 'playwright-core', '@uspl/testing', '@types/node']

/**
 * Every package installed under a folder's node_modules (pnpm's virtual store included), each with the
 * names of the dependencies its manifest declares.
 */
export function installedPackages (dir) {
  const found = new Map()
  const add = (name, pkgDir) => {
    const file = join(pkgDir, 'package.json')
    const m = existsSync(file) ? readJson(file) : {}
    const deps = found.get(name) ?? new Set()
    for (const d of Object.keys({ ...m.dependencies, ...m.optionalDependencies, ...m.peerDependencies })) deps.add(d)
    found.set(name, deps)
  }
  const walk = (nm) => {
    if (!existsSync(nm)) return
    for (const entry of readdirSync(nm)) {
      if (entry === '.pnpm') {
        for (const pkgDir of readdirSync(join(nm, entry))) walk(join(nm, entry, pkgDir, 'node_modules'))
      } else if (entry.startsWith('@')) {
        for (const sub of readdirSync(join(nm, entry))) add(`${entry}/${sub}`, join(nm, entry, sub))
      } else if (!entry.startsWith('.')) {
        add(entry, join(nm, entry))
      }
    }
  }
  walk(join(dir, 'node_modules'))
  return found
}

/**
 * The development-only packages in a production folder: the tools of NEVER_IN_PRODUCTION, and any other
 * devDependency of the repository that no installed package (nor the service itself) depends on.
 */
export function devPackagesIn (dir) {
  const installed = installedPackages(dir)
  const wanted = new Set(Object.keys(readJson(join(dir, 'package.json')).dependencies ?? {}))
  for (const [name, deps] of installed) if (!NEVER_IN_PRODUCTION.includes(name)) for (const d of deps) wanted.add(d)
  const devOnly = devOnlyPackages()
  return [...installed.keys()].filter((name) => NEVER_IN_PRODUCTION.includes(name) || (devOnly.includes(name) && !wanted.has(name))).sort()
}

export function assemble (out, { build = true, pnpmArgs = [] } = {}) {
  out = resolve(out)
  if (build) {
    const failed = buildAll({ stdio: ['ignore', 'inherit', 'inherit'] })
    if (failed) {
      console.error(`assemble-prod: the build failed (${failed})`)
      process.exit(1)
    }
  }
  rmSync(out, { recursive: true, force: true })
  mkdirSync(join(out, 'services'), { recursive: true })
  const [pnpm, ...pre] = pnpmCommand()
  const deploy = (pkg, dest, entry) => {
    run(pnpm, [...pre, 'deploy', '--legacy', '--prod', '--prefer-offline', '--reporter=append-only', '--filter', pkg, ...pnpmArgs, dest],
      { env: { ...process.env, npm_config_update_notifier: 'false' } })
    if (!existsSync(join(dest, entry))) {
      console.error(`assemble-prod: ${dest}/${entry} is missing (did the build run?)`)
      process.exit(1)
    }
    const present = devPackagesIn(dest)
    if (present.length > 0) {
      console.error(`assemble-prod: development-only packages in ${pkg}'s production folder: ${present.join(', ')}`)
      process.exit(1)
    }
  }
  for (const name of serviceNames()) deploy(`@uspl/${name}`, join(out, 'services', name), join('dist', 'server.js'))
  // the operator command line, run in a service's container: node --conditions=compiled cli/dist/cli.js <command>
  deploy('@uspl/cli', join(out, 'cli'), join('dist', 'cli.js'))
  cpSync(join(root, 'scripts', 'healthcheck.mjs'), join(out, 'healthcheck.mjs'))
  return out
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(root, 'scripts', 'assemble-prod.mjs')) {
  const argv = process.argv.slice(2)
  const sep = argv.indexOf('--')
  const own = sep === -1 ? argv : argv.slice(0, sep)
  const pnpmArgs = sep === -1 ? [] : argv.slice(sep + 1)
  const outArg = own.find((a) => !a.startsWith('--'))
  if (!outArg) {
    console.error('usage: node scripts/assemble-prod.mjs <out> [--skip-build] [-- <pnpm options>]')
    process.exit(2)
  }
  const out = assemble(outArg, { build: !own.includes('--skip-build'), pnpmArgs })
  console.log(`assemble-prod: production folder ready in ${out} (services: ${serviceNames().join(', ')}; the CLI in cli/)`)
}
