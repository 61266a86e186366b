import { readFileSync } from 'node:fs';

/** One build stage of a Dockerfile, as far as the tests read it. */
export interface DockerStage {
  from: string;
  run: string[];
  /** COPY sources from the build context (not from other stages). */
  copies: string[];
  env: Record<string, string>;
  user?: string;
  volumes: string[];
  healthcheck?: string;
  entrypoint: string[];
  cmd: string[];
}

/** A small Dockerfile reader: continuation lines, ARG defaults, stages and the instructions the tests check. */
export function parseDockerfile(file: string): { args: Record<string, string>; stages: DockerStage[] } {
  const lines = readFileSync(file, 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  const json = (text: string) => (text.startsWith('[') ? (JSON.parse(text) as string[]) : ['/bin/sh', '-c', text]);
  for (const line of lines) {
    const [, keyword, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    const stage = stages[stages.length - 1];
    switch (keyword?.toUpperCase()) {
      case 'ARG': {
        const [name, value = ''] = rest.split('=');
        if (!stage) args[name] = value;
        break;
      }
      case 'FROM':
        stages.push({ from: rest.split(/\s+/)[0], run: [], copies: [], env: {}, volumes: [], entrypoint: [], cmd: [] });
        break;
      case 'RUN':
        stage.run.push(rest);
        break;
      case 'COPY':
        if (!/--from=/.test(rest)) stage.copies.push(...rest.split(/\s+/).filter((p) => !p.startsWith('--')).slice(0, -1));
        break;
      case 'ENV':
        for (const [, key, value] of rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[key] = value.replace(/^"|"$/g, '');
        break;
      case 'USER':
        stage.user = rest;
        break;
      case 'VOLUME':
        stage.volumes.push(...json(rest));
        break;
      case 'HEALTHCHECK':
        stage.healthcheck = rest;
        break;
      case 'ENTRYPOINT':
        stage.entrypoint = json(rest);
        break;
      case 'CMD':
        stage.cmd = json(rest);
        break;
    }
  }
  return { args, stages };
}
