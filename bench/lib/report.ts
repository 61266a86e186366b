/** Markdown formatting shared by the scenarios and the final report. */
import type { Summary } from './stats.js';

/** A goal from the issue, checked against a measured value. */
export interface Goal {
  readonly scenario: string;
  readonly metric: string;
  readonly value: number;
  /** Human-readable target, e.g. ">= 0.98". */
  readonly target: string;
  readonly passed: boolean;
  readonly unit?: string;
}

export function goal(scenario: string, metric: string, value: number, op: '>=' | '<=', limit: number, unit = ''): Goal {
  const passed = Number.isFinite(value) && (op === '>=' ? value >= limit : value <= limit);
  return { scenario, metric, value, target: `${op} ${limit}${unit}`, passed, unit };
}

/** A number with `digits` decimals; '—' for missing values. */
export function num(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

/** "median (min–max)" */
export function med(s: Summary, digits = 1): string {
  if (s.n === 0) return '—';
  if (s.n === 1) return num(s.median, digits);
  return `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`;
}

/** "1.234x" */
export function times(x: number, digits = 3): string {
  return Number.isFinite(x) ? `${x.toFixed(digits)}x` : '—';
}

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function goalsTable(goals: readonly Goal[]): string {
  if (goals.length === 0) return '_No goals were measured in this run._';
  return table(
    ['scenario', 'metric', 'measured', 'goal', ''],
    goals.map((g) => [g.scenario, g.metric, `${num(g.value, Math.abs(g.value) < 10 ? 3 : 1)}${g.unit ?? ''}`, g.target, g.passed ? 'met' : 'MISSED']),
  );
}
