// Typed usage of the page shim. Not shipped: `tsc --noEmit -p app-shim`
// checks it so that outbox.d.ts stays usable and strict.
import {
  Outbox,
  type ConflictDetail,
  type Entry,
  type OutboxCommand,
  type OutboxEventMessage,
  type OutboxReply,
  type Status,
} from './outbox.js';

declare function render(status: Status): void;
declare function askUser(conflict: ConflictDetail): Promise<'local' | 'remote'>;
declare function getToken(): Promise<string>;

export async function start(): Promise<Outbox> {
  const outbox = await Outbox.register('/sw.js', { scope: '/', timeoutMs: 5000, persist: true });

  outbox.addEventListener('status', (event) => render(event.detail));
  outbox.addEventListener('queued', (event) => console.log('queued', event.detail.entry.id));
  outbox.addEventListener('sent', (event) => console.log('sent', event.detail.status, event.detail.body));
  outbox.addEventListener('failed', (event) => {
    const detail = event.detail;
    // Narrowing on `reason` exposes the HTTP status only where it exists.
    if (detail.reason === 'http_status') console.warn(detail.entry.url, detail.status, detail.message);
    else if (detail.entry === null) console.warn('not queued:', detail.reason, detail.message);
    else console.warn(detail.entry.url, detail.reason);
  });
  outbox.addEventListener('conflict', async (event) => {
    const use = await askUser(event.detail);
    await outbox.resolve(event.detail.entry.id, { use });
  });
  outbox.addEventListener('resolved', (event) => console.log('kept', event.detail.kept));
  outbox.addEventListener('auth-required', (event) => console.log('auth needed', event.detail.status));

  // @ts-expect-error a status event has no entry
  outbox.addEventListener('status', (event) => console.log(event.detail.entry));
  // @ts-expect-error the listener must take the event's own detail type
  outbox.addEventListener('sent', (event: CustomEvent<Status>) => render(event.detail));

  await outbox.setAuth(async () => ({ Authorization: `Bearer ${await getToken()}` }));

  const status: Status = await outbox.status();
  const stuck: Entry[] = await outbox.entries({ states: ['failed', 'blocked'] });
  const all: Entry[] = await outbox.entries();
  console.log(status.counts.waiting_retry, stuck.length, all.length);

  const { retried } = await outbox.retry('failed');
  const first = stuck[0];
  if (first !== undefined) {
    await outbox.retry(first.id);
    const { cancelled } = await outbox.cancel(first.id);
    await outbox.resolve(first.id, { use: 'merged', body: { label: 'both' } });
    console.log(retried, cancelled);
  }
  const { removed } = await outbox.clear(['done', 'cancelled', 'superseded', 'corrupt']);
  console.log(status.user, status.held, status.corrupt);

  // One device, several users: entries are stamped with the current user.
  const { held } = await outbox.setUser('alice');
  outbox.addEventListener('discarded', (event) => console.log('dropped', event.detail.entries.length, event.detail.user));
  const { discarded } = await outbox.logout({ discard: true });
  await outbox.logout({ keep: true });
  await outbox.logout();
  console.log(held, discarded, all[0]?.user);
  // @ts-expect-error discard and keep exclude each other
  await outbox.logout({ discard: true, keep: true });
  const afterDrain: Status = await outbox.flush();
  console.log(removed, afterDrain.progress.done);
  await outbox.clear();

  const quiet = await Outbox.register('/sw.js', { flushOnOnline: false, flushOnVisible: false });
  quiet.close();
  return outbox;
}

// The raw protocol types, for code that talks to the worker directly.
export function isOutboxEvent(data: unknown): data is OutboxEventMessage {
  return typeof data === 'object' && data !== null && (data as { outbox?: unknown }).outbox === 1
    && (data as { type?: unknown }).type === 'event';
}

export const statusCommand: OutboxCommand = { outbox: 1, id: 1, type: 'status' };
// @ts-expect-error cancel needs an entry id
export const badCommand: OutboxCommand = { outbox: 1, id: 2, type: 'cancel' };
// @ts-expect-error a merged resolution must carry the merged body
export const badResolve: OutboxCommand = { outbox: 1, id: 3, type: 'resolve', entry: 12, use: 'merged' };

export function describe(reply: OutboxReply<Status>): string {
  return reply.type === 'ok' ? `${reply.result.total} entries` : `error: ${reply.message}`;
}
