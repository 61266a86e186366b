/** One parsed sample of the Prometheus text format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A parsed exposition: samples plus the declared type of each family. */
export interface Exposition {
  readonly samples: Sample[];
  readonly types: ReadonlyMap<string, string>;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4): it throws on
 * invalid names, malformed lines, a TYPE after its samples, duplicate series, and histograms
 * whose buckets are not cumulative or whose +Inf bucket differs from _count.
 */
export function parsePromText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const seenSeries = new Set<string>();
  const familiesWithSamples = new Set<string>();
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!match) throw new Error(`bad comment at ${where}`);
      const [, kind, name, rest] = match;
      if (!metricName.test(name)) throw new Error(`bad metric name at ${where}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest ?? '')) throw new Error(`bad type at ${where}`);
        if (types.has(name)) throw new Error(`second TYPE for ${name} at ${where}`);
        if (familiesWithSamples.has(name)) throw new Error(`TYPE after samples at ${where}`);
        types.set(name, rest!);
      }
      return;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/.exec(line);
    if (!match) throw new Error(`bad sample at ${where}`);
    const [, name, , labelText, valueText] = match;
    const labels: Record<string, string> = {};
    if (labelText) {
      for (const m of labelText.matchAll(/([^=,\s]+)="((?:[^"\\]|\\.)*)"/g)) {
        if (!labelName.test(m[1])) throw new Error(`bad label name ${m[1]} at ${where}`);
        if (m[1] in labels) throw new Error(`duplicate label ${m[1]} at ${where}`);
        labels[m[1]] = m[2];
      }
    }
    // Prometheus reads values with Go's ParseFloat, which takes NaN in any letter case (prom-client writes "Nan").
    const isNaNText = valueText.toLowerCase() === 'nan';
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : isNaNText ? NaN : Number(valueText);
    if (Number.isNaN(value) && !isNaNText) throw new Error(`bad value at ${where}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`duplicate series ${key}`);
    seenSeries.add(key);
    familiesWithSamples.add(name.replace(/_(bucket|sum|count)$/, ''));
    familiesWithSamples.add(name);
    samples.push({ name, labels, value });
  });
  checkHistograms(samples, types);
  return { samples, types };
}

function checkHistograms(samples: Sample[], types: ReadonlyMap<string, string>): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, Array<{ le: number; value: number }>>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), { le: le === '+Inf' ? Infinity : Number(le), value: s.value }]);
    }
    for (const [key, buckets] of groups) {
      buckets.sort((a, b) => a.le - b.le);
      for (let i = 1; i < buckets.length; i++) if (buckets[i].value < buckets[i - 1].value) throw new Error(`${family} buckets not cumulative`);
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key);
      if (buckets.at(-1)!.le !== Infinity || count?.value !== buckets.at(-1)!.value) throw new Error(`${family}: +Inf bucket differs from _count`);
    }
  }
}

/** Sum of a metric's samples whose labels include `labels`. */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return exposition.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
