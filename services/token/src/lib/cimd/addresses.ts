/**
 * Which network addresses a metadata document may be fetched from. The document URL is chosen by whoever
 * starts an authorization, so it is hostile: without this, it would make this service request loopback,
 * the cluster network or a cloud metadata endpoint (SSRF). Refused, IPv4 and IPv6:
 * - unspecified, "this network" (0/8), loopback, private (RFC 1918), CGNAT (100.64/10), link-local
 *   (169.254/16, fe80::/10), unique local (fc00::/7), multicast, reserved and documentation ranges,
 *   benchmarking (198.18/15), the broadcast address;
 * - the same IPv4 ranges inside IPv6 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible, NAT64 64:ff9b::/96,
 *   6to4 2002::/16), so an IPv6 spelling cannot smuggle a private IPv4 address;
 * - cloud metadata addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200), refused even for hosts an
 *   operator allowed to be private.
 */
import { BlockList, isIP } from 'node:net'

const V4_BLOCKED: Array<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
]
const V6_BLOCKED: Array<[string, number]> = [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32],
  ['100::', 64], ['2001::', 23]
]
const METADATA = ['169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254']

const blocked = new BlockList()
for (const [net, bits] of V4_BLOCKED) blocked.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of V6_BLOCKED) blocked.addSubnet(net, bits, 'ipv6')
const metadata = new BlockList()
for (const a of METADATA) metadata.addAddress(a, isIP(a) === 6 ? 'ipv6' : 'ipv4')

/** The eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail expanded). */
function groups (v6: string): number[] | null {
  let s = v6.toLowerCase().replace(/%.*$/, '')
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (dotted) {
    const p = dotted[1].split('.').map(Number)
    s = s.slice(0, -dotted[1].length) + `${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`
  }
  const [head, tail] = s.split('::')
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail !== '' ? tail.split(':') : []
  const fill = s.includes('::') ? 8 - h.length - t.length : 0
  const all = [...h, ...Array(fill).fill('0'), ...t].map((x) => parseInt(x, 16))
  return all.length === 8 && all.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? all : null
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), or null. */
export function embeddedIpv4 (v6: string): string | null {
  const g = groups(v6)
  if (!g) return null
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  const zero = (from: number, to: number): boolean => g.slice(from, to).every((n) => n === 0)
  if (zero(0, 5) && g[5] === 0xffff) return v4(g[6], g[7]) // ::ffff:a.b.c.d
  if (zero(0, 6) && (g[6] !== 0 || g[7] > 1)) return v4(g[6], g[7]) // ::a.b.c.d (deprecated compatible form)
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6], g[7]) // NAT64 64:ff9b::/96
  if (g[0] === 0x2002) return v4(g[1], g[2]) // 6to4
  return null
}

/** Why a document may not be fetched from `address`, or null when it may. */
export function addressProblem (address: string, opts: { allowPrivate?: boolean } = {}): string | null {
  const family = isIP(address)
  if (family === 0) return `${address} is not an IP address`
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (metadata.check(address, type)) return `${address} is a cloud metadata address`
  const inner = family === 6 ? embeddedIpv4(address) : null
  if (inner !== null && metadata.check(inner, 'ipv4')) return `${address} is a cloud metadata address`
  if (opts.allowPrivate) return null
  if (blocked.check(address, type) || address === '255.255.255.255') return `${address} is a loopback, private, link-local, shared or reserved address`
  if (inner !== null && blocked.check(inner, 'ipv4')) return `${address} carries the non-public IPv4 address ${inner}`
  return null
}
