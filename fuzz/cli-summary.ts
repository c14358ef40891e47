/** The human-readable summary of a fuzzing run. */
import { mib, type FuzzSummary } from './run';

function table(o: Record<string, number>): string {
  return Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `    ${k.padEnd(32)} ${n}`)
    .join('\n');
}

export function describe(s: FuzzSummary): string {
  return [
    `fuzz seed ${s.seed}: ${s.frames} frames in ${s.rounds} rounds, ${s.connections} connections, ${s.seconds.toFixed(1)} s`,
    `  how fuzzing connections ended:\n${table(s.outcomes)}`,
    `  channel.close reply codes:\n${table(s.channelCloses)}`,
    `  mutations sent:\n${table(s.mutations)}`,
    `  broker log lines by level: ${JSON.stringify(s.logLevels)}`,
    `  well-behaved client checks passed: ${s.healthyChecks - s.findings.filter((f) => f.what.startsWith('the well-behaved')).length}/${s.healthyChecks}`,
    `  broker RSS: after round 1 ${mib(s.rss.first)}, after the warm-up (${s.rss.warmupRounds} rounds) ${mib(s.rss.baseline)}, at the end ${mib(s.rss.final)}, highest after a round ${mib(s.rss.max)}`,
    s.ok
      ? '  no findings'
      : `  FINDINGS:\n${s.findings.map((f) => `    round ${f.round}: ${f.what}`).join('\n')}\n  broker errors:\n${s.errors.join('\n')}`,
  ].join('\n');
}
