// docs/triggers.md, rendered from the trigger map (STYLE "Typed events and triggers from one
// map"). scripts/gen-trigger-docs.mjs writes it; test/unit/trigger-docs.test.ts fails when the
// committed file differs from what this renders.

import { payloadText, TRIGGER_NAMES, TRIGGERS, type TriggerName, type TriggerPayload, type TriggerSpec } from './trigger-map.js';

const KIND_TEXT = {
  notify: 'notification (reply ignored)',
  bool: 'blocking decision (true/false)',
  rewrite: 'rewrite (reply text is used)',
} as const;

function examplePayload(spec: TriggerSpec): Record<string, string> {
  const p: Record<string, string> = {};
  for (const f of spec.fields) p[f] = `<${f}>`;
  return p;
}

function fieldLine(spec: TriggerSpec): string {
  return spec.fields.map((f) => (spec.optional?.includes(f) ? `\`${f}\` (optional)` : `\`${f}\``)).join(', ');
}

export function renderTriggerDocs(): string {
  const out: string[] = [];
  out.push('# Triggers');
  out.push('');
  out.push('<!-- Generated from src/triggers/trigger-map.ts by scripts/gen-trigger-docs.mjs; do not edit by hand. -->');
  out.push('');
  out.push('Haze fires the triggers of MistServer with the same names and payloads, so handler scripts');
  out.push('written for MistServer work unchanged.');
  out.push('');
  out.push('## Configuration');
  out.push('');
  out.push('`config.triggers` maps a trigger name to a list of handlers:');
  out.push('');
  out.push('```json');
  out.push('{"USER_NEW": [{"handler": "https://auth.example/check", "sync": true, "streams": ["live", "#paid"], "default": "false"}]}');
  out.push('```');
  out.push('');
  out.push('- `handler`: an `http://` or `https://` URL (POST, body = payload, `Content-Type: text/plain`, headers');
  out.push('  `X-Trigger`, `X-Instance`, `X-Name`, `X-PID`, `X-Trigger-UUID`, `X-Trigger-UnixMillis`, `Date`) or the');
  out.push('  absolute path of an executable (argument 1 = trigger name, payload on stdin, environment');
  out.push('  `MIST_TRIGGER`, `MIST_TRIG_DEF`, `MIST_PID`, `MIST_INSTANCE`, `MIST_NAME`; stdout is the reply).');
  out.push('- `sync`: blocking. The reply is awaited for at most 10 s (an executable gets SIGTERM at 10 s, SIGKILL');
  out.push('  at 14 s, and is given up on at 15 s); then the default reply is used. Asynchronous handlers run in');
  out.push('  the background and count as their default reply.');
  out.push('- `streams`: empty = every stream; an entry matches the full stream name or its base name (before');
  out.push('  `+`); `#tag` matches a stream tag; `!name` / `!#tag` exclude; a list of exclusions only matches every');
  out.push('  other stream. Global triggers (below) fire with no stream and reach every handler.');
  out.push('- `params`: a trigger-specific parameter (LIVE_BANDWIDTH: the bytes/s threshold).');
  out.push('- `default`: the reply used when the handler fails (HTTP error status, network error, timeout,');
  out.push('  start failure, non-zero exit) or is asynchronous; empty = `true`.');
  out.push('- The legacy form `[handler, sync, [streams]]` is accepted too.');
  out.push('');
  out.push('A reply is true when it starts with `1`, `yes`, `true` or `cont` (any case, leading whitespace');
  out.push('ignored); the replies of several handlers are AND-ed. Rewrite triggers use the reply text of the');
  out.push('last blocking handler (surrounding whitespace removed); they need a blocking handler. Replies longer');
  out.push('than 64 KiB are cut off. The payload is the fields below, one per line (`\\n`), with no trailing line');
  out.push('break unless noted; a line break inside a value is sent as a space.');
  out.push('');
  out.push('## Summary');
  out.push('');
  out.push('| Trigger | Kind | Global | When |');
  out.push('| --- | --- | --- | --- |');
  for (const name of TRIGGER_NAMES) {
    const spec: TriggerSpec = TRIGGERS[name];
    out.push(`| [\`${name}\`](#${name.toLowerCase()}) | ${spec.kind} | ${spec.global ? 'yes' : 'no'} | ${spec.when} |`);
  }
  out.push('');
  out.push('## Triggers');
  for (const name of TRIGGER_NAMES) {
    const spec: TriggerSpec = TRIGGERS[name];
    out.push('');
    out.push(`### ${name}`);
    out.push('');
    out.push(`Fires when ${spec.when}${spec.global ? ' (global: fires with no stream name)' : ''}.`);
    out.push('');
    out.push(`- Kind: ${KIND_TEXT[spec.kind]}`);
    if (spec.defaultBehaviour) out.push(`- Reply: ${spec.defaultBehaviour}`);
    out.push(`- Payload fields, in order: ${fieldLine(spec)}`);
    if (spec.note) out.push(`- Note: ${spec.note}`);
    out.push('');
    out.push('```');
    const body = payloadText(name as TriggerName, examplePayload(spec) as unknown as TriggerPayload<TriggerName>);
    out.push(body.endsWith('\n') ? body + '(line break)' : body);
    out.push('```');
  }
  out.push('');
  return out.join('\n');
}
