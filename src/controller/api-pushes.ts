// The push calls of the API (reference §3.3, §5.5): push_start / push_list / push_stop go to the
// workers (a push runs on the worker hosting its stream, or the first worker, which then relays
// the stream); auto-push rules, push_settings and custom variables are config, which the workers
// follow by themselves (worker-pushes.ts, variable-values.ts).

import { autoPushRemovals, autoPushRuleToList, matchesPattern, parseAutoPushAdd, parseAutoPushRule, parsePushSettings, type AutoPushRule } from '../pushes/auto-push.js';
import { parsePushTarget } from '../pushes/push-target.js';
import { parseCustomVariable } from '../pushes/variables.js';
import { HazeError } from '../util/errors.js';
import type { ApiCall, ApiCallContext } from './api-calls.js';
import type { ConfigStore } from './config-store.js';
import { isPlainObject } from './default-config.js';

/** Rules and variables kept at most (each is a few hundred bytes of config). */
const MAX_RULES = 1000;
const MAX_VARIABLES = 1000;

function workersOf(c: ApiCallContext): NonNullable<ApiCallContext['host']['workers']> {
  const w = c.host.workers;
  if (!w || w.workers().length === 0) throw new HazeError('HAZE_ERR_OFFLINE', 'no media worker is running');
  return w;
}

/** The streams a push_start names: one stream, or every active one matching `base+` / `#tag`. */
async function pushStreams(pattern: string, c: ApiCallContext): Promise<string[]> {
  if (!pattern.endsWith('+') && !pattern.startsWith('#')) return [pattern];
  const config = c.host.config.get();
  const active = Object.keys(await c.host.streamStats());
  return active.filter((name) => matchesPattern(pattern, name, config.streams[name.split('+')[0]!]?.tags ?? []));
}

const pushStart: ApiCall = {
  name: 'push_start',
  async run(arg, c) {
    let stream: unknown;
    let target: unknown;
    if (Array.isArray(arg)) [stream, target] = arg;
    else if (isPlainObject(arg)) ({ stream, target } = arg);
    if (typeof stream !== 'string' || typeof target !== 'string' || !stream || !target) {
      c.errors.push('push_start: expected [stream, target] or {stream, target}');
      return;
    }
    parsePushTarget(target);
    const workers = workersOf(c);
    const ids: number[] = [];
    for (const name of await pushStreams(stream, c)) {
      const worker = workers.hostOf(name) ?? workers.workers()[0]!;
      const answer = (await workers.ask(worker, { op: 'push_start', stream: name, target })) as { id?: number; error?: string } | undefined;
      if (typeof answer?.id === 'number') ids.push(answer.id);
      else c.errors.push(`push_start ${name}: ${answer?.error ?? `worker ${worker} did not answer`}`);
    }
    return { push_start: ids };
  },
};

const pushList: ApiCall = {
  name: 'push_list',
  async run(_arg, c) {
    const answers = (await c.host.workers?.broadcast({ op: 'push_list' })) ?? [];
    return { push_list: answers.flatMap((a) => ((a as { pushes?: unknown[] }).pushes ?? [])).sort((x, y) => (x as [number])[0] - (y as [number])[0]) };
  },
};

/** push_stop: a push id, a stream name, or an array of those. */
function stopCall(name: string): ApiCall {
  return {
    name,
    async run(arg, c) {
      const list = Array.isArray(arg) ? arg : [arg];
      const ids = list.filter((x) => typeof x === 'number' || (typeof x === 'string' && /^\d+$/.test(x))).map(Number);
      const streams = list.filter((x): x is string => typeof x === 'string' && !/^\d+$/.test(x));
      if (ids.length + streams.length === 0) {
        c.errors.push(`${name}: expected a push id, a stream name or an array of them`);
        return;
      }
      const answers = await workersOf(c).broadcast({ op: 'push_stop', ids, streams });
      return { [name]: answers.flatMap((a) => ((a as { stopped?: number[] }).stopped ?? [])) };
    },
  };
}

function rulesOf(store: ConfigStore): Map<string, AutoPushRule> {
  const out = new Map<string, AutoPushRule>();
  for (const [id, r] of Object.entries(store.get().auto_push)) {
    try {
      out.set(id, parseAutoPushRule(r, { checkTarget: false }));
    } catch {
      // hand-edited and wrong: listed as it is by push_auto_list, never run
    }
  }
  return out;
}

/** What push_auto_add / _remove / _list answer: the rules by id, and the legacy list form. */
function autoPushAnswer(store: ConfigStore): Record<string, unknown> {
  const rules = rulesOf(store);
  return { auto_push: structuredClone(store.get().auto_push), push_auto_list: [...rules].map(([id, r]) => [id, ...autoPushRuleToList(r)]) };
}

const autoAdd: ApiCall = {
  name: 'push_auto_add',
  run(arg, c) {
    const rules = parseAutoPushAdd(arg);
    const store = c.host.config;
    if (Object.keys(store.get().auto_push).length + rules.size > MAX_RULES) throw new HazeError('HAZE_ERR_TOO_LARGE', `push_auto_add: at most ${MAX_RULES} rules`);
    store.update((cfg) => {
      for (const [id, rule] of rules) cfg.auto_push[id] = rule;
    });
    return autoPushAnswer(store);
  },
};

const autoRemove: ApiCall = {
  name: 'push_auto_remove',
  run(arg, c) {
    const store = c.host.config;
    const ids = autoPushRemovals(rulesOf(store), arg);
    // ids of rules that no longer parse can still be removed by id
    for (const x of Array.isArray(arg) ? arg : [arg]) if (typeof x === 'string' && Object.hasOwn(store.get().auto_push, x)) ids.push(x);
    if (ids.length) {
      store.update((cfg) => {
        for (const id of ids) delete cfg.auto_push[id];
      });
    }
    return autoPushAnswer(store);
  },
};

const autoList: ApiCall = { name: 'push_auto_list', run: (_arg, c) => autoPushAnswer(c.host.config) };

const pushSettings: ApiCall = {
  name: 'push_settings',
  run(arg, c) {
    const store = c.host.config;
    const next = parsePushSettings(arg, store.get().push_settings);
    store.update((cfg) => {
      cfg.push_settings = next;
    });
    return { push_settings: { ...store.get().push_settings } };
  },
};

function variableList(c: ApiCallContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(c.host.config.get().variables)) {
    const live = c.host.variables?.current(name);
    out[name] = { ...(spec as object), ...(live ? { value: live.value, lastupdate: live.updated } : {}) };
  }
  return { variable_list: out };
}

const variableAdd: ApiCall = {
  name: 'variable_add',
  run(arg, c) {
    const list = Array.isArray(arg) && arg.length > 0 && typeof arg[0] !== 'string' ? arg : [arg];
    const specs = list.map((x) => parseCustomVariable(x));
    const store = c.host.config;
    if (Object.keys(store.get().variables).length + specs.length > MAX_VARIABLES) throw new HazeError('HAZE_ERR_TOO_LARGE', `variable_add: at most ${MAX_VARIABLES} variables`);
    store.update((cfg) => {
      for (const { name, ...rest } of specs) cfg.variables[name] = rest;
    });
    return variableList(c);
  },
};

const variableRemove: ApiCall = {
  name: 'variable_remove',
  run(arg, c) {
    const names = (Array.isArray(arg) ? arg : [arg]).filter((x): x is string => typeof x === 'string').map((x) => x.replace(/^\$/, ''));
    if (names.length === 0) {
      c.errors.push('variable_remove: expected a variable name or an array of names');
      return;
    }
    c.host.config.update((cfg) => {
      for (const n of names) delete cfg.variables[n];
    });
    return variableList(c);
  },
};

export const PUSH_CALLS: readonly ApiCall[] = [
  pushStart,
  pushList,
  stopCall('push_stop'),
  stopCall('push_stop_graceful'),
  autoAdd,
  autoRemove,
  autoList,
  pushSettings,
  variableAdd,
  variableRemove,
  { name: 'variable_list', run: (_arg, c) => variableList(c) },
];

/** Drops the auto-push rules whose completetime has passed (reference §5.5); run by the controller. */
export function dropCompletedRules(store: ConfigStore, nowUnix = Date.now() / 1000): void {
  const done = [...rulesOf(store)].filter(([, r]) => r.completetime !== undefined && nowUnix > r.completetime).map(([id]) => id);
  if (done.length === 0) return;
  store.update((cfg) => {
    for (const id of done) delete cfg.auto_push[id];
  });
}
