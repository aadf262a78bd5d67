// Every API call the management UI makes. The UI can do nothing a script cannot: each name here
// is a call of the public JSON API, and test/unit/ui-calls.test.ts checks that each is answered
// by the server and documented in docs/api.md. api.ts accepts only these names.

export const UI_CALLS = [
  'authorize',
  'minimal',
  'config',
  'addstream',
  'deletestream',
  'active_streams',
  'capabilities',
  'save',
  'logout',
  'push_start',
  'push_list',
  'push_stop',
  'push_auto_add',
  'push_auto_remove',
  'push_auto_list',
  'recordings',
  'clients',
  'totals',
  'stop_sessid',
  'tag_sessid',
  'config_backup',
  'config_restore',
  'account_list',
  'account_set',
  'account_delete',
  'capacity',
] as const;

export type UiCall = (typeof UI_CALLS)[number];

/** The WebSocket API's subscriptions the UI uses (`/ws?logs=..&streams=1`). */
export const UI_WS_KINDS = ['logs', 'streams'] as const;
